"""The two-sided Clopper-Pearson interval against scipy's exact interval and Beta quantiles."""
import numpy as np
import pytest
from scipy.stats import beta, binomtest

from pipeline.smoothing import clopper_pearson_interval


def test_interval_is_the_beta_quantiles_and_scipy_exact_interval():
    n, alpha = 40, 0.05
    for k in range(1, n):
        lo, hi = clopper_pearson_interval(k, n, alpha)
        assert lo == pytest.approx(beta.ppf(alpha / 2, k, n - k + 1), rel=1e-9)
        assert hi == pytest.approx(beta.ppf(1 - alpha / 2, k + 1, n - k), rel=1e-9)
        exact = binomtest(k, n).proportion_ci(0.95, method="exact")
        assert (lo, hi) == pytest.approx((exact.low, exact.high), rel=1e-7)


def test_interval_at_k_0_and_k_n_is_one_sided_at_alpha_over_2():
    n, alpha = 10, 0.05
    assert clopper_pearson_interval(0, n, alpha) == pytest.approx((0.0, 1 - (alpha / 2) ** (1 / n)))  # 0.3085
    assert clopper_pearson_interval(n, n, alpha) == pytest.approx(((alpha / 2) ** (1 / n), 1.0))


@pytest.mark.parametrize("p", [0.0, 0.02, 0.5, 1.0])
def test_interval_covers_p_at_least_1_minus_alpha(p):
    """Exact intervals are conservative: coverage >= 95%, also at p = 0 and 1 (k = 0 or n)."""
    n, trials = 25, 20000
    k = np.random.default_rng(0).binomial(n, p, trials)
    lo, hi = clopper_pearson_interval(k, n, 0.05)
    assert ((lo <= p) & (p <= hi)).mean() >= 0.95 - 3 * np.sqrt(0.05 * 0.95 / trials)
    assert np.all(lo <= k / n) and np.all(k / n <= hi)
