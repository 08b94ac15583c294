"""MLflow runs of stage processes, queried back from the real sqlite store: one parent run per
execution (``RP_EXECUTION``, or the ``dvc`` process the stages run under) holding one nested run
per stage, each open for the whole stage and holding the params its dvc.yaml entry declares.

The stage is a toy (``stages.sleepy`` in a temporary folder, beside a two-stage dvc.yaml and the
project's own ``stages/__init__.py``, which starts the MLflow logger process) that sleeps, then logs
through ``log_stage`` under the name ``first`` (as ``train_classifier`` logs ``train_target``) and
records whether it imported MLflow itself."""
import hashlib
import json
import os
import subprocess
import sys

import pytest
import yaml

from pipeline.core.tracking import flatten
from tests.helpers import ROOT

SLEEP = 1.0
STAGE = '''"""Sleep $SLEEP seconds, then log one metric; FAIL=pipeline or FAIL=crash fails instead."""
import os
import sys
import time

from pipeline.core.cli import execute
from pipeline.core.errors import PipelineError
from pipeline.core.params import load_params
from pipeline.core.tracking import log_stage


def run():
    time.sleep(float(os.environ["SLEEP"]))
    if os.environ.get("FAIL") == "pipeline":
        raise PipelineError("sleepy: told to fail")
    if os.environ.get("FAIL") == "crash":
        raise RuntimeError("sleepy crashed")
    log_stage(load_params(), "first", {"compute": {"backend": "local"}}, {"value": 1.5})
    with open("imported_mlflow.txt", "w") as f:
        f.write(str("mlflow" in sys.modules))


execute(run)
'''
DVC_YAML = {"stages": {
    "first": {"cmd": "python -m stages.sleepy", "params": ["seed", "train.hidden"], "outs": ["first.txt"]},
    "second": {"cmd": "python -m stages.sleepy", "deps": ["first.txt"], "outs": ["second.txt"]},
    "other": {"cmd": "python -m stages.sleepy", "params": ["smoothing"], "outs": ["other.txt"]},
}}
FAKE_DVC = '''#!{python}
"""Runs `python -m stages.sleepy` once per stage named on the command line, as DVC would."""
import os, subprocess, sys
for stage in sys.argv[1:]:
    subprocess.run([sys.executable, "-m", "stages.sleepy"], env={{**os.environ, "DVC_STAGE": stage}}, check=True)
'''


@pytest.fixture
def workdir(tmp_path):
    (tmp_path / "stages").mkdir()
    (tmp_path / "stages/__init__.py").write_text((ROOT / "stages/__init__.py").read_text())
    (tmp_path / "stages/sleepy.py").write_text(STAGE)
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump(DVC_YAML))
    (tmp_path / "params.yaml").write_text((ROOT / "params.yaml").read_text())
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin/dvc").write_text(FAKE_DVC.format(python=sys.executable))
    (tmp_path / "bin/dvc").chmod(0o755)
    return tmp_path


def run(workdir, *cmd, stage=None, execution=None, sleep=SLEEP, fail=None, uri=None):
    env = {k: v for k, v in os.environ.items()
           if k not in ("MLFLOW_TRACKING_URI", "RP_EXECUTION", "DVC_STAGE", "DVC_ROOT", "DVC_EXP_NAME")}
    env.update(PYTHONPATH=str(ROOT), SLEEP=str(sleep), **({"DVC_STAGE": stage} if stage else {}),
               **({"RP_EXECUTION": execution} if execution else {}), **({"FAIL": fail} if fail else {}),
               **({"MLFLOW_TRACKING_URI": uri} if uri else {}))
    return subprocess.run(cmd or [sys.executable, "-m", "stages.sleepy"], cwd=workdir, env=env,
                          capture_output=True, text=True)


