"""The intervals against closed forms and scipy: two-sided Clopper-Pearson (scipy's exact
interval, Beta quantiles), Wilson, the percentile bootstrap, and the one-sided bound's lookup."""
import numpy as np
import pytest
from scipy.stats import beta, binomtest, norm

from pipeline.smoothing import clopper_pearson_interval
from pipeline.smoothing.stats import bootstrap_interval, clopper_pearson_lower, wilson_interval


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


def test_wilson_interval_matches_its_closed_form_and_known_values():
    lo, hi = wilson_interval(0, 10)
    z2 = norm.ppf(0.975) ** 2
    assert lo == pytest.approx(0.0, abs=1e-12) and hi == pytest.approx(z2 / (10 + z2))  # k = 0: [0, z^2 / (n + z^2)]
    lo, hi = wilson_interval(5, 10)
    assert (lo + hi) / 2 == pytest.approx(0.5) and hi == pytest.approx(0.7634, abs=1e-4)  # tabulated: 0.2366-0.7634
    assert lo == pytest.approx(0.2366, abs=1e-4)


def test_wilson_interval_covers_a_proportion_about_as_often_as_it_claims():
    rng = np.random.default_rng(0)
    k = rng.binomial(40, 0.3, size=20000)
    lo, hi = wilson_interval(k, 40)
    assert 0.93 < ((lo <= 0.3) & (0.3 <= hi)).mean() < 0.97


def test_bootstrap_interval_of_a_mean_is_about_mean_plus_minus_1_96_standard_errors():
    x = np.random.default_rng(1).normal(3.0, 2.0, size=400)
    lo, hi = bootstrap_interval(lambda i: x[i].mean(), len(x), seed=0, reps=2000)
    se = x.std(ddof=1) / np.sqrt(len(x))
    assert lo == pytest.approx(x.mean() - 1.96 * se, abs=0.25 * se)
    assert hi == pytest.approx(x.mean() + 1.96 * se, abs=0.25 * se)
    assert bootstrap_interval(lambda i: x[i].mean(), len(x), seed=0, reps=2000) == (lo, hi)  # seeded


def test_clopper_pearson_lookup_for_many_counts_equals_the_direct_bound():
    k = np.random.default_rng(2).integers(0, 101, size=1000)
    direct = np.array([clopper_pearson_lower(np.array([v]), 100, 0.01)[0] for v in k[:50]])
    assert np.array_equal(clopper_pearson_lower(k, 100, 0.01)[:50], direct)
