"""The params a DVC stage reads, as ``dvc.yaml`` declares them, under the same dotted names.

A matrix stage ``certify@1.0`` is entry ``certify``. An entry that declares no params (a
summary such as ``defenses``) is given those of the stages whose outputs it depends on.
"""
from __future__ import annotations

from functools import reduce
from pathlib import Path

import yaml


def _paths(entries) -> list[str]:
    """Paths of an ``outs`` / ``metrics`` / ``plots`` / ``deps`` list (strings or one-key mappings)."""
    return [e if isinstance(e, str) else next(iter(e)) for e in entries or ()]


def _leaves(value, dotted: str) -> dict:
    """A leaf as ``{dotted: value}``; a section as each of its leaves under dotted names."""
    if not isinstance(value, dict):
        return {dotted: value}
    return {k: v for key, sub in value.items() for k, v in _leaves(sub, f"{dotted}.{key}").items()}


def _feeds(producer: dict, consumer: dict) -> bool:
    """Whether ``consumer`` depends on an output of ``producer`` (or on a folder holding one)."""
    outs = _paths(producer.get("outs")) + _paths(producer.get("metrics")) + _paths(producer.get("plots"))
    return any(out == dep or out.startswith(dep + "/") for dep in _paths(consumer.get("deps")) for out in outs)


def declared(stage: str, params: dict, path: str | Path = "dvc.yaml") -> dict:
    """The params of ``stage`` (``name`` or ``name@item``) from ``path``, flat; {} for a stage it lacks."""
    path = Path(path)
    stages = yaml.safe_load(path.read_text())["stages"] if path.is_file() else {}
    entry = stages.get(stage.partition("@")[0])
    if entry is None:
        return {}
    names = entry.get("params") or [name for other in stages.values() if _feeds(other, entry)
                                     for name in other.get("params") or ()]
    return {k: v for name in names for k, v in _leaves(reduce(dict.__getitem__, name.split("."), params),
                                                       name).items()}
