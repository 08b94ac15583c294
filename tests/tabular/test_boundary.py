"""b*, the exact smoothed classifier's boundary along a trajectory, against a classifier whose
p(b) is known in closed form, and the split of the positives below B."""
import numpy as np
import pytest
import torch
from scipy.stats import norm

from pipeline.tabular.ape import decompose
from pipeline.tabular.boundary import base_flip, crossing, locate

META = {"sensitive_mean": 27.0, "sensitive_std": 5.0, "sensitive_index": 1, "threshold": 33.4}
CFG = {"level": 0.95, "halfwidth": 0.02, "block": 20000, "max_draws": 4000000, "coarse_step": 0.25,
       "below": 6.0, "above": 4.0}


def threshold_classifier(d: int, index: int, c: float) -> torch.nn.Sequential:
    """f(x) = 1 iff x[index] > c: p(b) = Phi((t(b) - c) / sigma) for t the standardised value."""
    layer = torch.nn.Linear(d, 2)
    with torch.no_grad():
        layer.weight.zero_()
        layer.weight[1, index] = 1.0
        layer.bias.copy_(torch.tensor([0.0, -c]))
    return torch.nn.Sequential(layer)


@pytest.mark.parametrize("sigma,c", [(1.0, 1.2), (2.0, 1.35)])
def test_boundary_interval_holds_the_analytic_b_star_and_meets_the_half_width(sigma, c):
    records = np.random.default_rng(0).normal(size=(4, 3)).astype(np.float32)
    out = locate(threshold_classifier(3, 1, c), records, sigma, META, CFG, seed=3)
    truth = META["sensitive_mean"] + c * META["sensitive_std"]  # t(b*) = c
    assert out["located"].all()
    assert ((out["b_lo"] <= truth) & (truth <= out["b_hi"])).all()
    assert ((out["b_hi"] - out["b_lo"]) / 2 <= CFG["halfwidth"] * 1.1).all()
    slope = norm.pdf(0) / (sigma * META["sensitive_std"])  # dp/db at b*
    assert out["slope"].to_numpy() == pytest.approx(slope, rel=0.05)


def test_a_boundary_outside_the_searched_range_is_reported_not_located():
    records = np.zeros((2, 3), dtype=np.float32)
    out = locate(threshold_classifier(3, 1, 5.0), records, 1.0, META, CFG, seed=0)  # b* = 52, above B + 4
    assert not out["located"].any() and out["b_star"].isna().all()


def test_crossing_interpolates_the_first_reach_of_the_level():
    values = np.array([[0.0, 1.0, 2.0, 3.0]] * 3)
    p = np.array([[0.1, 0.3, 0.7, 0.9], [0.6, 0.7, 0.8, 0.9], [0.1, 0.2, 0.3, 0.4]])
    b = crossing(values, p)
    assert b[0] == pytest.approx(1.5) and np.isnan(b[1]) and np.isnan(b[2])


def test_decompose_splits_positives_below_b_by_the_boundary_interval():
    values = np.array([[35.0, 33.4, 33.3, 33.2, 33.1, 33.0], [34.0, 33.4, 33.3, 33.2, 33.1, 33.0]])
    positive = np.array([[1, 1, 1, 1, 1, 1], [1, 0, 0, 0, 0, 1]], dtype=bool)
    d = decompose(values, positive, 33.4, b_lo=np.array([33.15, 33.5]), b_hi=np.array([33.25, 33.6]), alpha=0.01)
    # record 0: 33.3 above b_hi (effect), 33.2 inside, 33.1 and 33.0 below b_lo; record 1: 33.0 below b_lo
    assert d == {"positives_below_threshold": 5, "smoothing_effect": 1, "certification_failures": 3, "undecided": 1,
                 "inputs_below_boundary": 2 + 5, "failure_bound": pytest.approx(0.07)}


def test_the_base_classifier_flips_where_its_threshold_is():
    records = np.random.default_rng(1).normal(size=(3, 3)).astype(np.float32)
    flip = base_flip(threshold_classifier(3, 1, 1.2), records, META, CFG)
    assert flip == pytest.approx(META["sensitive_mean"] + 1.2 * META["sensitive_std"], abs=1e-4)
