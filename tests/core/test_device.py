"""``compute.device``: the device every device-aware component takes from params, and on the CPU
the same bytes as before the setting existed. The CPU tests run the code path a GPU run takes
(device chosen from params, tensors and generators created on it); the CUDA test runs where
torch sees a GPU."""
import subprocess
import sys

from functools import partial

import numpy as np
import pytest
import torch
from torch import nn

from pipeline.core.device import select
from pipeline.core.errors import PipelineError
from pipeline.core.params import load_params
from pipeline.core.training import fit, predict
from pipeline.smoothing import ESTIMATE, Smooth
from pipeline.smoothing.certification import certify_table
from pipeline.tabular.mlp import mlp
from pipeline.vision.nets import target
from tests.helpers import ROOT

CUDA = torch.cuda.is_available()


def test_auto_is_cuda_where_torch_sees_it_else_the_cpu_and_cuda_without_one_is_refused():
    assert select("cpu") == torch.device("cpu")
    assert select("auto").type == ("cuda" if CUDA else "cpu")
    if not CUDA:
        with pytest.raises(PipelineError, match="compute.device is 'cuda'.*fix: use auto"):
            select("cuda")
    with pytest.raises(PipelineError, match="compute.device is 'tpu'"):
        select("tpu")


@pytest.mark.skipif(CUDA, reason="the CPU's bytes: auto is the CPU only without a GPU")
@pytest.mark.parametrize("noise", ["fresh", "shared", "keyed"])
def test_the_engine_on_the_params_device_counts_as_the_cpu_engine_did(noise):
    device = select(load_params(ROOT / "params.yaml")["compute"]["device"])
    torch.manual_seed(0)
    model, x = mlp(12, 16), torch.randn(50, 12)
    on = Smooth(model, 2, 0.5, noise=noise, seed=3, chunk=1000, secret=b"s", device=device)
    assert on._buffer("draws", (2, 3)).device == device and on.factor.device == device
    plain = Smooth(model, 2, 0.5, noise=noise, seed=3, chunk=1000, secret=b"s")
    assert np.array_equal(on.counts(x, 300, ESTIMATE, key=1), plain.counts(x, 300, ESTIMATE, key=1))
    conv = target(1, 8, 3).eval()
    images = torch.rand(20, 1, 8, 8)
    assert np.array_equal(Smooth(conv, 3, 0.2, seed=1, device=device).vote(images, 30),
                          Smooth(conv, 3, 0.2, seed=1).vote(images, 30))


@pytest.mark.skipif(CUDA, reason="the CPU's bytes: auto is the CPU only without a GPU")
def test_training_and_certify_on_the_params_device_give_the_cpu_bytes():
    params = load_params(ROOT / "params.yaml")
    device = select(params["compute"]["device"])
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(300, 6)).astype(np.float32), rng.integers(0, 2, 300)
    cfg = {"lr": 0.01, "epochs": 3, "batch_size": 64}
    torch.manual_seed(0)
    on, _ = fit(mlp(6, 8), x, y, cfg, 1, progress=False, device=device)
    torch.manual_seed(0)
    plain, _ = fit(mlp(6, 8), x, y, cfg, 1, progress=False)
    assert all(torch.equal(a, b) for a, b in zip(on.state_dict().values(), plain.state_dict().values()))
    assert next(on.parameters()).device.type == "cpu"  # fit hands the model back on the CPU
    smoothing = {"noise": "fresh", "chunk": 5000, "n0": 20, "n": 100, "alpha": 0.01}
    compute = {**params["compute"], "backend": "local", "chunk": 100}
    tables = [certify_table(on, torch.from_numpy(x), y, 0.5, smoothing, 0, 1.0, c, progress=False)
              for c in (compute, {**compute, "device": "cpu"})]
    assert tables[0].equals(tables[1])


