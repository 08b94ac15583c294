"""DP-SGD (Abadi et al., "Deep Learning with Differential Privacy", CCS 2016) with Opacus
(Yousefpour et al., "Opacus: User-Friendly Differential Privacy Library in PyTorch", 2021).

Every step samples a Poisson batch (each record with probability q = batch_size / records),
clips each record's gradient to l2 norm ``max_grad_norm``, sums, adds N(0, (z max_grad_norm)^2)
per coordinate and averages over the expected batch size. The noise multiplier z is the
smallest that keeps the RDP accountant (Mironov, "Renyi Differential Privacy", CSF 2017) at
``epsilon`` after ``epochs`` epochs at ``delta`` (Opacus's ``get_noise_multiplier``); the
epsilon reported is the accountant's own at the end of training, not the one requested.
The optimiser is the target's (Adam with cosine decay); a data-independent penalty (the tabular
MLP's l1 term) is applied after the private step, outside clipping and noise, so it spends no
privacy. Batch norm mixes the records of a batch, so no per-record gradient exists: a model
with batch norm (the deep image architectures, ``target.arch``) trains and loads with every
batch norm replaced by group norm (``private_ready``: Opacus's ``ModuleValidator.fix``); the
small target has none and is trained as built.
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from ..core.device import select
from ..core.errors import PipelineError
from ..core.io import load_state
from ..core.metrics import token
from ..core.seeds import derive_seed

ACCOUNTANT = "rdp"


def noise_multiplier(epsilon: float, delta: float, sample_rate: float, steps: int) -> float:
    """The smallest noise multiplier whose RDP epsilon after ``steps`` steps at ``sample_rate``
    is at most ``epsilon`` (Opacus's binary search)."""
    from opacus.accountants.utils import get_noise_multiplier
    return float(get_noise_multiplier(target_epsilon=epsilon, target_delta=delta, sample_rate=sample_rate,
                                      steps=steps, accountant=ACCOUNTANT, epsilon_tolerance=0.001))


def spent(noise: float, sample_rate: float, steps: int, delta: float) -> float:
    """The RDP accountant's epsilon at ``delta`` after ``steps`` steps of the subsampled
    Gaussian mechanism (``noise``, ``sample_rate``)."""
    from opacus.accountants import RDPAccountant
    accountant = RDPAccountant()
    accountant.history = [(noise, sample_rate, steps)]
    return float(accountant.get_epsilon(delta))


def private_ready(model: nn.Module) -> nn.Module:
    """``model`` itself when it has no batch norm, else a copy with each ``BatchNorm`` replaced
    by ``GroupNorm(min(32, C), C)`` (Opacus's ``ModuleValidator.fix``; no random draw)."""
    if not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules()):
        return model
    from opacus.validators import ModuleValidator
    return ModuleValidator.fix(model)


def fit_private(model: nn.Module, x: np.ndarray, y: np.ndarray, cfg: dict, epsilon: float, delta: float, seed: int,
                penalty=None, desc: str = "DP-SGD", progress: bool = True,
                device: torch.device | str = "cpu") -> tuple[nn.Module, dict]:
    """``model`` trained by DP-SGD at (``epsilon``, ``delta``) with ``cfg``'s ``epochs``,
    ``batch_size`` (expected Poisson batch), ``lr`` and ``max_grad_norm``; batches and noise
    from generators seeded by ``seed``. Trains on ``device``: the model, the data and the noise
    generator there (a CUDA generator draws another stream than the CPU's), the Poisson batches
    drawn on the CPU (the same everywhere). Returns the model in eval mode on the CPU and its
    privacy record (requested and spent epsilon, delta, noise multiplier, sample rate, steps)."""
    from opacus import GradSampleModule
    from opacus.optimizers import DPOptimizer

    if len(x) < 2:
        raise PipelineError("DP-SGD: needs at least two training records; fix: enlarge the training split")
    q = min(1.0, cfg["batch_size"] / len(x))
    steps_per_epoch = int(1 / q)  # the Poisson sampler's epoch
    steps = cfg["epochs"] * steps_per_epoch
    z = noise_multiplier(epsilon, delta, q, steps)
    xt, yt, batches = torch.from_numpy(x).to(device), torch.from_numpy(y).to(device), torch.Generator().manual_seed(seed)
    model.to(device)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", module="opacus")  # secure_mode off: a seeded generator is the point here
        warnings.filterwarnings("ignore", message="Full backward hook")  # Opacus's hooks, on inputs without grad
        private = GradSampleModule(model)
        opt = DPOptimizer(torch.optim.Adam(private.parameters(), lr=cfg["lr"]), noise_multiplier=z,
                          max_grad_norm=cfg["max_grad_norm"], expected_batch_size=max(1, int(len(x) * q)),
                          generator=torch.Generator(device).manual_seed(seed + 1))
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt.original_optimizer, T_max=cfg["epochs"])
        for _ in tqdm(range(cfg["epochs"]), desc=desc, disable=not progress):
            private.train()
            for _ in range(steps_per_epoch):  # Opacus's Poisson sampler, without a DataLoader's per-record collation
                idx = torch.nonzero(torch.rand(len(xt), generator=batches) < q).flatten().to(device)
                opt.zero_grad()
                nn.functional.cross_entropy(private(xt[idx]), yt[idx]).backward()  # an empty batch: noise only
                opt.step()
                if penalty is not None:
                    penalty(model, opt.original_optimizer.param_groups[0]["lr"])
            sched.step()
    private.to_standard_module()  # removes the per-sample hooks from ``model``
    record = {"epsilon_requested": float(epsilon), "epsilon": spent(z, q, steps, delta), "delta": float(delta),
              "noise_multiplier": z, "sample_rate": q, "steps": steps, "max_grad_norm": float(cfg["max_grad_norm"])}
    return model.to("cpu").eval(), record


def checkpoint(task: str, epsilon: float) -> Path:
    """Where the ``task``'s (images, tabular) DP-SGD model at ``epsilon`` is saved."""
    return Path("models") / f"dpsgd_{task}" / f"{token('epsilon', epsilon)}.pt"


def train_grid(start: int, stop: int, *, build: Callable[[], nn.Module], x: np.ndarray, y: np.ndarray, cfg: dict,
               epsilons: list[float], delta: float, seed: int, penalty=None,
               device: str = "cpu") -> list[tuple[dict, dict]]:
    """Task: the models of ``epsilons[start:stop]``, each ``build()`` with its own seed
    (``derive_seed(seed, i)``), made ``private_ready`` and trained by ``fit_private`` on ``device``
    (a ``compute.device`` value, resolved where the task runs); (state dict on the CPU, privacy
    record) each."""
    torch.set_num_threads(1)
    where, out = select(device), []
    for i in range(start, stop):
        torch.manual_seed(derive_seed(seed, i))
        model, record = fit_private(private_ready(build()), x, y, cfg, epsilons[i], delta, derive_seed(seed, i, 1),
                                    penalty, progress=False, device=where)
        out.append((model.state_dict(), record))
    return out


def load_private(task: str, epsilon: float, build: Callable[[], nn.Module]) -> nn.Module:
    """The ``task``'s DP-SGD model at ``epsilon``: ``private_ready(build())`` with its saved state."""
    model = private_ready(build())
    model.load_state_dict(load_state(checkpoint(task, epsilon)))
    return model.eval()
