"""MLflow bookkeeping: one parent run per pipeline execution, one nested run per stage.

A stage process opens its run when it starts (``cli.execute`` enters ``stage_run``) and closes
it FINISHED or FAILED when it ends, so the run's duration is the stage's. Its parent is the run
of the execution (``execution.key()``: one ``dvc repro`` or one ``dvc exp run``), made by its
first stage with the whole params.yaml; each stage marks it RUNNING on start and ends it on exit,
so the parent spans every stage. A stage run holds the params its ``dvc.yaml`` entry declares
(``dvc_params``) plus the ones the stage passes. The experiment is tagged as model training,
so the MLflow UI opens on its runs table rather than on GenAI traces.

The stage process never imports MLflow: its logger process (``python -m pipeline.core.tracking``)
does, and writes what the stage sends it as JSON lines on a pipe (``Run``). Importing the
``stages`` package as a stage process starts the logger first (``prestart``), so MLflow's start-up
(seconds of imports) runs beside the stage's own imports instead of before its work. The run's
start and end times are the ones the stage sends. If the logger fails, the stage fails with its
one-line message.

The store defaults to a sqlite file at the repository root, addressed by absolute path.
Queued ``dvc exp`` runs execute in a temporary copy of the repository; DVC passes the
parent repository's root in ``DVC_ROOT``, so their runs land in the same store.
``MLFLOW_TRACKING_URI`` (or ``mlflow.tracking_uri`` in params) points at any other store.
"""
from __future__ import annotations

import atexit
import contextlib
import importlib
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

from . import execution
from .dvc_params import declared
from .errors import PipelineError

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