def store(workdir):
    """(experiment, {parent run: [its stage runs]}) from the workdir's store."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{workdir / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("robust-privacy")
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    return experiment, {p: sorted((r for r in runs if r.data.tags.get("mlflow.parentRunId") == p.info.run_id),
                                  key=lambda r: r.info.start_time) for p in parents}


def duration(run):
    return (run.info.end_time - run.info.start_time) / 1000


def test_stages_of_one_execution_nest_under_one_parent_that_spans_them(workdir):
    for stage, execution in (("first", "a"), ("second", "a"), ("other", "b")):
        out = run(workdir, stage=stage, execution=execution)
        assert out.returncode == 0, out.stderr
    experiment, families = store(workdir)
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    by_key = {p.data.tags["rp.execution"]: (p, kids) for p, kids in families.items()}
    assert sorted(by_key) == ["a", "b"]
    parent, kids = by_key["a"]
    assert [k.info.run_name for k in kids] == ["first", "second"]
    assert all(k.info.status == "FINISHED" and duration(k) >= SLEEP for k in kids)
    assert all(k.data.metrics["stage_seconds"] >= SLEEP and k.data.metrics["value"] == 1.5 for k in kids)
    assert parent.info.status == "FINISHED" and parent.info.run_name.startswith("repro ")
    assert parent.info.start_time <= kids[0].info.start_time and parent.info.end_time >= kids[-1].info.end_time
    # the declared params (second declares none: those of first, whose output it reads) and the stage's own
    first = {"seed": "0", "train.hidden": "64", "compute.backend": "local"}
    assert kids[0].data.params == kids[1].data.params == first
    other = by_key["b"][1][0]
    assert other.info.run_name == "other" and set(other.data.params) == {
        "smoothing.sigmas", "smoothing.n0", "smoothing.n", "smoothing.alpha", "smoothing.noise", "smoothing.chunk",
        "compute.backend"}
    assert other.data.params["smoothing.sigmas"] == "[1.0, 2.0, 3.0]"
    # the parent holds every param, and the hash of the params as canonical JSON
    params = yaml.safe_load((workdir / "params.yaml").read_text())
    assert parent.data.params == {k: str(v)[:500] for k, v in flatten(params).items()}
    canonical = json.dumps(params, sort_keys=True, separators=(",", ":")).encode()
    assert parent.data.tags["params.sha256"] == hashlib.sha256(canonical).hexdigest()
    assert (workdir / "imported_mlflow.txt").read_text() == "False"  # its logger process did


def test_a_store_that_cannot_be_written_fails_the_stage_in_one_line(workdir):
    blocked = workdir / "file"
    blocked.write_text("not a folder")
    out = run(workdir, stage="first", execution="a", sleep=0, uri=f"sqlite:///{blocked}/mlflow.db")
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and "Traceback" not in out.stderr
    assert out.stderr.startswith("error: MLflow logging failed") and "MLFLOW_TRACKING_URI" in out.stderr


def test_each_dvc_process_is_one_execution_and_a_stage_by_hand_is_its_own(workdir):
    for _ in range(2):
        out = run(workdir, str(workdir / "bin/dvc"), "first", "second", sleep=0)
        assert out.returncode == 0, out.stderr
    out = run(workdir, sleep=0)  # by hand: no DVC_STAGE, so named after what the stage logs
    assert out.returncode == 0, out.stderr
    _, families = store(workdir)
    names = sorted([k.info.run_name for k in kids] for kids in families.values())
    assert names == [["first"], ["first", "second"], ["first", "second"]]
    keys = [p.data.tags["rp.execution"] for p in families]
    assert len(set(keys)) == 3 and sum(k.startswith("dvc:") for k in keys) == 2
    by_hand = next(kids[0] for kids in families.values() if len(kids) == 1)
    assert by_hand.data.params == {"seed": "0", "train.hidden": "64", "compute.backend": "local"}


def test_a_failing_stage_ends_failed_and_bad_params_open_no_run(workdir):
    params = (workdir / "params.yaml").read_text()
    (workdir / "params.yaml").write_text(params.replace("seed: 0", "seed: -1", 1))
    out = run(workdir, stage="first", execution="a")
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and "'seed'" in out.stderr
    assert not (workdir / "mlflow.db").exists()
    (workdir / "params.yaml").write_text(params)
    out = run(workdir, stage="first", execution="a", fail="pipeline")
    assert out.returncode == 2 and out.stderr == "error: sleepy: told to fail\n"
    out = run(workdir, stage="first", execution="b", fail="crash")
    assert out.returncode == 1 and "Traceback" in out.stderr and "RuntimeError: sleepy crashed" in out.stderr
    assert run(workdir, stage="second", execution="a", sleep=0).returncode == 0  # as `dvc repro --keep-going`
    _, families = store(workdir)
    by_key = {p.data.tags["rp.execution"]: (p, kids) for p, kids in families.items()}
    assert [k.info.status for k in by_key["a"][1]] == ["FAILED", "FINISHED"]
    assert [k.info.status for k in by_key["b"][1]] == ["FAILED"]
    for parent, kids in families.items():
        assert parent.info.status == "FAILED" and duration(kids[0]) >= SLEEP
        assert parent.info.end_time >= kids[-1].info.end_time


def test_outside_a_stage_process_execute_opens_no_run_and_log_stage_opens_its_own(workdir):
    out = run(workdir, sys.executable, str(workdir / "stages/sleepy.py"), stage="first", execution="a")
    assert out.returncode == 0, out.stderr
    _, families = store(workdir)
    ((parent, (kid,)),) = families.items()
    assert kid.info.run_name == "first" and kid.info.status == "FINISHED"
    assert duration(kid) < SLEEP  # opened by log_stage, after the work
