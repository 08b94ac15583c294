"""MLflow bookkeeping: one parent run per pipeline execution, one nested run per stage.

A stage process opens its run when it starts (``cli.execute`` enters ``stage_run``) and closes
it FINISHED or FAILED when it ends, so the run's duration is the stage's. Its parent is the run
of the execution (``execution.key()``: one ``dvc repro`` or one ``dvc exp run``), made by its
first stage with the whole params.yaml; each stage marks it RUNNING on start and ends it on exit,
so the parent spans every stage. A stage run holds the params its ``dvc.yaml`` entry declares
(``dvc_params``) plus the ones the stage passes. The experiment is tagged as model training,
so the MLflow UI opens on its runs table rather than on GenAI traces.

The store defaults to a sqlite file at the repository root, addressed by absolute path.
Queued ``dvc exp`` runs execute in a temporary copy of the repository; DVC passes the
parent repository's root in ``DVC_ROOT``, so their runs land in the same store.
``MLFLOW_TRACKING_URI`` (or ``mlflow.tracking_uri`` in params) points at any other store.
"""
from __future__ import annotations

import contextlib
import os
import resource
import time
from pathlib import Path
from typing import Iterator

from . import execution
from .dvc_params import declared

_STARTED = time.monotonic()  # when the stage process imported this module
KIND = ("mlflow.experimentKind", "custom_model_development")  # the UI's runs view (not "genai_development")
EXECUTION_TAG = "rp.execution"


def repo_root() -> Path:
    return Path(os.environ.get("DVC_ROOT") or os.getcwd()).resolve()


def tracking_uri(params: dict) -> str:
    return (os.environ.get("MLFLOW_TRACKING_URI") or params["mlflow"]["tracking_uri"]
            or f"sqlite:///{repo_root() / 'mlflow.db'}")


def flatten(d: dict, prefix: str = "") -> dict:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``; lists are kept as their string form."""
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _as_params(d: dict) -> dict:
    return {k: str(v)[:500] for k, v in flatten(d).items()}


def _experiment(client, params: dict) -> str:
    """The experiment's id, created (or retagged) with the runs-view kind."""
    name = params["mlflow"]["experiment"]
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        # artifacts beside the store, not in the (possibly temporary) working directory
        local = client.tracking_uri.startswith("sqlite:")
        return client.create_experiment(name, (repo_root() / "mlartifacts").as_uri() if local else None,
                                        tags=dict([KIND]))
    if experiment.tags.get(KIND[0]) != KIND[1]:
        client.set_experiment_tag(experiment.experiment_id, *KIND)
    return experiment.experiment_id


def _parent(client, experiment_id: str, params: dict) -> tuple[str, bool]:
    """The run of this execution, marked RUNNING, and whether a stage of it failed already
    (``dvc repro --keep-going``); its first stage creates it with every param."""
    from mlflow.entities import Param

    key = execution.key()
    found = client.search_runs([experiment_id], f"tags.`{EXECUTION_TAG}` = '{key}'", max_results=1)
    if found:
        client.update_run(found[0].info.run_id, status="RUNNING")
        return found[0].info.run_id, found[0].info.status == "FAILED"
    run = client.create_run(experiment_id, run_name=execution.name(),
                            tags={EXECUTION_TAG: key, **execution.tags(params)})
    client.log_batch(run.info.run_id, params=[Param(k, v) for k, v in _as_params(params).items()])
    return run.info.run_id, False


@contextlib.contextmanager
def _opened(params: dict, name: str) -> Iterator[None]:
    """A stage run nested under the execution's parent, from now until the block ends."""
    import logging

    import mlflow

    logging.getLogger("mlflow").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    mlflow.set_tracking_uri(tracking_uri(params))
    client = mlflow.MlflowClient()
    experiment_id = _experiment(client, params)
    parent, failed_before = _parent(client, experiment_id, params)
    status = "FAILED"
    try:
        with mlflow.start_run(experiment_id=experiment_id, run_name=name, parent_run_id=parent,
                              tags=execution.tags(params)):
            yield
            # cost of the stage process so far (MLflow only: timings never go into DVC metrics); workers:
            # the largest of its finished child processes (the local backend's pool)
            mlflow.log_metrics({"stage_seconds": time.monotonic() - _STARTED,
                                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                                "peak_rss_workers_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024})
        status = "FAILED" if failed_before else "FINISHED"
    finally:
        client.set_terminated(parent, status)  # now: after this stage's run ended


@contextlib.contextmanager
def stage_run(params: dict, default_name: str, logged: dict) -> Iterator[object]:
    """This stage's run, named ``DVC_STAGE`` else ``default_name``: the open one (``cli.execute``
    opened it; renamed to ``default_name`` outside DVC) or one opened here until the block ends.
    Logs the params dvc.yaml declares for it and ``logged``; yields ``mlflow``."""
    import mlflow

    owner = mlflow.active_run() is None
    name = os.environ.get("DVC_STAGE") or default_name
    with _opened(params, name) if owner else contextlib.nullcontext():
        if owner or not os.environ.get("DVC_STAGE"):
            mlflow.set_tags({"mlflow.runName": name, "dvc.stage": name})
            mlflow.log_params(_as_params(declared(name, params)))
        mlflow.log_params(_as_params(logged))
        yield mlflow


def numbers(metrics: dict) -> dict:
    """The numeric leaves of nested ``metrics`` under their dotted keys: the DVC metrics keys
    (``pipeline.core.metrics``)."""
    return {k: v for k, v in flatten(metrics).items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def log_stage(params: dict, name: str, logged: dict, metrics: dict | None = None, artifacts=(),
              history: list[tuple[int, dict]] = ()) -> None:
    """Into this stage's run (``stage_run``): ``logged`` params (beside the declared ones: a key of
    both holds one value, so a value the stage derives gets a name of its own), the numeric leaves of
    ``metrics``, per-step ``history`` as (step, metrics) pairs, and ``artifacts`` (paths, or
    (path, artifact folder) pairs)."""
    with stage_run(params, name, logged) as mlflow:
        for step, values in history:
            mlflow.log_metrics(numbers(values), step=step)
        if metrics:
            mlflow.log_metrics(numbers(metrics))
        for artifact in artifacts:
            mlflow.log_artifact(*((artifact,) if isinstance(artifact, str) else artifact))
