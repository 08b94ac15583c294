"""MLflow bookkeeping for DVC stages: one run per stage execution, named after the stage.

The store defaults to a sqlite file at the repository root, addressed by absolute path.
Queued ``dvc exp`` runs execute in a temporary copy of the repository; DVC passes the
parent repository's root in ``DVC_ROOT``, so their runs land in the same store.
``MLFLOW_TRACKING_URI`` (or ``mlflow.tracking_uri`` in params) points at any other store.
"""
from __future__ import annotations

import contextlib
import os
import resource
import subprocess
import time
from pathlib import Path
from typing import Iterator


_STARTED = time.monotonic()  # when the stage process imported this module


def repo_root() -> Path:
    return Path(os.environ.get("DVC_ROOT") or os.getcwd()).resolve()


def tracking_uri(params: dict) -> str:
    return (os.environ.get("MLFLOW_TRACKING_URI") or params["mlflow"]["tracking_uri"]
            or f"sqlite:///{repo_root() / 'mlflow.db'}")


def _git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True)
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def flatten(d: dict, prefix: str = "") -> dict:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``; lists are kept as their string form."""
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


@contextlib.contextmanager
def stage_run(params: dict, default_name: str, logged: dict) -> Iterator[object]:
    """Open an MLflow run for this stage execution, log ``logged`` params, yield ``mlflow``."""
    import logging

    import mlflow

    logging.getLogger("mlflow").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    name = os.environ.get("DVC_STAGE") or default_name
    uri = tracking_uri(params)
    mlflow.set_tracking_uri(uri)
    experiment = params["mlflow"]["experiment"]
    if uri.startswith("sqlite:") and mlflow.get_experiment_by_name(experiment) is None:
        # artifacts beside the store, not in the (possibly temporary) working directory
        mlflow.create_experiment(experiment, artifact_location=(repo_root() / "mlartifacts").as_uri())
    mlflow.set_experiment(experiment)
    tags = {"dvc.stage": name, "git.commit": _git_commit()}
    for env in ("DVC_EXP_NAME", "DVC_EXP_BASELINE_REV"):
        if os.environ.get(env):
            tags[env.lower().replace("_", ".")] = os.environ[env]
    with mlflow.start_run(run_name=name, tags=tags):
        mlflow.log_params({k: str(v)[:500] for k, v in flatten(logged).items()})
        yield mlflow
        # cost of the stage process so far (MLflow only: timings never go into DVC metrics)
        mlflow.log_metrics({"stage_seconds": time.monotonic() - _STARTED,
                            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024})


def metric_key(name: str) -> str:
    """A configuration name as an MLflow metric key (or a file name): ``=`` and ``,`` become ``_``."""
    return name.replace("=", "_").replace(",", "_")


def numbers(metrics: dict) -> dict:
    """The numeric leaves of nested ``metrics`` under dotted, sanitised keys (``metric_key``)."""
    return {metric_key(k): v for k, v in flatten(metrics).items()
            if isinstance(v, (int, float)) and not isinstance(v, bool)}


def log_stage(params: dict, name: str, logged: dict, metrics: dict | None = None, artifacts=(),
              history: list[tuple[int, dict]] = ()) -> None:
    """One MLflow run for this stage (``stage_run``): ``logged`` params, the numeric leaves of
    ``metrics``, per-step ``history`` as (step, metrics) pairs, and ``artifacts`` (paths, or
    (path, artifact folder) pairs)."""
    with stage_run(params, name, logged) as mlflow:
        for step, values in history:
            mlflow.log_metrics(numbers(values), step=step)
        if metrics:
            mlflow.log_metrics(numbers(metrics))
        for artifact in artifacts:
            mlflow.log_artifact(*((artifact,) if isinstance(artifact, str) else artifact))
