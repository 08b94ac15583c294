"""Which pipeline execution a stage process belongs to, and how that execution is named.

DVC runs each stage as its own process, so the stages of one ``dvc repro`` (or one
``dvc exp run``) recognise each other by ``key()``: ``RP_EXECUTION`` when set, else the nearest
ancestor ``dvc`` process (its pid and start time, from ``/proc``), else this process itself
(a stage run by hand is its own execution).
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import time
from pathlib import Path

_IMPORTED_NS = time.time_ns()  # with the pid: this process, even once its pid is reused


def _stat(pid: int) -> tuple[int, str] | None:
    """(parent pid, start time in clock ticks since boot) of ``pid``; None off Linux or once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None
    return int(fields[1]), fields[19]  # fields 4 and 22 of proc(5), counted after the command name


def _is_dvc(pid: int) -> bool:
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return False
    # `dvc ...`, `python /path/bin/dvc ...` (a script's shebang) or `python -m dvc ...`
    return "dvc" in (Path(argv[0]).name, Path(argv[1]).name if len(argv) > 1 else "") or argv[1:3] == ["-m", "dvc"]


def key() -> str:
    """The execution this process belongs to (module docstring)."""
    if os.environ.get("RP_EXECUTION"):
        return os.environ["RP_EXECUTION"]
    pid = os.getppid()
    while pid > 1 and (stat := _stat(pid)) is not None:
        if _is_dvc(pid):
            return f"dvc:{pid}:{stat[1]}"
        pid = stat[0]
    return f"process:{os.getpid()}:{_IMPORTED_NS}"


def _git(*args: str) -> str:
    """``git args`` in the working directory, stripped; "" when git or the repository is missing."""
    try:
        return subprocess.run(["git", *args], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


def name() -> str:
    """The DVC experiment's name (``dvc exp run``), else ``repro <branch>`` (short commit when detached)."""
    if os.environ.get("DVC_EXP_NAME"):
        return os.environ["DVC_EXP_NAME"]
    branch = _git("rev-parse", "--abbrev-ref", "HEAD")
    if branch in ("", "HEAD"):  # outside git, or a detached HEAD
        branch = _git("rev-parse", "--short", "HEAD") or "outside git"
    return f"repro {branch}"


def params_hash(params: dict) -> str:
    """sha256 of the params as canonical JSON: equal for equal params, whatever the YAML layout."""
    return hashlib.sha256(json.dumps(params, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def tags(params: dict) -> dict:
    """What identifies the code, the params and the DVC experiment of this execution."""
    out = {"git.commit": _git("rev-parse", "HEAD") or "unknown", "params.sha256": params_hash(params)}
    for env in ("DVC_EXP_NAME", "DVC_EXP_BASELINE_REV"):
        if os.environ.get(env):
            out[env.lower().replace("_", ".")] = os.environ[env]
    return out
