"""Scale-out of the stages themselves (docs/cluster.md): ``invert`` on a local Ray instance with 2
workers and ``certify`` / ``ape`` on a two-node Ray cluster on loopback write the bytes the local
backend wrote; the stages log to a team's MLflow server; a fresh clone pulls every output from a
DVC remote. Every Ray process uses temporary directories and a token of its own (no ~/.ray, no
/tmp/ray) and is stopped by its process id at the end."""
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from tests.core.conftest import free_port, ray_cfg
from tests.helpers import edit_params, sh

BIN = Path(sys.executable).parent
OUTPUTS = ["results/certify/sigma_1.0.tsv", "metrics/certify/sigma_1.0.json", "results/ape/records.tsv",
           "metrics/ape.json", "plots/ape_histogram.csv"]


def test_invert_stage_is_byte_identical_locally_and_on_ray_workers(repo, ray_env):
    outputs = ["results/inversion/attacks.tsv", "metrics/inversion.json"]
    before = {path: (repo / path).read_bytes() for path in outputs}  # from `dvc repro`, backend local
    original = (repo / "params.yaml").read_text()
    try:
        for cpus in (1,):  # 1 CPU per task on a 2-CPU instance: 2 workers (1 worker: the certify test)
            edit_params(repo, lambda p: p["compute"].update(backend="ray", ray=ray_cfg(cpus=cpus)))
            for path in outputs:
                (repo / path).unlink()
            log = sh(repo, sys.executable, "-m", "stages.invert").stderr
            assert "BREP-MI (ray)" in log
            for path in outputs:
                assert (repo / path).read_bytes() == before[path], (cpus, path)
    finally:
        (repo / "params.yaml").write_text(original)
    assert "beta_0_01" in json.loads(before["metrics/inversion.json"])["inversion"]["mid"]


