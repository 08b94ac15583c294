"""Membership inference attacks on a classifier, and their metrics.

The attacker sees a record (x, y) and what the model releases for x, and guesses whether
(x, y) was in the training set. Every attack is fitted on a *shadow* model (trained by the
attacker on data from the same distribution, members and non-members known) and run on the
target; each returns one score per record, higher = "member", and a decision threshold.

* Metric attacks (Song and Mittal, "Systematic evaluation of privacy risks of machine learning
  models", USENIX Security 2021, the metric-based attacks of their benchmark): correctness
  1[argmax p = y]; confidence p_y; entropy -sum_i p_i log p_i; modified entropy
  Mentr(p, y) = -(1 - p_y) log p_y - sum_(i != y) p_i log(1 - p_i). Confidence,
  entropy and modified entropy use class-dependent thresholds tau_y, each the value that
  maximises the shadow attack's accuracy on class y. The ROC and AUC are those of the raw
  statistic (as the reference evaluations compute them); the class thresholds make the
  guesses behind the balanced accuracy.
* Neural shadow-model attack (Shokri et al., S&P 2017; one attack model on sorted posteriors,
  Salem et al., NDSS 2019): an MLP on the confidence vector sorted in decreasing order.
* Label-only attack, robustness to input noise (Choquette-Choo et al., "Label-only membership
  inference attacks", ICML 2021):
  the fraction of ``queries`` Gaussian perturbations x + N(0, sigma^2 I) whose released label
  is y; members sit farther from the decision boundary. sigma and the threshold are fitted on
  the shadow model. Needs only a label oracle, so it also applies to a label-only release.

The metrics of the scores are in ``pipeline.attacks.membership_metrics``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from ..core.errors import PipelineError
from .membership_metrics import balanced_accuracy, best_threshold

_TINY = 1e-30


@dataclass
class Outputs:
    """Released probability vectors and labels of members (``_in``) and non-members (``_out``)."""
    probs_in: np.ndarray
    labels_in: np.ndarray
    probs_out: np.ndarray
    labels_out: np.ndarray

    def __post_init__(self):
        for name in ("probs_in", "probs_out"):
            p = np.asarray(getattr(self, name), dtype=np.float64)
            if p.ndim != 2 or len(p) == 0 or not np.all(np.isfinite(p)) or (p < 0).any() \
                    or not np.allclose(p.sum(1), 1.0, atol=1e-4):
                raise PipelineError(f"membership outputs: {name} must be a non-empty (n, classes) array of "
                                    f"probability vectors; fix: pass softmax outputs, not logits")
            setattr(self, name, p)
        for name, probs in (("labels_in", self.probs_in), ("labels_out", self.probs_out)):
            y = np.asarray(getattr(self, name))
            if y.shape != (len(probs),) or not np.issubdtype(y.dtype, np.integer) \
                    or (y < 0).any() or (y >= probs.shape[1]).any():
                raise PipelineError(f"membership outputs: {name} must hold one integer class in "
                                    f"[0, {probs.shape[1]}) per row of its probabilities")
            setattr(self, name, y.astype(np.int64))


@dataclass
class AttackScores:
    """Scores of members and non-members (higher = member) and the attack's guesses: member iff
    score >= ``threshold``, unless the attack decides per record (``guess_member`` /
    ``guess_nonmember``, as the metric attacks' class thresholds do)."""
    name: str
    member: np.ndarray
    nonmember: np.ndarray
    threshold: float = 0.0
    guess_member: np.ndarray | None = None
    guess_nonmember: np.ndarray | None = None

    def __post_init__(self):
        self.member, self.nonmember = np.asarray(self.member, np.float64), np.asarray(self.nonmember, np.float64)
        if self.guess_member is None:
            self.guess_member, self.guess_nonmember = self.member >= self.threshold, self.nonmember >= self.threshold


# ---------------------------------------------------------------- metric attacks

def _log(p):
    return np.log(np.maximum(p, _TINY))


def signal(name: str, probs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The per-record statistic of each metric attack, oriented so that higher = member."""
    rows = np.arange(len(labels))
    p_y = probs[rows, labels]
    if name == "correctness":
        return (probs.argmax(1) == labels).astype(np.float64)
    if name == "confidence":
        return p_y
    if name == "entropy":
        return (probs * _log(probs)).sum(1)  # = -H(p)
    if name == "modified_entropy":
        terms = -probs * _log(1.0 - probs)
        terms[rows, labels] = -(1.0 - p_y) * _log(p_y)
        return -terms.sum(1)  # = -Mentr(p, y)
    raise ValueError(f"unknown metric attack {name!r}")


METRIC_ATTACKS = ("correctness", "confidence", "entropy", "modified_entropy")
REFERENCE_ATTACKS = ("lira_online", "lira_offline", "rmia")  # pipeline.attacks.reference
OUTPUT_ATTACKS = METRIC_ATTACKS[1:] + ("neural",) + REFERENCE_ATTACKS  # read the released confidence vector
LABEL_ONLY_ATTACKS = ("correctness", "label_only_noise", "label_only_lira_online", "label_only_lira_offline")
ATTACKS = METRIC_ATTACKS + ("neural",) + REFERENCE_ATTACKS + LABEL_ONLY_ATTACKS[1:]  # every attack, in table order


class MetricAttack:
    """One of Song and Mittal's metric attacks with class-dependent thresholds (correctness:
    member iff correct, no threshold to fit)."""

    def __init__(self, name: str):
        if name not in METRIC_ATTACKS:
            raise ValueError(f"unknown metric attack {name!r}; one of {METRIC_ATTACKS}")
        self.name, self.thresholds = name, None

    def fit(self, shadow: Outputs) -> "MetricAttack":
        classes = shadow.probs_in.shape[1]
        if self.name == "correctness":
            self.thresholds = np.full(classes, 0.5)
            return self
        s_in = signal(self.name, shadow.probs_in, shadow.labels_in)
        s_out = signal(self.name, shadow.probs_out, shadow.labels_out)
        overall = best_threshold(s_in, s_out)
        self.thresholds = np.array([
            best_threshold(s_in[shadow.labels_in == c], s_out[shadow.labels_out == c])
            if (shadow.labels_in == c).any() and (shadow.labels_out == c).any() else overall
            for c in range(classes)])
        return self

    def run(self, target: Outputs) -> AttackScores:
        """The raw statistic as the score (one ROC over all classes, as the reference evaluations
        compute it); the class thresholds only make the guesses."""
        if self.thresholds is None or len(self.thresholds) != target.probs_in.shape[1]:
            raise ValueError("fit the attack on shadow outputs with the target's number of classes first")
        s_in = signal(self.name, target.probs_in, target.labels_in)
        s_out = signal(self.name, target.probs_out, target.labels_out)
        return AttackScores(self.name, s_in, s_out, 0.5 if self.name == "correctness" else 0.0,
                            s_in >= self.thresholds[target.labels_in], s_out >= self.thresholds[target.labels_out])


# ---------------------------------------------------------------- neural shadow-model attack

class NeuralAttack:
    """Binary MLP (classes -> hidden -> hidden -> 1, ReLU) on sorted confidence vectors, trained
    on the shadow model's members (1) and non-members (0) with class-balanced BCE and Adam."""

    name = "neural"

    def __init__(self, hidden: int = 64, epochs: int = 200, lr: float = 1e-3, batch_size: int = 128, seed: int = 0):
        self.hidden, self.epochs, self.lr, self.batch_size, self.seed = hidden, epochs, lr, batch_size, seed
        self.net = None

    @staticmethod
    def features(probs: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(-np.sort(-probs, axis=1), dtype=torch.float32)

    def fit(self, shadow: Outputs, progress: bool = False) -> "NeuralAttack":
        torch.manual_seed(self.seed)
        gen = torch.Generator().manual_seed(self.seed)
        x = torch.cat([self.features(shadow.probs_in), self.features(shadow.probs_out)])
        y = torch.cat([torch.ones(len(shadow.probs_in)), torch.zeros(len(shadow.probs_out))])
        self.net = nn.Sequential(nn.Linear(x.shape[1], self.hidden), nn.ReLU(),
                                 nn.Linear(self.hidden, self.hidden), nn.ReLU(), nn.Linear(self.hidden, 1))
        loss_fn = nn.BCEWithLogitsLoss(pos_weight=torch.tensor(len(shadow.probs_out) / len(shadow.probs_in)))
        opt = torch.optim.Adam(self.net.parameters(), lr=self.lr)
        for _ in tqdm(range(self.epochs), desc="neural attack", disable=not progress):
            perm = torch.randperm(len(x), generator=gen)
            for start in range(0, len(x), self.batch_size):
                idx = perm[start:start + self.batch_size]
                loss = loss_fn(self.net(x[idx]).squeeze(1), y[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
        self.net.eval()
        return self

    @torch.no_grad()
    def score(self, probs: np.ndarray) -> np.ndarray:
        return self.net(self.features(probs)).squeeze(1).double().numpy()  # logit: member iff >= 0

    def run(self, target: Outputs) -> AttackScores:
        if self.net is None or self.net[0].in_features != target.probs_in.shape[1]:
            raise ValueError("fit the attack on shadow outputs with the target's number of classes first")
        return AttackScores(self.name, self.score(target.probs_in), self.score(target.probs_out), 0.0)


# ---------------------------------------------------------------- label-only attack

LabelOracle = Callable[[np.ndarray], np.ndarray]  # inputs (n, ...) -> released labels (n,)


class NoiseRobustnessAttack:
    """Label-only attack of Choquette-Choo et al. (2021), as their reference code scores it: a
    record whose released label is wrong scores 0; otherwise the fraction of ``queries`` noisy
    copies clip(x + N(0, sigma^2 I), 0, 1) whose released label equals y. ``fit`` picks sigma
    from ``sigmas`` and the (global) threshold that maximise the shadow attack's accuracy.
    Noise is drawn per (seed, stream, query), so results do not depend on how rows are batched
    by the oracle; the shadow and target streams differ."""

    name = "label_only_noise"

    def __init__(self, sigmas=(0.25, 0.5, 1.0, 2.0), queries: int = 100, seed: int = 0):
        self.sigmas, self.queries, self.seed = tuple(sigmas), queries, seed
        self.sigma = self.threshold = None

    def robustness(self, oracle: LabelOracle, x: np.ndarray, y: np.ndarray, sigma: float, stream: int,
                   progress: bool = False) -> np.ndarray:
        x = np.asarray(x, dtype=np.float32)
        same = np.zeros(len(x))
        for q in tqdm(range(self.queries), desc=f"label-only sigma={sigma}", disable=not progress):
            noise = np.random.default_rng([self.seed, stream, q]).standard_normal(x.shape, dtype=np.float32)
            same += np.asarray(oracle(np.clip(x + sigma * noise, 0.0, 1.0))) == y
        return np.where(np.asarray(oracle(x)) == y, same / self.queries, 0.0)

    def fit(self, oracle: LabelOracle, x_in, y_in, x_out, y_out, progress: bool = False) -> "NoiseRobustnessAttack":
        best = -1.0
        x_all, y_all = np.concatenate([x_in, x_out]), np.concatenate([y_in, y_out])
        for sigma in self.sigmas:
            s = self.robustness(oracle, x_all, y_all, sigma, stream=0, progress=progress)
            s_in, s_out = s[:len(x_in)], s[len(x_in):]
            t = best_threshold(s_in, s_out)
            acc = balanced_accuracy(s_in, s_out, t)
            if acc > best:
                best, self.sigma, self.threshold = acc, sigma, t
        return self

    def scores(self, oracle: LabelOracle, x_in, y_in, x_out, y_out, stream: int = 1,
               progress: bool = False) -> AttackScores:
        """The fitted attack's scores of (x_in, y_in) and (x_out, y_out) through ``oracle``."""
        if self.sigma is None:
            raise ValueError("fit the attack on a shadow oracle first")
        x_all, y_all = np.concatenate([x_in, x_out]), np.concatenate([y_in, y_out])
        s = self.robustness(oracle, x_all, y_all, self.sigma, stream=stream, progress=progress)
        return AttackScores(self.name, s[:len(x_in)], s[len(x_in):], self.threshold)

    def run(self, oracle: LabelOracle, x_in, y_in, x_out, y_out, progress: bool = False) -> AttackScores:
        return self.scores(oracle, x_in, y_in, x_out, y_out, 1, progress)


def run_output_attacks(shadow: Outputs, target: Outputs, seed: int = 0) -> dict[str, AttackScores]:
    """The four metric attacks and the neural attack, fitted on ``shadow``, run on ``target``."""
    attacks = [MetricAttack(name) for name in METRIC_ATTACKS] + [NeuralAttack(seed=seed)]
    return {a.name: a.fit(shadow).run(target) for a in attacks}
