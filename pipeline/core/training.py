"""The one training loop (``fit``) of every classifier of the pipeline, the tabular MLP and the
image networks alike, and batched inference (``logits``, ``predict``, ``accuracy``) on whichever
device the model is on (``pipeline.core.device``); on the CPU, the code that ran before devices."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm


def epoch_batches(model: nn.Module, count: int, batch_size: int, gen: torch.Generator) -> list[torch.Tensor]:
    """One epoch's mini-batches of record indices: a permutation of ``count`` drawn from ``gen``,
    cut every ``batch_size``. A last batch of one record is dropped where ``model`` cannot train
    on one (batch norm over a feature vector, ``BatchNorm1d``, as in the deep image networks'
    embedding, which torch refuses in training mode)."""
    perm = torch.randperm(count, generator=gen)
    batches = list(perm.split(batch_size))
    if len(batches) > 1 and len(batches[-1]) == 1 and any(isinstance(m, nn.BatchNorm1d) for m in model.modules()):
        batches.pop()
    return batches


def fit(model: nn.Module, x: np.ndarray, y: np.ndarray, cfg: dict, seed: int, penalty=None,
        desc: str = "train", progress: bool = True, eval_batch: int | None = 1024,
        test: tuple[np.ndarray, np.ndarray] | None = None,
        device: torch.device | str = "cpu") -> tuple[nn.Module, list[dict]]:
    """Adam with a cosine learning-rate decay on mini-batches shuffled with ``seed``, loss
    cross-entropy (plus ``penalty(model)`` if given); returns the model in eval mode and the
    per-epoch loss and training accuracy (``accuracy`` in blocks of ``eval_batch`` rows), and
    the accuracy on ``test`` = (x, y) if given (inference only: no random stream is drawn).
    Trains on ``device`` (the batch order is drawn on the CPU, so it is the same everywhere) and
    returns the model on the CPU. Batches: ``epoch_batches``; the epoch's loss is the mean over
    the records trained on."""
    gen = torch.Generator().manual_seed(seed)
    model.to(device)
    xt, yt = torch.from_numpy(x).to(device), torch.from_numpy(y).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg["lr"])
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg["epochs"])
    history = []
    for epoch in tqdm(range(cfg["epochs"]), desc=desc, disable=not progress):
        model.train()
        batches = epoch_batches(model, len(xt), cfg["batch_size"], gen)
        total = 0.0
        for idx in batches:
            loss = nn.functional.cross_entropy(model(xt[idx]), yt[idx])
            if penalty is not None:
                loss = loss + penalty(model)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
        sched.step()
        seen = sum(len(b) for b in batches)
        history.append({"epoch": epoch, "loss": total / seen, "train_accuracy": accuracy(model, x, y, eval_batch)})
        if test is not None:
            history[-1]["test_accuracy"] = accuracy(model, *test, eval_batch)
    return model.to("cpu").eval(), history


@torch.inference_mode()
def logits(model: nn.Module, x: np.ndarray | torch.Tensor, batch: int | None = 1024) -> torch.Tensor:
    """The model's logits (eval mode, no autograd) in blocks of ``batch`` rows (None: one pass),
    computed on the model's device, returned on the CPU."""
    model.eval()
    first = next(model.parameters(), None)  # a model without parameters runs on the CPU
    x = torch.as_tensor(x, dtype=torch.float32).to(first.device if first is not None else "cpu")
    if batch is None:
        return model(x).cpu()
    return torch.cat([model(x[i:i + batch]).cpu() for i in range(0, len(x), batch)]) if len(x) else torch.zeros(0)


def predict(model: nn.Module, x, batch: int | None = 1024) -> np.ndarray:
    """Hard labels: the argmax of ``logits`` (ties: the lowest class)."""
    return logits(model, x, batch).argmax(dim=1).numpy()


def accuracy(model: nn.Module, x, y: np.ndarray, batch: int | None = 1024) -> float:
    return float((predict(model, x, batch) == y).mean())
