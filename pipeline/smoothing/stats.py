"""The statistics of randomized smoothing (Cohen, Rosenfeld and Kolter, "Certified Adversarial
Robustness via Randomized Smoothing", ICML 2019, Section 3.2), from class counts of noisy votes:

* ``certify_from_counts`` (Algorithm CERTIFY): the top class c_A of the n0 *selection* counts;
  pA_lower, the one-sided (1 - alpha) Clopper-Pearson lower bound on P(f(x + eps) = c_A) from
  the n *estimation* counts; abstain if pA_lower < 1/2, else radius R = sigma * PhiInv(pA_lower).
  With probability >= 1 - alpha the returned class is g(x) and g is constant on B(x, R).
* ``clopper_pearson_interval``: the two-sided interval on a proportion (attack success rates,
  accuracies, the averaging attacker's answers).
* ``predict_from_counts`` (Algorithm PREDICT): two-sided binomial test (p = 1/2) of the top
  two counts; abstain unless the p-value is <= alpha. Wrong with probability <= alpha.

The intervals on every other reported number are here too: ``wilson_interval`` (a proportion,
Wilson 1927) and ``bootstrap_interval`` (any statistic of records, Efron's percentile bootstrap).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import beta, binom, norm

from ..core.seeds import derive_seed

ABSTAIN = -1
BOOTSTRAP = 2  # the bootstrap's random stream under the pipeline seed


def clopper_pearson_lower(k, n, alpha):
    """One-sided (1 - alpha) lower confidence bound on a binomial proportion: the alpha
    quantile of Beta(k, n - k + 1), and 0 when k = 0 (Clopper and Pearson, 1934). Many counts
    of one n are looked up in the n + 1 possible bounds (the same values, computed once each)."""
    k = np.asarray(k, dtype=np.float64)
    if k.size > n + 1 and np.ndim(n) == 0:
        return clopper_pearson_lower(np.arange(n + 1), n, alpha)[k.astype(np.int64)]
    with np.errstate(invalid="ignore"):
        lower = beta.ppf(alpha, k, n - k + 1)
    return np.where(k > 0, lower, 0.0)


def clopper_pearson_interval(k, n, alpha=0.05):
    """Two-sided (1 - alpha) Clopper-Pearson interval on a binomial proportion k / n: the
    one-sided (1 - alpha / 2) lower bound of k successes and one minus that of the n - k
    failures, i.e. the alpha / 2 quantile of Beta(k, n - k + 1) and the 1 - alpha / 2 quantile
    of Beta(k + 1, n - k); 0 when k = 0, 1 when k = n."""
    k = np.asarray(k, dtype=np.float64)
    return clopper_pearson_lower(k, n, alpha / 2), 1.0 - clopper_pearson_lower(n - k, n, alpha / 2)


def wilson_interval(k, n, level=0.95):
    """Wilson's score interval on a proportion k / n at confidence ``level``: the p with
    |k/n - p| <= z sqrt(p (1 - p) / n) (Wilson, 1927); (nan, nan) when n = 0."""
    k, n = np.asarray(k, dtype=np.float64), np.asarray(n, dtype=np.float64)
    z = norm.ppf(0.5 + level / 2)
    with np.errstate(invalid="ignore", divide="ignore"):
        centre = (k + z * z / 2) / (n + z * z)
        half = z * np.sqrt(k * (n - k) / n + z * z / 4) / (n + z * z)
    return centre - half, centre + half


def bootstrap_interval(statistic, records: int, seed: int, reps: int = 1000, level: float = 0.95):
    """Percentile bootstrap interval of ``statistic(index)`` (a function of an index array into
    the ``records``, resampled with replacement ``reps`` times, from the pipeline ``seed``'s
    bootstrap stream): the (1 - level) / 2
    and (1 + level) / 2 quantiles of the resampled values (Efron and Tibshirani, 1993, ch. 13).
    Resamples where the statistic is undefined (NaN) are left out; (nan, nan) if all are."""
    rng = np.random.default_rng(derive_seed(seed, BOOTSTRAP))
    values = np.array([statistic(rng.integers(0, records, records)) for _ in range(reps)], dtype=np.float64)
    values = values[np.isfinite(values)]
    if not len(values):
        return float("nan"), float("nan")
    lo, hi = np.quantile(values, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


def binomial_pvalue(top, second):
    """Two-sided p-value of H0: p = 1/2 for ``top`` successes in ``top + second`` trials.
    The null is symmetric, so it equals ``scipy.stats.binomtest(top, top + second).pvalue``:
    min(1, 2 * P(X <= min(top, second)))."""
    top, second = np.asarray(top), np.asarray(second)
    return np.minimum(1.0, 2.0 * binom.cdf(np.minimum(top, second), top + second, 0.5))


@dataclass
class Certificate:
    prediction: np.ndarray  # class index, or ABSTAIN
    pa_lower: np.ndarray    # Clopper-Pearson lower bound on pA of the selected class
    radius: np.ndarray      # sigma * PhiInv(pA_lower); 0 where abstained


def certify_from_counts(counts0: np.ndarray, counts: np.ndarray, alpha: float, sigma: float) -> Certificate:
    """CERTIFY from selection counts (M, K) and estimation counts (M, K)."""
    top = counts0.argmax(axis=1)
    n = int(counts[0].sum()) if len(counts) else 0
    pa_lower = clopper_pearson_lower(counts[np.arange(len(top)), top], n, alpha)
    certified = pa_lower >= 0.5
    radius = np.where(certified, sigma * norm.ppf(np.clip(pa_lower, 0.5, 1.0)), 0.0)
    return Certificate(np.where(certified, top, ABSTAIN), pa_lower, radius)


def predict_from_counts(counts: np.ndarray, alpha: float) -> np.ndarray:
    """PREDICT from estimation counts (M, K): the top class unless the test fails."""
    order = np.argsort(-counts, axis=1, kind="stable")
    rows = np.arange(len(counts))
    top, second = counts[rows, order[:, 0]], counts[rows, order[:, 1]]
    return np.where(binomial_pvalue(top, second) <= alpha, order[:, 0], ABSTAIN)