@pytest.mark.skipif(CUDA, reason="the CPU's bytes: auto is the CPU only without a GPU")
def test_the_gan_and_mid_on_the_params_device_give_the_cpu_bytes():
    from pipeline.defenses.mid import train_mid
    from pipeline.vision.gan import train_gan

    device = select(load_params(ROOT / "params.yaml")["compute"]["device"])
    rng = np.random.default_rng(0)
    images, labels = rng.random((40, 1, 8, 8), dtype=np.float32), rng.integers(0, 3, 40)
    cfg = {"steps": 3, "batch_size": 8, "lr": 1e-4, "critic_iters": 2, "gp_weight": 10, "z_dim": 5}
    gans = [train_gan(images, cfg, 1, progress=False, **kw)[0] for kw in ({"device": device}, {})]
    mid_cfg = {"k": 4, "epochs": 2, "batch_size": 8, "lr": 0.01}
    mids = [train_mid(images, labels, 3, mid_cfg, 0.01, 1, progress=False, **kw)[0] for kw in ({"device": device}, {})]
    for a, b in (gans, mids):
        assert all(torch.equal(u, v) for u, v in zip(a.state_dict().values(), b.state_dict().values()))
        assert next(a.parameters()).device.type == "cpu"


CPU_PARAMS = {"compute": {"backend": "local", "chunk": 1, "device": "cpu"}}  # the device a stage reads from params


def same_state(a: nn.Module | dict, b: nn.Module | dict) -> bool:
    a, b = (m.state_dict() if isinstance(m, nn.Module) else m for m in (a, b))
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def on_cpu(model: nn.Module) -> bool:
    return all(t.device.type == "cpu" for t in model.state_dict().values())


def takes_the_device(run) -> None:
    """Without a GPU, a component that creates its tensors on the device it is given fails on
    ``cuda`` (one that ignored the argument would run on the CPU)."""
    if not CUDA:
        with pytest.raises((AssertionError, RuntimeError)):
            run("cuda")


