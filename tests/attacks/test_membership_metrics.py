"""The membership metrics against analytic answers: AUC, TPR at a fixed FPR, the threshold choice
and the ROC curve."""
import numpy as np
import pytest
from scipy.stats import norm

from pipeline.attacks import membership_metrics as mm
from pipeline.attacks.membership_metrics import balanced_accuracy, best_threshold, roc_auc, roc_curve, tpr_at_fpr


def test_auc_equals_the_pairwise_definition_with_ties_counted_half():
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 5, 40).astype(float), rng.integers(0, 5, 30).astype(float)
    pairs = (a[:, None] > b[None, :]).mean() + 0.5 * (a[:, None] == b[None, :]).mean()
    assert roc_auc(a, b) == pytest.approx(pairs)
    assert roc_auc([1, 2, 3], [1, 2, 3]) == 0.5 and roc_auc([5, 6], [1, 2]) == 1.0 and roc_auc([1], [2]) == 0.0


@pytest.mark.parametrize("d", [0.0, 0.5, 1.5])
def test_auc_and_tpr_of_two_gaussians_match_their_closed_forms(d):
    """Scores N(d, 1) for members, N(0, 1) for non-members: AUC = Phi(d / sqrt 2) and the TPR
    at FPR f is 1 - Phi(PhiInv(1 - f) - d)."""
    rng = np.random.default_rng(1)
    member, nonmember = rng.normal(d, 1, 200_000), rng.normal(0, 1, 200_000)
    assert roc_auc(member, nonmember) == pytest.approx(norm.cdf(d / np.sqrt(2)), abs=0.003)
    assert tpr_at_fpr(member, nonmember, 0.01) == pytest.approx(norm.sf(norm.isf(0.01) - d), abs=0.005)


def test_tpr_at_fpr_on_hand_made_scores():
    nonmember = np.arange(100.0)  # 0..99: at 1% FPR one non-member may score above the threshold
    member = np.array([50.5, 98.0, 98.5, 99.5, 200.0])
    assert tpr_at_fpr(member, nonmember, 0.01) == 0.6  # threshold just above 98: 98.5, 99.5, 200
    assert tpr_at_fpr(member, nonmember, 0.0) == 0.4  # no false positive: above 99
    assert tpr_at_fpr(member, nonmember, 0.5) == 1.0  # above 49
    assert tpr_at_fpr(member, nonmember, 1.0) == 1.0
    assert tpr_at_fpr([1.0, 1.0], [1.0] * 100, 0.01) == 0.0  # ties cannot be split


def test_best_threshold_maximises_balanced_accuracy():
    member, nonmember = np.array([0.9, 0.8, 0.7, 0.2]), np.array([0.1, 0.3, 0.6, 0.75])
    t = best_threshold(member, nonmember)
    grid = np.linspace(-1, 2, 3001)
    assert balanced_accuracy(member, nonmember, t) == pytest.approx(max(balanced_accuracy(member, nonmember, g) for g in grid))
    assert t == 0.7  # t = 0.7 (TPR 3/4, TNR 3/4) and t = 0.8 (2/4, 4/4) tie at 3/4: the smaller wins
    assert best_threshold([1.0, 1.0], [1.0, 1.0]) == 1.0  # all members, all non-members: 1/2 either way


def test_roc_curve_runs_from_0_to_1_and_its_area_is_the_auc_with_ties():
    rng = np.random.default_rng(2)
    member, nonmember = rng.integers(0, 6, 45).astype(float), rng.integers(0, 4, 180).astype(float)
    member[:3] = -np.inf  # an infinite class threshold scores -inf
    fpr, tpr = roc_curve(member, nonmember)
    assert (fpr[0], tpr[0], fpr[-1], tpr[-1]) == (0, 0, 1, 1)
    assert (np.diff(fpr) >= 0).all() and (np.diff(tpr) >= 0).all()
    assert np.trapezoid(tpr, fpr) == pytest.approx(roc_auc(member, nonmember))


@pytest.mark.parametrize("kind", ["continuous", "ties", "binary"])
def test_the_vectorised_bootstrap_is_the_per_resample_computation_bit_for_bit(kind):
    from pipeline.attacks.membership import AttackScores

    rng = np.random.default_rng(0)
    a, b = {"continuous": (rng.normal(0.2, 1, 60), rng.normal(0, 1, 50)),
            "ties": (rng.integers(0, 9, 60) / 8, rng.integers(0, 9, 50) / 8),
            "binary": ((rng.random(60) < 0.6) * 1.0, (rng.random(50) < 0.5) * 1.0)}[kind]
    boot = mm.resamples(60, 50, 3, 200)
    scores = AttackScores("x", a, b, 0.5)
    runs = [mm._metrics(a[i], b[j], scores.guess_member[i], scores.guess_nonmember[j]) for i, j in boot]
    out = mm.attack_metrics(scores, boot)
    for key in runs[0]:
        lo, hi = np.quantile([r[key] for r in runs], [0.025, 0.975])
        assert (out[f"{key}_low"], out[f"{key}_high"]) == (pytest.approx(lo, abs=1e-15), pytest.approx(hi, abs=1e-15))
    rows, cols = np.array([i for i, _ in boot]), np.array([j for _, j in boot])
    assert np.array_equal(mm._auc_many(a, b, rows, cols), [mm.roc_auc(a[i], b[j]) for i, j in boot])
