"""Label-only attribute inference against a served classifier (paper Section 3, Scenario I).

The attacker knows a victim's other attributes x_{-1}, sees the label y released for the victim,
and queries the service with any sensitive value b it likes (other attributes fixed). Sweeping
a grid of b, it keeps the values whose answer equals y: the set of sensitive values compatible
with y. Its hull [lo, hi] is the inferred interval (one query per grid value and victim).

``averaging_interval`` is the repeated-query attacker: if the service answers with fresh noise,
K answers for the victim's record are K independent draws, and the fraction k/K of positive
answers estimates m(x) = P(answer = 1), a function of p_A(x), i.e. of b. The attacker learns
m(b) with its own queries and keeps the b whose m(b) is plausible for k of K.
"""
from __future__ import annotations

import numpy as np
import torch
from scipy.stats import binom

from ..smoothing import (ABSTAIN, ESTIMATE, Smooth, certify_from_counts, clopper_pearson_interval,
                         predict_from_counts)
from ..tabular.ape import Augmented

PROTOCOLS = ("predict", "abstain_as_negative", "vote", "certify")  # the release protocols, ``released``


def sweep(lo: float, hi: float, step: float, threshold: float) -> np.ndarray:
    """The attacker's grid over [lo, hi] at ``step``, with the threshold B on a grid point."""
    below, above = int(np.floor((threshold - lo) / step)), int(np.floor((hi - threshold) / step))
    return threshold + step * np.arange(-below, above + 1)


def victims(raw: np.ndarray, threshold: float, near: float, count: int, seed: int,
            above: float = np.inf) -> np.ndarray:
    """Sorted indices of up to ``count`` records with sensitive value in [B - near, B + above]
    (by default the positives and the near-threshold negatives), sampled with ``seed``."""
    eligible = np.flatnonzero((raw >= threshold - near) & (raw <= threshold + above))
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(eligible, size=min(count, len(eligible)), replace=False))


def queries(data: dict, meta: dict, near: float, step: float, count: int, seed: int):
    """Scenario I's set-up on the tabular split ``data``: ``count`` ``victims`` (indices), their
    true sensitive values, the attacker's ``sweep`` over the training range at ``step``, and its
    queries: per victim its own record, then the record at every grid value (``ape.Augmented``,
    rows made on the fly; column 0 is the victim's own value)."""
    B = meta["threshold"]
    idx = victims(data["test_raw"], B, near, count, seed)
    truth = data["test_raw"][idx]
    grid = sweep(data["train_raw"].min(), data["train_raw"].max(), step, B)
    values = np.hstack([truth[:, None], np.broadcast_to(grid, (len(idx), len(grid)))])
    return idx, truth, grid, Augmented(data["test_x"][idx], values, meta["sensitive_index"], meta)


