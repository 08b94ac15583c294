"""Print what ``make repro`` produced (the report tables, where to look next), then the
reproduction check: this run's metrics against the reference committed in git (``dvc metrics
diff`` against HEAD) and whether every committed output came out byte-identical (``git status``)."""
from __future__ import annotations

import json
import math
import subprocess
from pathlib import Path

from mlflow.tracking import MlflowClient

from ..core.params import load_params
from ..core.tracking import numbers, tracking_uri

REPORTS = ("reports/table1.md", "reports/ape.md", "reports/attribute_attack.md", "reports/inversion.md",
           "reports/membership.md", "reports/defenses.md", "reports/guarantee.md")
OUTPUTS = ("dvc.lock", "metrics", "reports", "plots")  # what the reference commits (the cache: false outputs)
SHOWN = 12  # differences listed at most


def _run(*cmd: str) -> str:
    return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout


def _nan(value) -> bool:
    return isinstance(value, float) and math.isnan(value)


def reproduction() -> list[str]:
    """The check's lines: how many metrics equal the reference, the ones that differ, and the
    committed outputs that changed."""
    try:
        head = _run("git", "rev-parse", "--short", "HEAD").strip()
        shown = json.loads(_run("dvc", "metrics", "show", "--json"))
        diff = json.loads(_run("dvc", "metrics", "diff", "--json"))
        changed = [line[3:] for line in _run("git", "status", "--porcelain", "--", *OUTPUTS).splitlines()]
    except (OSError, subprocess.CalledProcessError, json.JSONDecodeError) as exc:
        return [f"Reproduction check skipped: {exc} (it needs a git clone with the committed reference)"]
    total = sum(len(numbers(f.get("data", {}))) for rev in shown.values() for f in rev["data"].values())
    differ = [(path, key, d.get("old"), d.get("new")) for path, per in diff.items() for key, d in per.items()
              if not (_nan(d.get("old")) and _nan(d.get("new")))]  # dvc metrics diff lists NaN -> NaN as a change
    lines = [f"Reproduction check against the committed reference (HEAD {head}):",
             f"  metrics: {total - len(differ)} of {total} identical" + ("" if differ else " (dvc metrics diff: none)")]
    for path, key, old, new in differ[:SHOWN]:
        lines.append(f"    {key} ({path}): reference {old}, this run {new}")
    if len(differ) > SHOWN:
        lines.append(f"    ... and {len(differ) - SHOWN} more: dvc metrics diff")
    if changed:
        lines.append(f"  committed outputs: {len(changed)} differ from the reference: " + ", ".join(changed[:SHOWN])
                     + (" ..." if len(changed) > SHOWN else "") + " (git status; git diff --stat)")
    else:
        lines.append("  committed outputs: dvc.lock, metrics/, reports/ and plots/ byte-identical (git status clean)")
    return lines


def main() -> None:
    for path in REPORTS:
        if Path(path).is_file():
            print(Path(path).read_text())
    plots = sorted(str(p) for p in Path("plots").glob("*.png"))
    print("Plots:        " + ", ".join(plots))
    params = load_params()
    uri = tracking_uri(params)
    print(f"MLflow store: {uri}")
    print(f"  browse:     .venv/bin/mlflow ui --backend-store-uri {uri}")
    experiment = MlflowClient(uri).get_experiment_by_name(params["mlflow"]["experiment"])
    if experiment is not None:  # the model-training view: the UI opens on GenAI otherwise
        print(f"  then open:  http://127.0.0.1:5000/#/experiments/{experiment.experiment_id}/runs"
              "?workflowType=machine_learning")
    print("Next:         source .venv/bin/activate; dvc exp show (README); dvc plots show; dvc exp run -S ...\n")
    print("\n".join(reproduction()))


if __name__ == "__main__":
    main()
