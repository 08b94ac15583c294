"""Section 5 model: Linear(d, 64) - ReLU - Linear(64, 2), trained with cross-entropy plus an
l1 penalty on the first-layer weights of every input except the sensitive one (BMI), which
makes the recommendation depend mainly on BMI."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..core.io import load_state
from ..core.training import fit


def mlp(d: int, hidden: int, classes: int = 2) -> nn.Sequential:
    return nn.Sequential(nn.Linear(d, hidden), nn.ReLU(), nn.Linear(hidden, classes))


def l1_penalty(model: nn.Sequential, sensitive_index: int) -> torch.Tensor:
    """Sum of |W1[:, j]| over every input column j except ``sensitive_index``."""
    w = model[0].weight
    mask = torch.ones(w.shape[1], dtype=w.dtype, device=w.device)
    mask[sensitive_index] = 0.0
    return (w.abs() * mask).sum()


class L1Step:
    """The l1 penalty as a data-independent subgradient step after each private update (DP-SGD:
    it must stay outside clipping and noise): W1[:, j] -= lr * weight * sign(W1[:, j]), j != sensitive."""

    def __init__(self, sensitive_index: int, weight: float):
        self.sensitive_index, self.weight = sensitive_index, weight

    @torch.no_grad()
    def __call__(self, model: nn.Sequential, lr: float) -> None:
        w = model[0].weight
        mask = torch.ones(w.shape[1], dtype=w.dtype, device=w.device)
        mask[self.sensitive_index] = 0.0
        w.sub_(lr * self.weight * torch.sign(w) * mask)


def train_mlp(x: np.ndarray, y: np.ndarray, sensitive_index: int, cfg: dict, seed: int,
              progress: bool = True, test: tuple[np.ndarray, np.ndarray] | None = None,
              device: torch.device | str = "cpu") -> tuple[nn.Sequential, list[dict]]:
    """The Section 5 MLP, trained by ``fit`` on ``device`` with the l1 penalty on non-sensitive
    inputs (and its accuracy on ``test`` after every epoch, if given)."""
    torch.manual_seed(seed)
    return fit(mlp(x.shape[1], cfg["hidden"]), x, y, cfg, seed,
               penalty=lambda m: cfg["l1"] * l1_penalty(m, sensitive_index), progress=progress, eval_batch=None,
               test=test, device=device)


def load_mlp(path, d: int, hidden: int) -> nn.Sequential:
    """Rebuild the MLP and load its state dict (``weights_only=True``: tensors only)."""
    model = mlp(d, hidden)
    model.load_state_dict(load_state(path))
    return model.eval()