def test_dpsgd_on_the_params_device_gives_the_cpu_bytes(monkeypatch):
    from pipeline.defenses import dpsgd
    from pipeline.tabular.mlp import L1Step

    monkeypatch.setattr(dpsgd, "noise_multiplier", lambda *budget: 1.0)  # the accountant's search: seconds, no device

    device = select(CPU_PARAMS["compute"]["device"])
    rng = np.random.default_rng(0)
    x = rng.normal(size=(48, 5)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    cfg = {"epochs": 2, "batch_size": 16, "lr": 0.01, "max_grad_norm": 1.0}

    def run(**kw):
        torch.manual_seed(0)
        return dpsgd.fit_private(mlp(5, 8), x, y, cfg, 4.0, 1e-5, seed=3, penalty=L1Step(1, 0.01), progress=False, **kw)
    (on, record), (plain, plain_record) = run(device=device), run()
    assert same_state(on, plain) and record == plain_record and on_cpu(on)
    grid = dict(build=partial(mlp, 5, 8), x=x, y=y, cfg=cfg, epsilons=[4.0], delta=1e-5, seed=3)
    (state, _), = dpsgd.train_grid(0, 1, device=CPU_PARAMS["compute"]["device"], **grid)
    assert same_state(state, dpsgd.train_grid(0, 1, **grid)[0][0])
    with pytest.raises(PipelineError, match="'tpu'"):
        dpsgd.train_grid(0, 1, device="tpu", **grid)
    takes_the_device(lambda d: run(device=d))


def test_membership_reference_models_on_the_params_device_give_the_cpu_bytes():
    from pipeline.experiments import membership

    rng = np.random.default_rng(0)
    x, y = rng.random((24, 1, 8, 8), dtype=np.float32), np.arange(24) % 3
    keep = np.stack([np.arange(24) < 12, np.arange(24) >= 12])
    cfg = {"epochs": 1, "batch_size": 8, "lr": 0.01}
    on = membership.reference_models(x, y, keep, 3, {**CPU_PARAMS, "target": cfg}, 7)
    plain = membership.reference_models(x, y, keep, 3, {"compute": {"backend": "local", "chunk": 1}, "target": cfg}, 7)
    assert all(same_state(a, b) for a, b in zip(on, plain))
    with pytest.raises(PipelineError, match="'tpu'"):
        membership.train_references(0, 1, x, y, keep, 3, cfg, 7, device="tpu")


def brepmi_grid(compute: dict):
    """BREP-MI through a generator against the base, a smoothed and a MID target (``run_attacks``)."""
    from pipeline.attacks import brepmi
    from pipeline.defenses.mid import build_mid
    from pipeline.experiments import inversion
    from pipeline.vision import nets

    torch.manual_seed(0)
    G, target = nets.generator(1, 8, 10).eval(), nets.target(1, 8, 3).eval()
    models = {"target": target, "mid": {0.01: build_mid(1, 8, 3, k=8).eval()}}
    cfg = brepmi.Config(max_queries=33 * 2, init_batch=16, max_init_batches=2)
    return inversion.run_attacks(G, models, inversion.configs([0.3], [5], [0.01]), cfg, 2, 1, 10, 3, seed=1,
                                 chunk=500, compute=compute, progress=False)


def test_brepmi_on_the_params_device_gives_the_cpu_bytes():
    from pipeline.experiments.inversion import generate, labeller
    from pipeline.vision import nets

    on, plain = brepmi_grid(CPU_PARAMS["compute"]), brepmi_grid({"backend": "local", "chunk": 1})
    assert [c[0] for c in on] == [c[0] for c in plain] and [c[3] for c in on] == [c[3] for c in plain]
    assert all(np.array_equal(a[k], b[k], equal_nan=True) for a, b in zip(on, plain) for k in (1, 2))
    assert any(r["found_start"] for c in on for r in c[0])
    with pytest.raises(PipelineError, match="'tpu'"):
        brepmi_grid({**CPU_PARAMS["compute"], "device": "tpu"})
    takes_the_device(lambda d: generate(nets.generator(1, 8, 10), d))
    takes_the_device(lambda d: labeller({"target": nets.target(1, 8, 3)}, {"name": "base"}, 3, 0, 1, d))


def test_the_extraction_student_and_gradient_inversion_on_the_params_device_give_the_cpu_bytes():
    from pipeline.attacks import extraction
    from pipeline.vision import nets

    device = select(CPU_PARAMS["compute"]["device"])
    torch.manual_seed(0)
    G, teacher = nets.generator(1, 8, 6).eval(), nets.target(1, 8, 3).eval()
    pool = np.random.default_rng(0).random((10, 1, 8, 8), dtype=np.float32)
    queries = [extraction.transfer_set_images(pool, 40, 2, G, 6, **kw) for kw in ({"device": device}, {})]
    assert np.array_equal(*queries)
    recipe, build = {"epochs": 2, "batch_size": 8, "lr": 0.01}, partial(nets.target, 1, 8, 3)
    students = [extraction.distill(partial(predict, teacher), queries[0], build, recipe, 5, **kw)
                for kw in ({"device": device}, {})]
    assert same_state(students[0].model, students[1].model) and on_cpu(students[0].model)
    found = [extraction.gradient_inversion(G, students[0].model, np.array([0, 1]), 6, 3, 0.1, 1.5, 4, **kw)
             for kw in ({"device": device}, {})]
    assert all(np.array_equal(a, b) for a, b in zip(*found))
    takes_the_device(lambda d: extraction.distill(partial(predict, teacher), queries[0], build, recipe, 5, d))
    takes_the_device(lambda d: extraction.gradient_inversion(G, teacher, np.array([0]), 6, 1, 0.1, 1.5, 4, d))


def test_on_a_cuda_device_the_chunk_is_sized_to_its_total_memory(monkeypatch):
    """``_evaluations``: half the device's total memory over one evaluation's bytes, rounded down
    to a power of two, whatever else holds memory at the time; the CPU keeps ``chunk``."""
    smooth = Smooth(target(1, 8, 3).eval(), 3, 0.2, chunk=1000)
    assert smooth._evaluations((1, 8, 8), (1, 8, 8)) == 1000
    per = smooth._evaluation_bytes((1, 8, 8), (1, 8, 8))  # the draw, the noisy input, the widest layer twice
    assert per > 4 * 2 * 64 and per % 4 == 0
    smooth.device = torch.device("cuda")
    total = {"bytes": 4096 * 1024}
    monkeypatch.setattr(torch.cuda, "get_device_properties",
                        lambda device: type("Props", (), {"total_memory": total["bytes"]})())
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device: (0, total["bytes"]))  # nothing free: no matter
    monkeypatch.setattr(smooth, "_evaluation_bytes", lambda shape, width: 1024)
    assert smooth._evaluations((1, 8, 8), (1, 8, 8)) == 2048  # 4 MiB / 2 / 1 KiB
    total["bytes"] = 4096 * 1024 - 2048  # 2047 evaluations, down to 1024
    assert smooth._evaluations((1, 8, 8), (1, 8, 8)) == 1024


