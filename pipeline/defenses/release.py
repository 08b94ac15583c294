"""The one release interface every defense implements: what a (possibly defended) model gives a
querier for an input x. ``probs(x, y)`` is the released probability vector (None for a
label-only release), ``labels(x)`` the released hard label. Attacks only ever see a
``Release``, so every attack runs unchanged against every defense.

* ``Plain``: the model's softmax (a MID model samples its bottleneck from a seeded generator).
* ``Perturbed``: the model's logits through output perturbation (``pipeline.defenses.perturbation``);
  ``WrongLabel``: the same release queried with a wrong label by an adaptive attacker.
* ``Smoothed``: Robust Privacy's label-only release, the majority vote of n noisy copies
  (``pipeline.smoothing``, fresh noise per query; the Robust Privacy paper's Section 7.2).
* ``RandomizedResponse``: k-ary randomized response on the model's label, fresh per query or
  keyed (a repeated query gets the same answer).

Probabilities come from float64 logits: a float32 softmax rounds confident outputs to exactly
1.0, and the ties erase the attacks' signal.
"""
from __future__ import annotations

import hashlib
import hmac
from typing import Callable

import numpy as np
import torch
from torch import nn

from ..core.errors import PipelineError
from ..core.training import logits
from ..smoothing import Smooth
from .perturbation import OutputPerturbation


def softmax64(z: torch.Tensor) -> np.ndarray:
    return torch.softmax(z.double(), dim=1).numpy()


class Release:
    """What a (possibly defended) model releases: ``probs(x, y)`` (None for a label-only
    release) and the label oracle ``labels(x)``."""

    label_only = False

    def probs(self, x: np.ndarray, y: np.ndarray) -> np.ndarray | None:
        raise NotImplementedError

    def labels(self, x: np.ndarray) -> np.ndarray:
        return self.probs(x, None).argmax(1)


class Plain(Release):
    """The model's softmax; a MID model samples from its own seeded generator."""

    def __init__(self, model: nn.Module, seed: int | None = None):
        self.model = model
        if seed is not None:
            model.generator = torch.Generator().manual_seed(seed)

    def probs(self, x, y):
        return softmax64(logits(self.model, x))


class Perturbed(Release):
    """The model's logits through output perturbation; raises if a released label differs."""

    def __init__(self, model: nn.Module, defense: OutputPerturbation):
        self.model, self.defense = model, defense

    def release(self, x, y) -> tuple[object, int]:
        """The defense's ``PerturbedOutputs`` and the number of released labels that differ from
        the model's (anything but 0 raises)."""
        z = logits(self.model, x).double().numpy()
        r = self.defense(z, y)
        changed = int((r.probs.argmax(1) != z.argmax(1)).sum())
        if changed or r.labels_reverted:
            raise PipelineError(f"output perturbation changed {changed} released labels "
                                f"({r.labels_reverted} reverted); the defense must keep every label")
        return r, changed

    def probs(self, x, y):
        return self.release(x, y)[0].probs

    def labels(self, x):
        return logits(self.model, x).argmax(1).numpy()  # the release keeps every label (checked in ``release``)


class WrongLabel(Release):
    """An adaptive querier of output perturbation: it first asks with the true label, then asks
    again with the class the first answer ranks last and keeps that answer. The risk evaluator
    reads the querier's label (correctness, the class mean), so a wrong one can pass the model's
    raw output; the attacker then scores it with the true label."""

    def __init__(self, release: Perturbed):
        self.inner = release

    def wrong(self, x, y) -> np.ndarray:
        return self.inner.probs(x, y).argmin(1)

    def probs(self, x, y):
        return self.inner.probs(x, self.wrong(x, y))

    def labels(self, x):
        return self.inner.labels(x)

    def raw_share(self, x, y) -> float:
        """The share of the wrong-label answers that are the model's raw output."""
        return float(1 - self.inner.release(x, self.wrong(x, y))[0].perturbed.mean())


class Smoothed(Release):
    """RP's label-only release: the majority vote of n noisy copies (fresh noise per query; the
    engine on ``device``)."""

    label_only = True

    def __init__(self, model: nn.Module, classes: int, sigma: float, n: int, seed: int, chunk: int,
                 device: torch.device | str = "cpu"):
        self.smooth, self.n = Smooth(model, classes, sigma, noise="fresh", seed=seed, chunk=chunk, device=device), n

    def probs(self, x, y):
        return None

    def labels(self, x):
        return self.smooth.vote(torch.as_tensor(x), self.n)


def demo_secret(seed: int) -> bytes:
    """The keyed releases' secret when the service has none of its own: derived from ``seed``
    (reproducible, hence not secret)."""
    return f"robust-privacy demo secret {seed}".encode()


def keep_probability(epsilon: float, k: int) -> float:
    """k-ary randomized response: P(the true label is released) = e^eps / (e^eps + k - 1)."""
    return float(1 / (1 + (k - 1) * np.exp(-epsilon)))


class RandomizedResponse(Release):
    """k-ary randomized response on the released label (Warner, JASA 1965; the k-ary form of
    Kairouz, Oh and Viswanath, "Extremal mechanisms for local differential privacy", NeurIPS
    2014): the model's label with probability e^eps / (e^eps + k - 1), else one of the k - 1
    other labels uniformly; each answer is eps-label-DP. ``fresh``: new randomness per query
    (one generator seeded by ``seed``, advancing query by query); ``keyed``: an answer's
    randomness from HMAC-SHA256(``secret``, the input's float32 bytes), so repeating a query
    repeats its answer. ``labels_of``: the model's hard labels for a batch of inputs."""

    label_only = True

    def __init__(self, labels_of: Callable[[np.ndarray], np.ndarray], classes: int, epsilon: float, seed: int,
                 keyed: bool = False, secret: bytes = b""):
        if keyed and not secret:
            raise PipelineError("randomized response: the keyed release needs a non-empty secret")
        self.labels_of, self.classes, self.epsilon = labels_of, classes, epsilon
        self.keep = keep_probability(epsilon, classes)
        self.keyed, self.secret = keyed, secret
        self.rng = np.random.default_rng(seed)

    def uniforms(self, x: np.ndarray) -> np.ndarray:
        """Two uniforms in [0, 1) per input: fresh draws, or the input's keyed pair."""
        if not self.keyed:
            return self.rng.random((len(x), 2))
        rows = np.ascontiguousarray(np.asarray(x, np.float32).reshape(len(x), -1))
        words = [np.frombuffer(hmac.new(self.secret, r.tobytes(), hashlib.sha256).digest()[:16], np.uint64)
                 for r in rows]
        return (np.array(words, np.uint64).reshape(len(x), 2) >> np.uint64(11)) / 2.0 ** 53

    def probs(self, x, y):
        return None

    def labels(self, x):
        x = np.asarray(torch.as_tensor(x).numpy() if isinstance(x, torch.Tensor) else x)
        true = np.asarray(self.labels_of(x))
        u = self.uniforms(x)
        other = np.minimum((u[:, 1] * (self.classes - 1)).astype(np.int64), self.classes - 2)
        other += other >= true  # a uniform label among the k - 1 others
        return np.where(u[:, 0] < self.keep, true, other)