def hull(grid: np.ndarray, keep: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lowest and highest grid value kept, per row of ``keep`` (R, G); NaN where none is."""
    lo = np.where(keep, grid, np.inf).min(axis=1)
    hi = np.where(keep, grid, -np.inf).max(axis=1)
    empty = ~keep.any(axis=1)
    return np.where(empty, np.nan, lo), np.where(empty, np.nan, hi)


def interval_summary(lo: np.ndarray, hi: np.ndarray, truth: np.ndarray) -> dict:
    """Median width, coverage of the true value, median error of the midpoint, and how often
    the attacker is left with no compatible value at all."""
    found = np.isfinite(lo)
    width, mid = hi - lo, (lo + hi) / 2
    return {"width_median": float(np.median(width[found])) if found.any() else float("nan"),
            "coverage": float(np.mean(found & (lo <= truth) & (truth <= hi))),
            "midpoint_error_median": float(np.median(np.abs(mid - truth)[found])) if found.any() else float("nan"),
            "empty_rate": float(np.mean(~found))}


def released(counts: np.ndarray, select: np.ndarray, alpha: float, sigma: float) -> dict[str, np.ndarray]:
    """What a service releases under each of ``PROTOCOLS`` from one query's Monte Carlo counts
    (``counts``: n draws; ``select``: n0 independent selection draws, Cohen et al.): PREDICT
    with abstentions visible; PREDICT with an abstention answered as class 0 (the negative
    class: no recommendation); the majority vote of the n draws (Section 7.2: always a label,
    a tie goes to class 0); CERTIFY's answer (its label, or an abstention). Each protocol's
    answer has its own exact law; they share draws, so only their joint law is not that of
    independent services."""
    predict = predict_from_counts(counts, alpha)
    return {"predict": predict, "abstain_as_negative": np.where(predict == ABSTAIN, 0, predict),
            "vote": counts.argmax(axis=1), "certify": certify_from_counts(select, counts, alpha, sigma).prediction}


def answer_law(p_a: np.ndarray, n: int, alpha: float | None = None) -> np.ndarray:
    """m = P(the service answers class 1) when P(f(x + eps) = 1) = p_a, for two classes: the
    sum of Binomial(n, p_a) probabilities of the counts k of ones for which it says 1. With
    ``alpha``, the service is PREDICT (abstentions are not 1); without, the majority vote
    (Section 7.2; a tie goes to class 0)."""
    k = np.arange(n + 1)
    if alpha is None:
        says_one = k > n - k
    else:
        says_one = predict_from_counts(np.stack([n - k, k], axis=1), alpha) == 1
    return binom.pmf(k[says_one], n, np.asarray(p_a)[..., None]).sum(axis=-1)


def averaging_interval(grid: np.ndarray, m: np.ndarray, ones: np.ndarray, k: int,
                       level: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Hull of the grid values b at which ``ones`` positive answers out of ``k`` are plausible:
    m(b) inside the two-sided (1 - level) Clopper-Pearson interval for ones / k.
    ``m``: (R, G) answer law per victim and grid value; ``ones``: (R,) counts."""
    lower, upper = clopper_pearson_interval(ones, k, level)
    return hull(grid, (m >= lower[:, None]) & (m <= upper[:, None]))


def certified_differences(grid: np.ndarray, answers: np.ndarray, released: np.ndarray,
                          ir_lo: np.ndarray, i_lo: np.ndarray) -> dict:
    """What the served model answered on the grid values inside each victim's certified
    expansion [ir_lo, i_lo] (Definition 2: g = 1 there, with probability >= 1 - alpha; NaN
    where the victim has no certified set), and how many compatible values lie below it."""
    inside = (grid >= ir_lo[:, None]) & (grid <= i_lo[:, None])
    below = (released == 1)[:, None] & (answers == 1) & (grid < ir_lo[:, None])
    return {"certified_values": int(inside.sum()),
            "certified_answered_positive": int((inside & (answers == 1)).sum()),
            "certified_answered_abstain": int((inside & (answers == ABSTAIN)).sum()),
            "certified_answered_negative": int((inside & (answers == 0)).sum()),
            "compatible_below_certified": int(below.sum())}


def averaging_attack(m: np.ndarray, grid: np.ndarray, repeats: list[int], fresh: np.ndarray | None = None,
                     keyed: np.ndarray | None = None) -> dict[str, dict[int, tuple[np.ndarray, np.ndarray]]]:
    """The averaging attacker's intervals ``averaging_interval`` per mode and K, from its answer
    law ``m`` (R, G) and the answers (R, max K) to the victims' records under fresh and/or keyed
    randomness. Against keyed randomness the K answers are one draw repeated: ``keyed`` is the
    attacker who knows it (one answer), ``keyed_naive`` the one who takes them for K draws."""
    out: dict[str, dict[int, tuple[np.ndarray, np.ndarray]]] = {}
    for mode, answers, draws in (("fresh", fresh, None), ("keyed", keyed, 1), ("keyed_naive", keyed, None)):
        if answers is not None:
            out[mode] = {k: averaging_interval(grid, m, (answers[:, :draws or k] == 1).sum(axis=1), draws or k)
                         for k in repeats}
    return out


def repeated_queries(model, sigma: float, own: torch.Tensor, aug, grid: np.ndarray, n: int, repeats: list[int],
                     calibration: int, seed: int, chunk: int, secret: bytes, device: torch.device | str = "cpu") -> dict:
    """``averaging_attack`` against a service that answers the majority vote over n noisy copies
    (Section 7.2's always-return-a-label mode), with fresh and with keyed noise. The attacker's
    m(b): p_A at every grid value from ``calibration`` noisy evaluations (its own queries, as
    many as it likes), then ``answer_law``. The victims' records ``own`` (R, d) are answered
    max(repeats) times; for each K the attacker uses the first K answers. Both engines run on ``device``."""
    estimate = Smooth(model, 2, sigma, noise="shared", seed=seed, chunk=chunk, progress=True, device=device)
    p_a = estimate.counts(aug, calibration, ESTIMATE, key=0)[:, 1].reshape(aug.values.shape) / calibration
    k_max = max(repeats)
    answers = {noise: Smooth(model, 2, sigma, noise=noise, seed=seed + 1, chunk=chunk, secret=secret, device=device)
               .vote(own.repeat_interleave(k_max, dim=0), n).reshape(len(own), k_max) for noise in ("fresh", "keyed")}
    return averaging_attack(answer_law(p_a, n), grid, repeats, answers["fresh"], answers["keyed"])


def repeated_queries_rr(on_grid: np.ndarray, own: np.ndarray, release, grid: np.ndarray, repeats: list[int]) -> dict:
    """``averaging_attack`` against randomized response on two labels (``release``, fresh or
    keyed), asked max(repeats) times for each victim's record ``own`` (R, d): the attacker's
    m(b) = keep where the model says 1 at b (``on_grid``, (R, G) labels, learnt by as many
    queries as it likes), 1 - keep elsewhere."""
    k_max = max(repeats)
    answers = release.labels(np.repeat(own, k_max, axis=0)).reshape(len(own), k_max)
    m = np.where(on_grid == 1, release.keep, 1 - release.keep)
    return averaging_attack(m, grid, repeats, **{"keyed" if release.keyed else "fresh": answers})
