"""Scenario I and the repeated-query attacker against analytic answers."""
import numpy as np
import pytest
import torch
from scipy.stats import binom, binomtest

from pipeline.attacks import attribute as attack
from pipeline.tabular.ape import Augmented

META = {"sensitive_mean": 30.0, "sensitive_std": 5.0}
B = 33.0


def threshold_model():
    """Label 1 iff the sensitive value (feature 0, standardised) exceeds B: logits (0, x0 - z_B)."""
    layer = torch.nn.Linear(2, 2)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[0.0, 0.0], [1.0, 0.0]]))
        layer.bias.copy_(torch.tensor([0.0, -(B - 30.0) / 5.0]))
    return torch.nn.Sequential(layer)


def test_sweep_puts_the_threshold_on_the_grid_and_covers_the_range():
    grid = attack.sweep(20.03, 41.0, 0.25, B)
    assert B in grid and grid.min() >= 20.03 and grid.max() <= 41.0
    assert grid.min() < 20.03 + 0.25 and grid.max() > 41.0 - 0.25
    assert np.allclose(np.diff(grid), 0.25)


def test_victims_are_positives_and_near_threshold_records_only():
    raw = np.array([20.0, 30.5, 31.0, 33.5, 40.0, 29.9])
    assert attack.victims(raw, B, 2.0, 10, seed=0).tolist() == [2, 3, 4]
    assert attack.victims(raw, B, 2.0, 10, seed=0, above=1.0).tolist() == [2, 3]
    picked = attack.victims(np.linspace(30, 40, 100), B, 3.0, 10, seed=1)
    assert len(picked) == 10 and np.all(np.diff(picked) > 0)


def test_hull_and_summary_by_hand():
    grid = np.array([1.0, 2.0, 3.0, 4.0])
    lo, hi = attack.hull(grid, np.array([[False, True, False, True], [False] * 4]))
    assert lo[0] == 2.0 and hi[0] == 4.0 and np.isnan(lo[1])
    s = attack.interval_summary(lo, hi, np.array([3.5, 2.0]))
    assert s == {"width_median": 2.0, "coverage": 0.5, "midpoint_error_median": 0.5, "empty_rate": 0.5}


def test_answer_law_is_the_binomial_tail_past_predicts_threshold():
    # n = 20, alpha = 0.05: PREDICT says 1 iff k >= 15 (2 P(X >= 15) = 0.041; 2 P(X >= 14) = 0.115)
    p = np.array([0.3, 0.5, 0.7, 0.9])
    assert np.allclose(attack.answer_law(p, 20, 0.05), binom.sf(14, 20, p))


def test_answer_law_of_the_majority_vote_sends_ties_to_class_0():
    p = np.array([0.2, 0.5, 0.8])
    assert np.allclose(attack.answer_law(p, 10), binom.sf(5, 10, p))  # 1 iff at least 6 of 10
    assert np.allclose(attack.answer_law(p, 1), p)  # one noisy label: m = p_A


def test_averaging_interval_inverts_the_clopper_pearson_interval():
    grid = np.linspace(0, 1, 100001)
    m = np.broadcast_to(grid, (2, len(grid)))  # m(b) = b: the interval is the CP interval itself
    lo, hi = attack.averaging_interval(grid, m, np.array([50, 3]), 100, level=0.05)
    for i, k in enumerate([50, 3]):
        ci = binomtest(k, 100).proportion_ci(0.95, method="exact")
        assert lo[i] == pytest.approx(ci.low, abs=2e-5) and hi[i] == pytest.approx(ci.high, abs=2e-5)


def test_certified_differences_count_what_the_service_said_inside_the_certified_set():
    grid = np.array([30.0, 31.0, 32.0, 33.0, 34.0])
    answers = np.array([[0, -1, 1, 1, 1], [1, 1, 0, 1, 1]])
    out = attack.certified_differences(grid, answers, np.array([1, 1]), np.array([31.0, 31.0]),
                                       np.array([33.0, 32.0]))
    assert out == {"certified_values": 5, "certified_answered_positive": 3, "certified_answered_abstain": 1,
                   "certified_answered_negative": 1, "compatible_below_certified": 1}


def test_the_label_only_sweep_recovers_the_threshold_for_a_base_classifier():
    truth = np.array([35.0, 40.0, 31.0])
    grid = attack.sweep(20.0, 45.0, 0.5, B)
    aug = Augmented(np.zeros((3, 2), np.float32), np.hstack([truth[:, None], np.broadcast_to(grid, (3, len(grid)))]),
                    0, META)
    labels = threshold_model()(aug[:]).argmax(1).numpy().reshape(aug.values.shape)
    lo, hi = attack.hull(grid, labels[:, 1:] == labels[:, :1])
    assert lo.tolist() == [33.5, 33.5, 20.0] and hi.tolist() == [45.0, 45.0, 33.0]


def test_repeated_answers_narrow_the_interval_with_fresh_noise_but_not_with_keyed_noise():
    truth = np.linspace(31.0, 35.0, 12)
    grid = attack.sweep(20.0, 45.0, 0.1, B)
    on_grid = Augmented(np.zeros((12, 2), np.float32), np.broadcast_to(grid, (12, len(grid))), 0, META)
    own = Augmented(np.zeros((12, 2), np.float32), truth[:, None], 0, META)[0:12]
    out = attack.repeated_queries(threshold_model(), 1.0, own, on_grid, grid, n=10, repeats=[1, 100],
                                  calibration=4000, seed=0, chunk=1 << 15, secret=b"k")
    fresh, keyed, naive = ({k: attack.interval_summary(*out[mode][k], truth) for k in (1, 100)}
                           for mode in ("fresh", "keyed", "keyed_naive"))
    assert fresh[100]["width_median"] < fresh[1]["width_median"] / 3  # averaging pays with fresh noise
    assert fresh[100]["coverage"] >= 0.75  # and the narrow interval still holds the truth
    assert keyed[100] == keyed[1]  # keyed: K answers are one answer
    assert naive[100]["coverage"] < fresh[100]["coverage"]  # taking them for K draws misleads


def test_release_protocols_from_one_query_s_counts():
    """Counts of class 1 among n = 100 draws: 90 (a clear 1), 52 (too close for the binomial
    test at alpha = 0.01), 50 (a tie), 5 (a clear 0); selection draws agree with the majority."""
    from pipeline.smoothing import ABSTAIN

    ones = np.array([90, 52, 50, 5])
    counts = np.stack([100 - ones, ones], 1)
    select = np.stack([10 - (ones > 50) * 10, (ones > 50) * 10], 1)
    out = attack.released(counts, select, 0.01, 1.0)
    assert out["predict"].tolist() == [1, ABSTAIN, ABSTAIN, 0]
    assert out["abstain_as_negative"].tolist() == [1, 0, 0, 0]
    assert out["vote"].tolist() == [1, 1, 0, 0]  # a tie goes to class 0
    # CERTIFY: the Clopper-Pearson lower bound of 90/100 clears 1/2 at alpha = 0.01, 52/100 does not
    assert out["certify"].tolist() == [1, ABSTAIN, ABSTAIN, 0]
    assert binomtest(52, 100).pvalue > 0.01 and binomtest(90, 100).pvalue < 0.01
