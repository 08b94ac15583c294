"""Model extraction by distillation: the function-level leakage that Robust Privacy leaves open
(Tramer, Zhang, Juels, Reiter and Ristenpart, "Stealing Machine Learning Models via Prediction
APIs", USENIX Security 2016, Section 5 (label-only retraining); Orekondy, Schiele and Fritz,
"Knockoff Nets: Stealing Functionality of Black-Box Models", CVPR 2019 (a public transfer set)).

The attacker asks the served model for the labels of inputs of its own choosing (the transfer
set), as many as its query budget allows, and trains a student on the answers. It then holds a
white-box copy of the served function, which it can attack with gradients
(``gradient_inversion``) or query without limit.

* ``transfer_set_tabular`` / ``transfer_set_images``: the attacker's query inputs, made without
  the private data.
* ``distill``: the student trained on the served hard labels; abstentions are dropped and counted.
* ``agreement``: how often two labellings agree, with its Wilson interval.
* ``gradient_inversion``: white-box model inversion of a (student) classifier through the prior.
"""
from __future__ import annotations

from typing import Callable, NamedTuple

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ..core.device import on
from ..core.seeds import derive_seed
from ..core.training import fit
from ..smoothing import ABSTAIN
from ..smoothing.stats import wilson_interval
from ..vision import gan


BLOCK = 1024  # transfer-set inputs drawn per seed: a budget's queries are a prefix of any larger budget's


