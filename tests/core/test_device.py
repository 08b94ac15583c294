"""``compute.device``: the device every device-aware component takes from params, and on the CPU
the same bytes as before the setting existed. The CPU tests run the code path a GPU run takes
(device chosen from params, tensors and generators created on it); the CUDA test runs where
torch sees a GPU."""
import subprocess
import sys

import numpy as np
import pytest
import torch

from pipeline.core.device import select
from pipeline.core.errors import PipelineError
from pipeline.core.params import load_params
from pipeline.core.training import fit
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
