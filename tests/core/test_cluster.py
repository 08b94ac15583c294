"""Scale-out (docs/cluster.md): the compute backends give byte-identical results
on a real local Ray instance, with 1 or 2 workers, and on a two-node Ray cluster on loopback; a
worker killed mid-task has its chunk retried; a team's MLflow server and DVC remote work.

Every Ray process uses temporary directories and a token of its own (no ~/.ray, no /tmp/ray)
and is stopped by its process id at the end."""
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from pipeline.core.compute import connect
from pipeline.smoothing import Smooth
from pipeline.smoothing.certification import certification_summary, certify_table
from pipeline.tabular import ape
from pipeline.tabular.mlp import mlp
from tests.helpers import edit_params, sh

BIN = Path(sys.executable).parent
OUTPUTS = ["results/certify/sigma_1.0.tsv", "metrics/certify/sigma_1.0.json", "results/ape/records.tsv",
           "metrics/ape.json", "plots/ape_histogram.csv"]
CERTIFY = {"noise": "fresh", "chunk": 4096, "n0": 50, "n": 300, "alpha": 0.01}
META = {"feature_names": list("abcdef"), "sensitive_index": 1, "sensitive_mean": 27.0, "sensitive_std": 5.0}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ray_cfg(address="", cpus=1, **kw):
    return {"address": address, "local_cpus": 2, "cpus": cpus, "gpus": 0, "max_retries": 3, **kw}


@pytest.fixture(scope="module")
def ray_env():
    """Environment of every Ray process here: its own temp dir and token, fast shutdown. The dir
    is a short path of its own: Ray's socket paths must stay under 108 bytes."""
    tmp = Path(tempfile.mkdtemp(prefix="ray-"))
    (tmp / "token").write_text(secrets.token_hex(32))
    with pytest.MonkeyPatch.context() as mp:
        for key, value in {"RAY_TMPDIR": str(tmp), "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(tmp / "token"),
                           "RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S": "0", "RAY_USAGE_STATS_ENABLED": "0"}.items():
            mp.setenv(key, value)
        yield tmp
    shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="module")
def local_ray(ray_env):
    """One local Ray instance (2 CPUs) in this process, started the way a stage starts one."""
    ray = connect(ray_cfg())
    yield ray
    ray.shutdown()


def table_text(table):
    return table.to_csv(sep="\t", index=False, float_format="%.6f") + json.dumps(certification_summary(table, "bmi", {"alpha": 0.01, "n": 200}, 1.0, 0, 100))


@pytest.mark.parametrize("noise", ["fresh", "shared"])
def test_certify_table_is_byte_identical_locally_and_on_ray_with_1_or_2_workers(local_ray, noise):
    torch.manual_seed(0)
    model = mlp(6, 16).eval()
    x = torch.randn(1000, 6)
    y = (x[:, 1] > 0).long().numpy()
    cfg = {**CERTIFY, "noise": noise}
    whole = Smooth(model, 2, 1.0, noise=noise, seed=3, chunk=cfg["chunk"]).certify(x, cfg["n0"], cfg["n"], cfg["alpha"])
    expected = None
    for compute in ({"backend": "local", "chunk": 1000}, {"backend": "local", "chunk": 77},
                    {"backend": "ray", "chunk": 77, "ray": ray_cfg(cpus=2)},   # one task at a time: 1 worker
                    {"backend": "ray", "chunk": 77, "ray": ray_cfg(cpus=1)}):  # 2 workers
        table = certify_table(model, x, y, 1.0, cfg, 3, 5.0, compute, progress=False)
        assert np.array_equal(table["predict"], whole.prediction) and np.array_equal(table["radius"], whole.radius)
        expected = expected or table_text(table)
        assert table_text(table) == expected, compute
    assert 0 < (table["predict"] == -1).mean() < 0.2 < (table["radius"] > 0).mean()  # a non-trivial mix