def _blocks(count: int, seed: int, draw: Callable[[int], np.ndarray]) -> np.ndarray:
    """``count`` rows: block b is ``draw(derive_seed(seed, b))`` (``BLOCK`` rows), the last cut
    short, so the first q rows do not depend on ``count``."""
    return np.concatenate([draw(derive_seed(seed, b)) for b in range(-(-count // BLOCK))])[:count]


def transfer_set_tabular(feature_names: list[str], count: int, seed: int) -> np.ndarray:
    """``count`` synthetic records in the model's input space (float32, columns as
    ``feature_names``): every numeric column N(0, 1), every one-hot group ``<name>=<value>`` one
    category drawn uniformly, all independent (in blocks, ``_blocks``).

    Why this law: it needs no record at all, only the schema (which columns are numeric, which
    form a categorical group) and the standardisation the service applies (equivalently, each
    numeric feature's mean and standard deviation: population statistics, not private data).
    Given those, N(0, 1) and the uniform category are the maximum-entropy choices, with the
    moments of the real features and no dependence between them (which the attacker cannot
    know). Integer and binary numerics become continuous; the service answers any real vector,
    as the Scenario I attacker's own queries already assume."""
    groups: dict[str, list[int]] = {}
    for j, name in enumerate(feature_names):
        if "=" in name:
            groups.setdefault(name.partition("=")[0], []).append(j)

    def draw(block_seed: int) -> np.ndarray:
        rng = np.random.default_rng(block_seed)
        x = rng.standard_normal((BLOCK, len(feature_names)))
        for columns in map(np.asarray, groups.values()):
            x[:, columns] = 0.0
            x[np.arange(BLOCK), columns[rng.integers(0, len(columns), BLOCK)]] = 1.0
        return x.astype(np.float32)
    return _blocks(count, seed, draw)


def transfer_set_images(public_x: np.ndarray, count: int, seed: int, G: nn.Module | None = None,
                        z_dim: int = 0, device: torch.device | str = "cpu") -> np.ndarray:
    """``count`` query images: the public images (other identities than the private ones, the
    prior's training data; Knockoff Nets' natural-image transfer set) in a seeded order, then,
    past the pool's size, samples of the generator ``G`` (in blocks from stream ``(seed, 1)``,
    ``_blocks``). On the synthetic identities a student learns the target better from public
    images than from as many generator samples, so the samples only top the pool up. ``G``
    runs on ``device`` (its latents drawn on the CPU)."""
    order = np.random.default_rng(seed).permutation(len(public_x))[:count]
    x = public_x[order]
    if count > len(x):
        if G is None:
            raise ValueError(f"a budget of {count} queries exceeds the {len(x)} public images "
                             "and no generator is given")
        x = np.concatenate([x, _blocks(count - len(x), derive_seed(seed, 1),
                                       lambda block_seed: gan.samples(G, BLOCK, z_dim, block_seed, device))])
    return x


class Distilled(NamedTuple):
    model: nn.Module  # the student, in eval mode, on the CPU
    answered: int     # queries answered with a label: the student's training set
    abstained: int    # queries answered with an abstention, dropped


def distill(labels_of: Callable[[np.ndarray], np.ndarray], queries: np.ndarray, build_student: Callable[[], nn.Module],
            train_cfg: dict, seed: int, device: torch.device | str = "cpu", progress: bool = False) -> Distilled:
    """Label-only extraction (Tramer et al., Section 5): ask ``labels_of`` for the labels of
    ``queries`` (one query each), drop the abstentions (``ABSTAIN``), and train
    ``build_student()`` (initialised from ``seed``) on the rest with ``pipeline.core.training.fit``
    (cross-entropy, ``train_cfg``'s epochs, batch size and learning rate, batches shuffled with
    ``seed``) on ``device``. Without a single label the student stays as initialised."""
    labels = np.asarray(labels_of(queries))
    keep = labels != ABSTAIN
    torch.manual_seed(seed)
    student = build_student()
    if keep.any():
        student, _ = fit(student, queries[keep], labels[keep].astype(np.int64), train_cfg, seed, desc="distill",
                         progress=progress, device=device)
    return Distilled(student.eval(), int(keep.sum()), int((~keep).sum()))


def agreement(student_labels: np.ndarray, teacher_labels: np.ndarray,
              level: float = 0.95) -> tuple[float, float, float]:
    """The share of inputs on which the two labellings agree (an abstention agrees only with an
    abstention), and its Wilson interval at ``level``: (share, low, high)."""
    hits, n = int(np.sum(np.asarray(student_labels) == np.asarray(teacher_labels))), len(teacher_labels)
    low, high = wilson_interval(hits, n, level)
    return (hits / n if n else float("nan")), float(low), float(high)


def gradient_inversion(G: nn.Module, model: nn.Module, targets: np.ndarray, z_dim: int, steps: int, lr: float,
                       clamp: float, seed: int, device: torch.device | str = "cpu") -> tuple[np.ndarray, np.ndarray]:
    """White-box generative model inversion (Zhang, Jia, Pei, Wang, Li and Song, "The Secret
    Revealer: Generative Model-Inversion Attacks Against Deep Neural Networks", CVPR 2020,
    Section 3.3, identity loss only): per attacked class c (``targets``), a latent z ~ N(0, I)
    (from ``seed``) clamped to [-clamp, clamp], then ``steps`` Adam steps (``lr``) on
    -log p_model(c | G(z)), clamped after each. The prior term (the GAN's critic) is left out:
    z stays in the box BREP-MI searches. The starts are drawn on the CPU; G, the model (copies
    there) and the latents being optimised run on ``device``. Returns (start latents, final
    latents), (M, z_dim), on the CPU."""
    start = torch.randn(len(targets), z_dim, generator=torch.Generator().manual_seed(seed)).clamp(-clamp, clamp)
    z = start.clone().to(device).requires_grad_(True)
    y = torch.as_tensor(np.asarray(targets), dtype=torch.long).to(device)
    G, model = on(G, device).eval(), on(model, device).eval()
    opt = torch.optim.Adam([z], lr=lr)
    for _ in range(steps):
        loss = F.cross_entropy(model(G(z)), y, reduction="sum")  # a sum: each latent's gradient is its own
        z.grad, = torch.autograd.grad(loss, z)
        opt.step()
        with torch.no_grad():
            z.clamp_(-clamp, clamp)
    return start.numpy(), z.detach().cpu().numpy()