# -- a two-node cluster on loopback, driven by the stages themselves -----------------------------
def _start(cmd, log, ready="Ray runtime started", timeout=90):
    proc = subprocess.Popen(cmd, stdout=open(log, "w"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + timeout
    while ready not in log.read_text():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"{cmd[:3]} did not start:\n{log.read_text()[-3000:]}")
        time.sleep(0.2)
    return proc


def _stop(procs):
    for proc in procs:
        proc.terminate()  # `ray start --block` stops the processes it started
    for proc in procs:
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def two_nodes(ray_env):
    """`ray start --head` and a second `ray start --address` on 127.0.0.1, 1 CPU each, own temp dirs."""
    port, client = free_port(), free_port()
    dirs = [ray_env / "head", ray_env / "node"]
    common = ["--block", "--node-ip-address", "127.0.0.1", "--num-cpus", "1", "--disable-usage-stats"]
    procs = []
    try:
        procs.append(_start([str(BIN / "ray"), "start", "--head", "--port", str(port), "--ray-client-server-port",
                             str(client), "--include-dashboard", "false", "--temp-dir", str(dirs[0]),
                             "--dashboard-agent-listen-port", str(free_port()), *common],
                            ray_env / "head.log"))
        procs.append(_start([str(BIN / "ray"), "start", "--address", f"127.0.0.1:{port}", "--temp-dir", str(dirs[1]),
                             "--dashboard-agent-listen-port", str(free_port()), *common], ray_env / "node.log"))
        yield {"address": f"127.0.0.1:{port}", "client": f"ray://127.0.0.1:{client}", "dirs": dirs}
    finally:
        _stop(procs)


def _ran_on(node_dir: Path, task: str) -> bool:
    return any(f":task_name:{task}" in log.read_text(errors="replace")
               for log in node_dir.glob("session_*/logs/worker-*.out"))


def test_stages_on_a_two_node_cluster_write_byte_identical_outputs(repo, two_nodes):
    before = {path: (repo / path).read_bytes() for path in OUTPUTS}  # from `dvc repro`, backend local
    original = (repo / "params.yaml").read_text()
    try:
        # the head's GCS address (both stages), then Ray Client (certify only: it is slow to connect)
        for address, outputs in ((two_nodes["address"], OUTPUTS), (two_nodes["client"], OUTPUTS[:2])):
            edit_params(repo, lambda p: p["compute"].update(backend="ray", chunk=150, ray=ray_cfg(address)))
            for path in outputs:
                (repo / path).unlink()
            sh(repo, sys.executable, "-m", "stages.certify", "--sigma", "1.0")
            if outputs == OUTPUTS:
                sh(repo, sys.executable, "-m", "stages.ape")
            for path in outputs:
                assert (repo / path).read_bytes() == before[path], (address, path)
    finally:
        (repo / "params.yaml").write_text(original)
    for node in two_nodes["dirs"]:  # both nodes did part of the work
        assert _ran_on(node, "certify_rows") and _ran_on(node, "count_records"), node
    assert "Data and pipelines are up to date" in sh(repo, "dvc", "status").stdout


# -- the team's MLflow server and DVC remote -------------------------------------------------------
def test_stages_log_to_an_mlflow_server(repo, tmp_path):
    from mlflow.tracking import MlflowClient

    port = free_port()
    uri = f"http://127.0.0.1:{port}"
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    server = subprocess.Popen([str(BIN / "mlflow"), "server", "--backend-store-uri", f"sqlite:///{tmp_path / 'db'}",
                               "--artifacts-destination", str(tmp_path / "artifacts"), "--host", "127.0.0.1",
                               "--port", str(port), "--workers", "1"], env=env, start_new_session=True,
                              stdout=open(tmp_path / "log", "w"), stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"{uri}/health", timeout=2)
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, (tmp_path / "log").read_text()[-3000:]
                time.sleep(0.5)
        out = sh(repo, "env", f"MLFLOW_TRACKING_URI={uri}", "dvc", "repro", "--force", "--single-item", "certify@1.0")
        assert "Running stage 'certify@1.0'" in out.stdout
        client = MlflowClient(tracking_uri=uri)
        runs = client.search_runs([client.get_experiment_by_name("robust-privacy").experiment_id])
        (run,) = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
        assert run.info.run_name == "certify@1.0"
        assert {r.info.run_id for r in runs} == {run.info.run_id, run.data.tags["mlflow.parentRunId"]}  # the repro
        metrics = json.loads((repo / "metrics/certify/sigma_1.0.json").read_text())
        assert run.data.metrics["certify.sigma_1.accuracy"] == metrics["certify"]["sigma_1"]["accuracy"]
        assert run.data.params["compute.backend"] == "local"
        assert [a.path for a in client.list_artifacts(run.info.run_id)] == ["sigma_1.0.tsv"]
        assert list((tmp_path / "artifacts").rglob("sigma_1.0.tsv"))  # stored by the server, not by the stage
    finally:
        os.killpg(server.pid, signal.SIGTERM)  # the server and the workers it started
        server.wait(timeout=60)
    assert "Data and pipelines are up to date" in sh(repo, "dvc", "status").stdout


def test_a_fresh_clone_pulls_every_output_from_the_dvc_remote_without_recomputing(repo, tmp_path):
    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    outs = sorted({o["path"] for stage in lock["stages"].values() for o in stage.get("outs", [])})
    assert "models/mlp.pt" in outs and "results/ape/records.tsv" in outs
    sh(repo, "dvc", "remote", "add", "--default", "team", str(tmp_path / "remote"))
    sh(repo, "git", "add", "-A")
    sh(repo, "git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "results and the team remote")
    sh(repo, "dvc", "push")
    clone = tmp_path / "clone"
    sh(tmp_path, "git", "clone", "-q", str(repo), str(clone))
    assert not (clone / "models/mlp.pt").exists()
    sh(clone, "dvc", "pull")
    assert "Data and pipelines are up to date" in sh(clone, "dvc", "status").stdout
    out = sh(clone, "dvc", "repro")
    assert "Running stage" not in out.stdout and "didn't change, skipping" in out.stdout
    for out in outs:  # a directory output (the reconstruction grids) compares file by file
        files = [p.relative_to(repo) for p in (repo / out).rglob("*") if p.is_file()] if (repo / out).is_dir() else [out]
        assert files, out
        for path in files:
            assert (clone / path).read_bytes() == (repo / path).read_bytes(), path
