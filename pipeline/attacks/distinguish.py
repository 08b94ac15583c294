"""The distinguishing game of (R, alpha)-Robust Privacy (the Robust Privacy paper: a prediction
certified invariant on the l2 ball of radius R with confidence 1 - alpha gives "any adversary
observing the released prediction at most alpha/2 advantage in distinguishing x from any input
within distance R of x"), the adversary's side, measured on what a service releases:

* fresh noise: one release is one draw from an answer law (P at x, Q at x'); the best adversary's
  advantage is TV(P, Q) (``total_variation``, ``tv_interval``), and with K releases of the same
  input TV(P^K, Q^K) (``repeated_tv``);
* keyed noise: the service answers each input deterministically for its secret; an adversary who
  knows both candidates queries both and matches, so its advantage is P(a(x) != a(x')) over the
  secret (``disagreement``), whatever K;
* ``partners``: the x' at distance R (or inside the ball) the game is played against.
"""
from __future__ import annotations

from functools import lru_cache
from itertools import combinations
from math import comb

import numpy as np
from scipy.special import gammaln, xlogy
from scipy.stats import binom

from ..smoothing import clopper_pearson_interval
from ..smoothing.stats import wilson_interval

CELLS_LIMIT = 200_000  # count vectors at most in ``product_tv``'s exact sum


def _laws(counts_x, counts_y) -> tuple[np.ndarray, np.ndarray]:
    cx, cy = np.asarray(counts_x, dtype=np.float64), np.asarray(counts_y, dtype=np.float64)
    return cx / cx.sum(), cy / cy.sum()


def total_variation(p, q) -> float:
    """TV(P, Q) = 0.5 * sum |p - q| of two answer laws (probability or count vectors)."""
    p, q = _laws(p, q)
    return float(0.5 * np.abs(p - q).sum())