@pytest.mark.skipif(not CUDA, reason="needs a CUDA device")
def test_on_a_gpu_every_device_aware_component_runs_there_and_hands_back_cpu_results():
    from pipeline.attacks import extraction
    from pipeline.defenses import dpsgd
    from pipeline.tabular.mlp import L1Step
    from pipeline.vision import nets

    device = select("cuda")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(48, 5)).astype(np.float32)
    cfg = {"epochs": 2, "batch_size": 16, "lr": 0.01, "max_grad_norm": 1.0}
    model, _ = dpsgd.fit_private(mlp(5, 8), x, (x[:, 0] > 0).astype(np.int64), cfg, 4.0, 1e-5, seed=3,
                                 penalty=L1Step(1, 0.01), progress=False, device=device)
    assert on_cpu(model)
    grid = brepmi_grid({"backend": "local", "chunk": 1, "device": "cuda"})
    assert all(isinstance(c[1], np.ndarray) and isinstance(c[2], np.ndarray) for c in grid)
    assert any(r["found_start"] for c in grid for r in c[0])
    torch.manual_seed(0)
    G, teacher = nets.generator(1, 8, 6).eval(), nets.target(1, 8, 3).eval()
    queries = extraction.transfer_set_images(rng.random((10, 1, 8, 8), dtype=np.float32), 40, 2, G, 6, device)
    student = extraction.distill(partial(predict, teacher), queries, partial(nets.target, 1, 8, 3),
                                 {"epochs": 1, "batch_size": 8, "lr": 0.01}, 5, device)
    starts, found = extraction.gradient_inversion(G, student.model, np.array([0, 1]), 6, 3, 0.1, 1.5, 4, device)
    assert on_cpu(student.model) and on_cpu(G) and isinstance(found, np.ndarray) and found.shape == (2, 6)
    smooth = Smooth(teacher, 3, 0.2, seed=1, device=device)
    assert smooth._evaluations((1, 8, 8), (1, 8, 8)) >= 1
    assert isinstance(smooth.vote(torch.rand(5, 1, 8, 8), 30), np.ndarray)


@pytest.mark.skipif(not CUDA, reason="needs a CUDA device")
def test_on_a_gpu_the_engine_is_reproducible_and_agrees_with_the_cpu_in_law():
    torch.manual_seed(0)
    model, x = mlp(12, 16), torch.randn(200, 12)
    gpu = [Smooth(model, 2, 0.5, seed=3, device="cuda").counts(x, 2000, ESTIMATE, key=1) for _ in range(2)]
    assert np.array_equal(*gpu)  # seeded CUDA generators: the same run twice
    cpu = Smooth(model, 2, 0.5, seed=3).counts(x, 2000, ESTIMATE, key=1)
    p_gpu, p_cpu = gpu[0][:, 1] / 2000, cpu[:, 1] / 2000  # other streams: equal only in law
    se = np.sqrt((p_gpu * (1 - p_gpu) + p_cpu * (1 - p_cpu)) / 2000) + 1e-3
    assert np.mean(np.abs(p_gpu - p_cpu) <= 4 * se) >= 0.99


def test_the_engine_and_the_certify_bench_import_without_mlflow_dvc_or_pandas():
    """What a GPU machine with only torch, numpy and scipy (plus pyyaml and tqdm) can run."""
    script = f"""
import importlib.abc, sys
sys.path[:0] = [{str(ROOT)!r}]
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in ("mlflow", "dvc", "pandas", "matplotlib", "sklearn", "opacus", "ray"):
            raise ImportError("blocked: " + name)
sys.meta_path.insert(0, Block())
import torch
from pipeline.smoothing import Smooth
import bench.certify
counts = Smooth(torch.nn.Sequential(torch.nn.Linear(3, 2)), 2, 1.0).counts(torch.zeros(4, 3), 10, 0)
print(int(counts.sum()))
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "40"
