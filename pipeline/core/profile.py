"""A params profile as ``dvc exp run`` overrides: ``python -m pipeline.profile FILE`` prints one
``-S key=value`` pair per leaf (compact JSON values: no spaces, safe to word-split), after
checking that params.yaml with the profile applied is valid."""
from __future__ import annotations

import copy
import json
import sys
import tempfile
from pathlib import Path

import yaml

from .errors import PipelineError
from .params import load_params
from .tracking import flatten


def apply(profile: str | Path, params: str | Path = "params.yaml") -> tuple[dict, dict]:
    """The profile's changes (dotted key -> value) and params.yaml with them applied, validated."""
    profile = Path(profile)
    if not profile.is_file():
        raise PipelineError(f"{profile}: not found; fix: give a file from profiles/")
    changes = flatten(yaml.safe_load(profile.read_text()) or {})
    merged = copy.deepcopy(yaml.safe_load(Path(params).read_text()))
    for key, value in changes.items():
        node = merged
        *parents, leaf = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    with tempfile.TemporaryDirectory() as tmp:  # validate what the experiment will run
        path = Path(tmp) / "params.yaml"
        path.write_text(yaml.safe_dump(merged))
        return changes, load_params(path)


def overrides(profile: str | Path, params: str | Path = "params.yaml") -> list[str]:
    changes, _ = apply(profile, params)
    args = []
    for key, value in changes.items():
        args += ["-S", f"{key}={json.dumps(value, separators=(',', ':'))}"]
    return args


def main() -> None:
    try:
        print(" ".join(overrides(sys.argv[1])))
    except (PipelineError, IndexError) as exc:
        print(f"error: {exc or 'usage: python -m pipeline.profile profiles/official.yaml'}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
