"""Scale-out (docs/cluster.md): the compute backends give byte-identical results on a real local
Ray instance, with 1 or 2 workers; a worker killed mid-task has its chunk retried. The stages
themselves on Ray and on a two-node cluster, a team's MLflow server and DVC remote:
test_cluster_stages.py. Every Ray process uses temporary directories and a token of its own (no
~/.ray, no /tmp/ray) and is stopped by its process id at the end."""
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from pipeline.core.compute import CLIENT_ATTEMPTS, CLIENT_STARTUP, connect
from pipeline.core.errors import PipelineError
from pipeline.smoothing import Smooth
from pipeline.smoothing.certification import certification_summary, certify_table
from pipeline.tabular import ape
from pipeline.tabular.mlp import mlp
from tests.core.conftest import ray_cfg

CERTIFY = {"noise": "fresh", "chunk": 4096, "n0": 50, "n": 300, "alpha": 0.01}
META = {"feature_names": list("abcdef"), "sensitive_index": 1, "sensitive_mean": 27.0, "sensitive_std": 5.0}


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


@pytest.mark.parametrize("key, value", [("backend", "dask"), ("chunk", 0), ("ray.address", "ray://"),
                                        ("ray.address", "http://head:6379"), ("ray.cpus", 0), ("ray.max_retries", -1)])
def test_bad_compute_params_name_the_key_and_the_fix(tmp_path, key, value):
    from pipeline.core.params import load_params

    params = yaml.safe_load(open("params.yaml"))
    section, *rest = key.split(".")
    (params["compute"][section] if rest else params["compute"])[rest[0] if rest else key] = value
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    with pytest.raises(PipelineError, match=rf"'compute\.{key}' = .*fix:"):
        load_params(tmp_path / "params.yaml")


class FakeRay:
    """``ray`` as ``connect`` sees it, whose ``init`` raises the given errors in turn."""

    def __init__(self, *errors):
        self.errors, self.inits, self.shutdowns = list(errors), 0, 0

    def is_initialized(self):
        return False

    def init(self, **kw):
        self.inits += 1
        if self.errors:
            raise self.errors.pop(0)

    def shutdown(self):
        self.shutdowns += 1


def test_a_ray_client_server_that_fails_to_start_is_retried_and_other_errors_are_not(monkeypatch, capsys):
    startup = RuntimeError(f"Initialization failure from server: {CLIENT_STARTUP}. See the log")
    fake = FakeRay(startup)
    monkeypatch.setitem(sys.modules, "ray", fake)
    assert connect(ray_cfg("ray://head:10001")) is fake
    assert (fake.inits, fake.shutdowns) == (2, 1) and "attempt 1 of 3" in capsys.readouterr().err

    fake = FakeRay(*[startup] * CLIENT_ATTEMPTS)  # it keeps failing: one clear error after the last attempt
    monkeypatch.setitem(sys.modules, "ray", fake)
    with pytest.raises(PipelineError, match=r"compute\.ray\.address = 'ray://head:10001'.*fix:"):
        connect(ray_cfg("ray://head:10001"))
    assert fake.inits == CLIENT_ATTEMPTS

    fake = FakeRay(ConnectionError("no head at head:6379"))  # not the server's start-up: not retried
    monkeypatch.setitem(sys.modules, "ray", fake)
    with pytest.raises(PipelineError, match="no head"):
        connect(ray_cfg("head:6379"))
    assert fake.inits == 1