def _events(counts_x, counts_y) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Event counts (E,) in both samples and the sample sizes. The cells are the outcomes seen
    in either sample plus one cell merging the unseen ones (when there are any); the events are
    the unions of cells, one of each complementary pair (those leaving out cell 0), none empty."""
    cx, cy = np.asarray(counts_x, dtype=np.int64), np.asarray(counts_y, dtype=np.int64)
    seen = (cx + cy) > 0
    cells = np.stack([cx[seen], cy[seen]], 1)
    if not seen.all():
        cells = np.vstack([cells, [0, 0]])
    m = len(cells)
    masks = (np.arange(1, 2 ** (m - 1))[:, None] >> np.arange(m - 1)) & 1  # subsets of cells 1..m-1
    k = masks @ cells[1:]
    return k[:, 0], k[:, 1], int(cx.sum()), int(cy.sum())


def tv_interval(counts_x, counts_y, level: float = 0.95) -> tuple[float, float, float]:
    """The plug-in TV of two independent samples of answers (count vectors over one answer space)
    and a simultaneous ``level`` interval on the true TV.

    TV = max over events A of P(A) - Q(A). For every event (``_events``) a two-sided interval on
    P(A) - Q(A), Newcombe's hybrid score interval from Wilson intervals ("Interval estimation for
    the difference between independent proportions", Statistics in Medicine 1998, method 10), at
    the Bonferroni level 1 - (1 - level) / #events; the bounds on TV are the largest lower and
    upper bounds of |P(A) - Q(A)|, clipped to [0, 1]. The unseen outcomes are one cell, so the
    interval is on the TV of the law with them merged: the true TV exceeds it by at most
    min(P, Q)(unseen), which is small when either sample is large. The plug-in estimate is biased
    upward (E |p_hat - q_hat| > |p - q|), by about sqrt(p (1 - p) (1/n_x + 1/n_y)) per event when
    P = Q: with a few hundred answers it reads several percent where the truth is 0. Identical
    point masses give (0, 0, z^2 / (n + z^2)) or less."""
    kx, ky, nx, ny = _events(counts_x, counts_y)
    estimate = total_variation(counts_x, counts_y)
    if not len(kx):  # a one-outcome answer space
        return estimate, 0.0, 0.0
    conf = 1 - (1 - level) / len(kx)
    lx, ux = wilson_interval(kx, nx, conf)
    ly, uy = wilson_interval(ky, ny, conf)
    px, py = kx / nx, ky / ny
    lo = px - py - np.sqrt((px - lx) ** 2 + (uy - py) ** 2)
    hi = px - py + np.sqrt((ux - px) ** 2 + (py - ly) ** 2)
    return estimate, float(max(0.0, lo.max(), -hi.min())), float(min(1.0, max(hi.max(), -lo.min())))


def disagreement(a_x, a_y, level: float = 0.95) -> tuple[float, float, float]:
    """The keyed-noise adversary's advantage P(a(x) != a(x')) from answers a_x[r], a_y[r] under R
    independent secrets, with its Clopper-Pearson ``level`` interval. For one secret the service
    answers each input deterministically, so the adversary who queries both candidates and
    matches them against the released answer wins outright when they differ; identical inputs
    get identical noise, hence advantage exactly 0. Over the secret it is >= TV of the two
    answer laws (they equal the fresh-noise laws)."""
    a_x, a_y = np.asarray(a_x), np.asarray(a_y)
    k, n = int((a_x != a_y).sum()), len(a_x)
    lo, hi = clopper_pearson_interval(k, n, 1 - level)
    return k / n, float(lo), float(hi)


@lru_cache(maxsize=32)
def _count_vectors(k: int, m: int) -> np.ndarray:
    """Every vector of m non-negative counts summing to k (stars and bars), (C(k+m-1, m-1), m)."""
    bars = np.array(list(combinations(range(k + m - 1), m - 1)), dtype=np.int64).reshape(-1, m - 1)
    ends = np.column_stack([np.full(len(bars), -1), bars, np.full(len(bars), k + m - 1)])
    return np.diff(ends, axis=1) - 1


def product_tv(p, q, k: int) -> float:
    """TV(P^k, Q^k) of k independent answers, exactly: the count vector of the answers is
    sufficient, so it is the TV of the multinomials Mult(k, p) and Mult(k, q) over the outcomes
    either law puts mass on. If those count vectors are too many (``CELLS_LIMIT``), the outcomes
    of least p + q are merged into one, which gives a lower bound (coarsening never raises TV)."""
    p, q = _laws(p, q)
    order = np.argsort(-(p + q), kind="stable")[:int(((p + q) > 0).sum())]
    m = len(order)
    if m < 2:
        return 0.0
    while m > 2 and comb(k + m - 1, m - 1) > CELLS_LIMIT:
        m -= 1
    cells = np.stack([p[order], q[order]], 1)
    cells = np.vstack([cells[:m - 1], cells[m - 1:].sum(0)])
    c = _count_vectors(k, m)
    coef = gammaln(k + 1) - gammaln(c + 1).sum(1)
    lp, lq = coef + xlogy(c, cells[:, 0]).sum(1), coef + xlogy(c, cells[:, 1]).sum(1)
    return float(min(1.0, 0.5 * np.abs(np.exp(lp) - np.exp(lq)).sum()))


def _binomial_tv(k: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """TV(Bin(k, a), Bin(k, b)) elementwise."""
    j = np.arange(k + 1)[:, None]
    return 0.5 * np.abs(binom.pmf(j, k, a) - binom.pmf(j, k, b)).sum(0)


def repeated_tv(counts_x, counts_y, k: int, level: float = 0.95) -> tuple[float, float, float]:
    """TV(P^k, Q^k), the fresh-noise adversary's advantage from k releases of one input: the
    plug-in ``product_tv`` of the sampled laws (biased upward, more so as k grows: the sampling
    error of p_hat - q_hat is amplified like a true difference), and a simultaneous ``level``
    interval. Wilson intervals on P(A) and Q(A) for every event (``_events``) at Bonferroni level
    1 - (1 - level) / (2 #events) all hold together with probability >= ``level``; then
    * lower: the number of answers in A is a statistic of the k answers, Bin(k, P(A)) against
      Bin(k, Q(A)), and the binomial TV grows with the gap (monotone likelihood ratio), so the
      nearest corners of the two intervals bound it below (0 where they overlap);
    * upper: coupling each answer maximally, TV(P^k, Q^k) <= 1 - (1 - TV)^k, TV at its upper
      bound max over A of the farthest corners."""
    kx, ky, nx, ny = _events(counts_x, counts_y)
    estimate = product_tv(counts_x, counts_y, k)
    if not len(kx):
        return estimate, 0.0, 0.0
    conf = 1 - (1 - level) / (2 * len(kx))
    (lx, ux), (ly, uy) = wilson_interval(kx, nx, conf), wilson_interval(ky, ny, conf)
    apart_x, apart_y = lx > uy, ly > ux
    lower = np.where(apart_x, _binomial_tv(k, lx, uy), np.where(apart_y, _binomial_tv(k, ly, ux), 0.0))
    tv_high = min(1.0, float(np.maximum(ux - ly, uy - lx).max()))
    return estimate, float(lower.max()), float(1 - (1 - tv_high) ** k)


def partners(x: np.ndarray, radius: np.ndarray, kind: str, rng: np.random.Generator, axis: int | None = None,
             sign=None) -> np.ndarray:
    """A partner x' per row of ``x`` (M, ...) at l2 distance ``radius`` (M,) (input units):
    ``sphere``: a uniform random direction at distance R; ``inside``: a uniform random direction
    at R / 2; ``axis``: x +- R along coordinate ``axis`` of the flattened row (the tabular
    task's sensitive attribute), with ``sign`` (+1 / -1, per row or one for all, e.g. toward
    the decision threshold), or both signs if None: then (2M, ...), the + partners first.
    Computed in float64, returned in x's dtype."""
    flat = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    r = np.asarray(radius, dtype=np.float64)
    if kind == "axis":
        if sign is None:
            return np.concatenate([partners(x, radius, kind, rng, axis, s) for s in (1, -1)])
        step = np.zeros_like(flat)
        step[:, axis] = np.broadcast_to(np.asarray(sign, dtype=np.float64), len(flat)) * r
    elif kind in ("sphere", "inside"):
        u = rng.standard_normal(flat.shape)
        step = u / np.linalg.norm(u, axis=1, keepdims=True) * (r if kind == "sphere" else r / 2)[:, None]
    else:
        raise ValueError(f"partner kind must be 'sphere', 'inside' or 'axis', got {kind!r}")
    return (flat + step).reshape(np.shape(x)).astype(np.asarray(x).dtype)
