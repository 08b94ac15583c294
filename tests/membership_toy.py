"""A deliberately overfit toy target for the membership-inference tests: 5 overlapping
Gaussian classes with label noise, exactly 50 records per class in every split, and MLPs
trained to memorise their 250 training records (train accuracy 1, test accuracy far lower).
Built once per test session (``toy()`` is cached)."""
import contextlib
from functools import lru_cache

import numpy as np
import torch
from torch import nn

CLASSES, DIM, PER_CLASS = 5, 10, 50
SPLITS = ("target_in", "target_out", "shadow_in", "shadow_out", "defender_in", "defender_out")


def sample(rng, centres):
    y = np.repeat(np.arange(CLASSES), 2 * PER_CLASS)
    x = centres[y] + rng.normal(size=(len(y), DIM))
    flip = rng.random(len(y)) < 0.2  # label noise: features alone cannot explain these labels
    y_obs = np.where(flip, rng.integers(0, CLASSES, len(y)), y)
    # exactly PER_CLASS records per observed label (of the 2 * PER_CLASS drawn per class)
    keep = np.concatenate([rng.permutation(np.flatnonzero(y_obs == c))[:PER_CLASS] for c in range(CLASSES)])
    return x[keep].astype(np.float32), y_obs[keep].astype(np.int64)


def overfit_mlp(x, y, seed, epochs=400):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(DIM, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, CLASSES))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    for _ in range(epochs):
        loss = nn.functional.cross_entropy(model(xt), yt)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


@torch.no_grad()
def logits_of(model, x):
    return model(torch.from_numpy(x)).double().numpy()


def softmax(z):
    z = z - z.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)


@contextlib.contextmanager
def one_thread():
    """Tiny models run far faster on one torch thread (no OpenMP spinning on 2 shared cores)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@lru_cache(maxsize=1)
def toy():
    rng = np.random.default_rng(0)
    centres = rng.normal(scale=1.2, size=(CLASSES, DIM))
    data = {name: sample(rng, centres) for name in SPLITS}
    with one_thread():
        models = {role: overfit_mlp(*data[f"{role}_in"], seed=i)
                  for i, role in enumerate(("target", "shadow", "defender"))}
    return data, models


def outputs(data, model, split):
    """What the model releases (probabilities) for the members and non-members of ``split``."""
    from pipeline.membership import Outputs

    (x_in, y_in), (x_out, y_out) = data[f"{split}_in"], data[f"{split}_out"]
    return Outputs(softmax(logits_of(model, x_in)), y_in, softmax(logits_of(model, x_out)), y_out)