def numbers(metrics: dict) -> dict:
    """The numeric leaves of nested ``metrics`` under their dotted keys: the DVC metrics keys
    (``pipeline.core.metrics``)."""
    return {k: v for k, v in flatten(metrics).items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def _now_ms() -> int:
    return int(time.time() * 1000)


# -- the stage process's side ------------------------------------------------------------------
class _Logger:
    """The logger process of this stage process and the pipe to it."""

    def __init__(self):
        self.proc = subprocess.Popen([sys.executable, "-m", "pipeline.core.tracking"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)

    def send(self, kind: str, **fields) -> None:
        self.proc.stdin.write(json.dumps({"kind": kind, **fields}) + "\n")
        self.proc.stdin.flush()

    def close(self) -> str:
        """Wait for the logger to finish; its error message ("" when it succeeded)."""
        out, _ = self.proc.communicate()
        return out.strip() or (f"the MLflow logger exited with code {self.proc.returncode}"
                               if self.proc.returncode else "")

    def discard(self) -> None:
        """End a logger that never opened a run (``--help``, bad params)."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


_logger: _Logger | None = None
_active: "Run | None" = None


def _stage_command() -> bool:
    """Whether this process is a stage process: ``python [options] -m stages.<name>``."""
    argv = getattr(sys, "orig_argv", [])
    return any(a == "-m" and b.startswith("stages.") for a, b in zip(argv, argv[1:]))


def prestart() -> None:
    """Start this stage process's logger now, so that MLflow loads while the stage imports."""
    global _logger
    if _logger is None and _stage_command():
        _logger = _Logger()
        atexit.register(_logger.discard)


class Run:
    """The open stage run, as the stage logs into it (each call is sent to the logger)."""

    def __init__(self, logger: _Logger):
        self._logger = logger

    def log_params(self, params: dict) -> None:
        self._logger.send("params", values={k: str(v) for k, v in params.items()})

    def log_metrics(self, metrics: dict, step: int = 0) -> None:
        self._logger.send("metrics", values={k: float(v) for k, v in metrics.items()}, step=step, time=_now_ms())

    def set_tags(self, tags: dict) -> None:
        self._logger.send("tags", values={k: str(v) for k, v in tags.items()})

    def log_artifact(self, path: str, artifact_path: str | None = None) -> None:
        self._logger.send("artifact", path=str(Path(path).resolve()), folder=artifact_path)


@contextlib.contextmanager
def _opened(params: dict, name: str) -> Iterator[Run]:
    """A stage run nested under the execution's parent, from now until the block ends."""
    global _logger, _active
    logger, _logger = _logger or _Logger(), None
    uri = tracking_uri(params)
    logger.send("open", uri=uri, artifacts=(repo_root() / "mlartifacts").as_uri(),
                experiment=params["mlflow"]["experiment"], execution=execution.key(), parent_name=execution.name(),
                tags=execution.tags(params), params=_as_params(params), name=name, time=_now_ms())
    _active = run = Run(logger)
    status = "FAILED"
    try:
        yield run
        # cost of the stage process so far (MLflow only: timings never go into DVC metrics); workers:
        # the largest of its finished child processes (the local backend's pool)
        run.log_metrics({"stage_seconds": time.monotonic() - _STARTED,
                         "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                         "peak_rss_workers_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024})
        status = "FINISHED"
    finally:
        _active = None
        logger.send("end", status=status, time=_now_ms())
        error = logger.close()
    if error:
        raise PipelineError(f"{error}; fix: check the tracking store ({uri}: mlflow.tracking_uri in params.yaml "
                            f"or MLFLOW_TRACKING_URI)")


@contextlib.contextmanager
def stage_run(params: dict, default_name: str, logged: dict) -> Iterator[Run]:
    """This stage's run, named ``DVC_STAGE`` else ``default_name``: the open one (``cli.execute``
    opened it; renamed to ``default_name`` outside DVC) or one opened here until the block ends.
    Logs the params dvc.yaml declares for it and ``logged``; yields the ``Run``."""
    owner = _active is None
    name = os.environ.get("DVC_STAGE") or default_name
    with _opened(params, name) if owner else contextlib.nullcontext(_active) as run:
        if owner or not os.environ.get("DVC_STAGE"):
            run.set_tags({"mlflow.runName": name, "dvc.stage": name})
            run.log_params(_as_params(declared(name, params)))
        run.log_params(_as_params(logged))
        yield run


def log_stage(params: dict, name: str, logged: dict, metrics: dict | None = None, artifacts=(),
              history: list[tuple[int, dict]] = ()) -> None:
    """Into this stage's run (``stage_run``): ``logged`` params (beside the declared ones: a key of
    both holds one value, so a value the stage derives gets a name of its own), the numeric leaves of
    ``metrics``, per-step ``history`` as (step, metrics) pairs, and ``artifacts`` (paths, or
    (path, artifact folder) pairs)."""
    with stage_run(params, name, logged) as run:
        for step, values in history:
            run.log_metrics(numbers(values), step=step)
        if metrics:
            run.log_metrics(numbers(metrics))
        for artifact in artifacts:
            run.log_artifact(*((artifact,) if isinstance(artifact, str) else artifact))


# -- the logger process's side -----------------------------------------------------------------
def _experiment(client, name: str, artifacts: str) -> str:
    """The experiment's id, created (or retagged) with the runs-view kind."""
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        # artifacts beside the store, not in the (possibly temporary) working directory
        local = client.tracking_uri.startswith("sqlite:")
        return client.create_experiment(name, artifacts if local else None, tags=dict([KIND]))
    if experiment.tags.get(KIND[0]) != KIND[1]:
        client.set_experiment_tag(experiment.experiment_id, *KIND)
    return experiment.experiment_id


def _parent(client, experiment_id: str, msg: dict) -> tuple[str, bool]:
    """The run of this execution, marked RUNNING, and whether a stage of it failed already
    (``dvc repro --keep-going``); its first stage creates it with every param."""
    from mlflow.entities import Param

    key = msg["execution"]
    found = client.search_runs([experiment_id], f"tags.`{EXECUTION_TAG}` = '{key}'", max_results=1)
    if found:
        client.update_run(found[0].info.run_id, status="RUNNING")
        return found[0].info.run_id, found[0].info.status == "FAILED"
    run = client.create_run(experiment_id, start_time=msg["time"], run_name=msg["parent_name"],
                            tags={EXECUTION_TAG: key, **msg["tags"]})
    client.log_batch(run.info.run_id, params=[Param(k, v) for k, v in msg["params"].items()])
    return run.info.run_id, False


def _serve(lines) -> None:
    """Carry out the stage's messages (``Run``) until it ends its run; a stage process that dies
    without ending it leaves its run FAILED."""
    import logging

    from mlflow.entities import Metric, Param, RunTag
    from mlflow.tracking import MlflowClient

    importlib.import_module("mlflow.store.tracking.sqlalchemy_store")  # the slow import, before the stage asks

    logging.getLogger("mlflow").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    client = run_id = parent = None
    failed_before = False
    for line in lines:
        msg = json.loads(line)
        kind, values = msg["kind"], msg.get("values", {})
        if kind == "open":
            client = MlflowClient(msg["uri"])
            experiment_id = _experiment(client, msg["experiment"], msg["artifacts"])
            parent, failed_before = _parent(client, experiment_id, msg)
            run_id = client.create_run(experiment_id, start_time=msg["time"], run_name=msg["name"],
                                       tags={"mlflow.parentRunId": parent, **msg["tags"]}).info.run_id
        elif kind == "params":
            client.log_batch(run_id, params=[Param(k, v) for k, v in values.items()])
        elif kind == "metrics":
            client.log_batch(run_id, metrics=[Metric(k, v, msg["time"], msg["step"]) for k, v in values.items()])
        elif kind == "tags":
            client.log_batch(run_id, tags=[RunTag(k, v) for k, v in values.items()])
        elif kind == "artifact":
            client.log_artifact(run_id, msg["path"], msg["folder"])
        elif kind == "end":
            client.set_terminated(run_id, msg["status"], end_time=msg["time"])
            ended = "FINISHED" if msg["status"] == "FINISHED" and not failed_before else "FAILED"
            client.set_terminated(parent, ended, end_time=msg["time"])  # now: after this stage's run ended
            return
    if run_id is not None:
        client.set_terminated(run_id, "FAILED")
        client.set_terminated(parent, "FAILED")


if __name__ == "__main__":
    report = os.fdopen(os.dup(1), "w")  # the pipe the stage reads: an error line, nothing else
    os.dup2(2, 1)  # what MLflow prints ("View run ... at ...") goes to the stage's stderr
    try:
        _serve(sys.stdin)
    except Exception as exc:  # one line for the stage to report (the store is the user's to fix)
        print(f"MLflow logging failed: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}",
              file=report)
        sys.exit(2)
