"""Section 5 model: Linear(d, 64) - ReLU - Linear(64, 2), trained with cross-entropy plus an
l1 penalty on the first-layer weights of every input except the sensitive one (BMI), which
makes the recommendation depend mainly on BMI."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm


def mlp(d: int, hidden: int, classes: int = 2) -> nn.Sequential:
    return nn.Sequential(nn.Linear(d, hidden), nn.ReLU(), nn.Linear(hidden, classes))


def l1_penalty(model: nn.Sequential, sensitive_index: int) -> torch.Tensor:
    """Sum of |W1[:, j]| over every input column j except ``sensitive_index``."""
    w = model[0].weight
    mask = torch.ones(w.shape[1], dtype=w.dtype)
    mask[sensitive_index] = 0.0
    return (w.abs() * mask).sum()


def fit(model: nn.Module, x: np.ndarray, y: np.ndarray, cfg: dict, seed: int, accuracy, penalty=None,
        desc: str = "train", progress: bool = True) -> tuple[nn.Module, list[dict]]:
    """Adam with a cosine learning-rate decay on mini-batches shuffled with ``seed``, loss
    cross-entropy (plus ``penalty(model)`` if given); returns the model in eval mode and the
    per-epoch loss and training accuracy (``accuracy(model, x, y)``)."""
    gen = torch.Generator().manual_seed(seed)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    opt = torch.optim.Adam(model.parameters(), lr=cfg["lr"])
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg["epochs"])
    history = []
    for epoch in tqdm(range(cfg["epochs"]), desc=desc, disable=not progress):
        model.train()
        perm = torch.randperm(len(xt), generator=gen)
        total = 0.0
        for start in range(0, len(xt), cfg["batch_size"]):
            idx = perm[start:start + cfg["batch_size"]]
            loss = nn.functional.cross_entropy(model(xt[idx]), yt[idx])
            if penalty is not None:
                loss = loss + penalty(model)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
        sched.step()
        history.append({"epoch": epoch, "loss": total / len(xt), "train_accuracy": accuracy(model, x, y)})
    return model.eval(), history


def train(x: np.ndarray, y: np.ndarray, sensitive_index: int, cfg: dict, seed: int,
          progress: bool = True) -> tuple[nn.Sequential, list[dict]]:
    """The Section 5 MLP, trained by ``fit`` with the l1 penalty on non-sensitive inputs."""
    torch.manual_seed(seed)
    return fit(mlp(x.shape[1], cfg["hidden"]), x, y, cfg, seed, accuracy,
               penalty=lambda m: cfg["l1"] * l1_penalty(m, sensitive_index), progress=progress)


@torch.inference_mode()
def predict(model: nn.Module, x: np.ndarray) -> np.ndarray:
    return model(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))).argmax(dim=1).numpy()


def accuracy(model: nn.Module, x: np.ndarray, y: np.ndarray) -> float:
    return float((predict(model, x) == y).mean())


def load(path, d: int, hidden: int) -> nn.Sequential:
    """Rebuild the MLP and load its state dict (``weights_only=True``: tensors only)."""
    from .io import load_state

    model = mlp(d, hidden)
    model.load_state_dict(load_state(path))
    return model.eval()