@pytest.mark.parametrize("noise", ["record", "fresh"])
def test_ape_certification_is_identical_locally_and_on_ray(local_ray, noise):
    torch.manual_seed(1)
    model = mlp(6, 16).eval()
    records = np.random.default_rng(0).normal(size=(12, 6)).astype(np.float32)
    aug = ape.Augmented(records, ape.augment(np.linspace(34, 40, 12), 33.4, 0.2, 30), 1, META)
    configs = [ape.Configuration("sigma_1", 1.0, 200, 0.01, 1),
               ape.Configuration("ablation.sigma_3.n_100.alpha_0_99", 3.0, 100, 0.99, 4),
               ape.Configuration("sigma_3", 3.0, 200, 0.01, 1)]
    args = (model, aug, configs, 50, noise, 0, 4096)
    local = ape.certify_augmented(*args, {"backend": "local", "chunk": len(aug)}, progress=False)
    remote = ape.certify_augmented(*args, {"backend": "ray", "chunk": 50, "ray": ray_cfg()}, progress=False)
    for name in local:
        for key in ("prediction", "radius"):
            assert np.array_equal(local[name][key], remote[name][key]), (name, key)
    assert (local["sigma_1"]["prediction"] == 1).any() and (local["sigma_1"]["prediction"] == 0).any()


def test_membership_reference_models_are_identical_locally_and_as_ray_tasks(local_ray):
    from pipeline.attacks.reference import inclusion
    from pipeline.experiments.membership import reference_models

    rng = np.random.default_rng(0)
    x = rng.random((60, 1, 8, 8), dtype=np.float32)
    y = np.arange(60) % 3
    keep = inclusion(3, 60, seed=0)
    cfg = {"epochs": 3, "batch_size": 16, "lr": 0.01}
    local = reference_models(x, y, keep, 3, {"compute": {"backend": "local", "chunk": 1}, "target": cfg}, 5)
    remote = reference_models(x, y, keep, 3, {"compute": {"backend": "ray", "chunk": 10, "ray": ray_cfg()},
                                             "target": cfg}, 5)
    for a, b in zip(local, remote, strict=True):
        assert all(torch.equal(a.state_dict()[k], b.state_dict()[k]) for k in a.state_dict())


def test_invert_stage_is_byte_identical_locally_and_on_ray_with_1_or_2_workers(repo, ray_env):
    outputs = ["results/inversion/attacks.tsv", "metrics/inversion.json"]
    before = {path: (repo / path).read_bytes() for path in outputs}  # from `dvc repro`, backend local
    original = (repo / "params.yaml").read_text()
    try:
        for cpus in (2, 1):  # 2 CPUs per task on a 2-CPU instance: 1 worker; then 2 workers
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


def _own_workers(name: str) -> list[int]:
    """Ray workers of this process's Ray instance (children of its raylet) running task ``name``."""
    def parent(pid):
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])

    found = []
    for entry in os.listdir("/proc"):
        try:
            if entry.isdigit() and Path(f"/proc/{entry}/cmdline").read_bytes().startswith(f"ray::{name}".encode()) \
                    and parent(parent(int(entry))) == os.getpid():
                found.append(int(entry))
        except (OSError, ValueError, IndexError):
            continue
    return found


def test_a_worker_killed_mid_task_is_retried_and_changes_nothing(local_ray):
    torch.manual_seed(2)
    model = mlp(6, 64).eval()
    x = torch.randn(2400, 6)
    y = (x[:, 1] > 0).long().numpy()
    cfg = {**CERTIFY, "n": 3000}
    local = certify_table(model, x, y, 1.0, cfg, 0, 5.0, {"backend": "local", "chunk": 2400}, progress=False)
    killed, done = [], threading.Event()

    def killer():
        while not done.is_set() and not killed:
            for pid in _own_workers("certify_rows"):
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
                break
            time.sleep(0.01)

    thread = threading.Thread(target=killer)
    thread.start()
    try:
        remote = certify_table(model, x, y, 1.0, cfg, 0, 5.0, {"backend": "ray", "chunk": 200, "ray": ray_cfg()},
                               progress=False)
    finally:
        done.set()
        thread.join()
    assert killed, "no worker was running a chunk: nothing was killed"
    assert table_text(remote) == table_text(local)


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


@pytest.mark.parametrize("key, value", [("backend", "dask"), ("chunk", 0), ("ray.address", "ray://"),
                                        ("ray.address", "http://head:6379"), ("ray.cpus", 0), ("ray.max_retries", -1)])
def test_bad_compute_params_name_the_key_and_the_fix(tmp_path, key, value):
    from pipeline.core.errors import PipelineError
    from pipeline.core.params import load_params

    params = yaml.safe_load(open("params.yaml"))
    section, *rest = key.split(".")
    (params["compute"][section] if rest else params["compute"])[rest[0] if rest else key] = value
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    with pytest.raises(PipelineError, match=rf"'compute\.{key}' = .*fix:"):
        load_params(tmp_path / "params.yaml")
