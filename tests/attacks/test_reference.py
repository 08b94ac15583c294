"""LiRA and RMIA (``pipeline.attacks.reference``) against analytic answers, and on an overfit toy
with a planted memorised subset, where LiRA must beat the metric attacks at low FPR."""
import numpy as np
import pytest
from scipy.stats import norm

from pipeline.attacks.membership import AttackScores, MetricAttack, Outputs
from pipeline.attacks.membership_metrics import attack_metrics, paired_change, resamples, roc_auc, tpr_at_fpr
from pipeline.attacks.reference import inclusion, lira, logit_confidence, logit_rate, rmia
from tests.helpers import one_thread, overfit_mlp, softmax, logits_of


def test_inclusion_puts_every_record_in_exactly_half_the_models_and_is_seeded():
    keep = inclusion(16, 500, seed=3)
    assert keep.shape == (16, 500) and (keep.sum(0) == 8).all()
    assert abs(keep.sum(1).mean() - 250) < 1e-9 and keep.sum(1).std() > 0  # random halves, not one fixed split
    assert np.array_equal(keep, inclusion(16, 500, seed=3)) and not np.array_equal(keep, inclusion(16, 500, seed=4))


def test_logit_confidence_and_logit_rate_by_hand():
    p = np.array([[0.9, 0.05, 0.05], [0.2, 0.3, 0.5]])
    assert np.allclose(logit_confidence(p, np.array([0, 2])), [np.log(9), 0.0])
    assert np.isfinite(logit_confidence(np.array([[1.0, 0.0]]), np.array([0]))).all()
    assert np.allclose(logit_rate(np.array([0.0, 0.5, 1.0]), 10), [np.log(0.5 / 10.5), 0.0, np.log(10.5 / 0.5)])


def _simulated(records=4000, models=64, shift=1.0, spread=3.0, seed=0):
    """Record i's signal is N(mu_i + shift * in, 1), with per-record difficulties mu_i ~ N(0, spread^2)."""
    rng = np.random.default_rng(seed)
    mu = rng.normal(0, spread, records)
    keep = inclusion(models + 1, records, seed)
    signal = mu + shift * keep + rng.normal(size=keep.shape)
    return signal, keep


def test_lira_reaches_the_per_record_likelihood_ratio_auc_where_the_raw_signal_cannot():
    """With per-record means known, the optimal test has AUC Phi(shift / sqrt 2) = 0.760; the raw
    signal mixes every record's difficulty in: Phi(shift / sqrt(2 (1 + spread^2))) = 0.589."""
    signal, keep = _simulated()
    target, member = signal[0], keep[0]
    scores = lira(target, signal[1:], keep[1:])
    for name in ("lira_online", "lira_offline"):
        assert roc_auc(scores[name][member], scores[name][~member]) == pytest.approx(norm.cdf(1 / np.sqrt(2)), abs=0.02)
    assert roc_auc(target[member], target[~member]) == pytest.approx(norm.cdf(1 / np.sqrt(20)), abs=0.025)
    per_record = lira(target, signal[1:], keep[1:], variance="per_record")["lira_online"]
    assert roc_auc(per_record[member], per_record[~member]) > 0.72
    with pytest.raises(ValueError, match="variance"):
        lira(target, signal[1:], keep[1:], variance="pooled")


def test_lira_offline_is_the_one_sided_test_against_the_out_fit():
    ref = np.array([[0.0, 5.0], [2.0, 7.0], [10.0, 1.0], [12.0, 3.0]])
    ref_in = np.array([[False, False], [False, False], [True, True], [True, True]])
    s = lira(np.array([1.0, 6.0]), ref, ref_in)
    sd_out = np.sqrt(np.mean([1.0, 1.0, 1.0, 1.0]))  # deviations from the out means 1 and 6
    assert np.allclose(s["lira_offline"], -norm.logsf([1.0, 6.0], [1.0, 6.0], sd_out))
    assert s["lira_online"][0] < 0  # at the out mean, far from the in mean 11: non-member


def test_rmia_counts_the_population_samples_the_record_dominates():
    """With a = 1 the offline p(z) is p_out(z): z ratios 1, 1.5 and 3. Online, p(x) is the reference
    mean 0.3: x's ratio 2 dominates two of them at gamma 1, one at gamma 1.5 (2 / 1.5 = 1.33).
    Offline, p(x) is the out model's: 0.2 (ratio 3: all three) or 0.4 (ratio 1.5: two)."""
    ref_x, ref_z = np.array([[0.2], [0.4]]), np.array([[0.5, 0.2, 0.1], [0.5, 0.2, 0.1]])
    target_x, target_z = np.array([0.6]), np.array([0.5, 0.3, 0.3])
    assert rmia(target_x, ref_x, target_z, ref_z, a=1.0)[0] == pytest.approx(2 / 3)
    assert rmia(target_x, ref_x, target_z, ref_z, a=1.0, gamma=1.5)[0] == pytest.approx(1 / 3)
    assert rmia(target_x, ref_x, target_z, ref_z, a=1.0, online=False, ref_in=np.array([[False], [True]]))[0] == 1.0
    assert rmia(target_x, ref_x, target_z, ref_z, a=1.0, online=False,
                ref_in=np.array([[True], [False]]))[0] == pytest.approx(2 / 3)
    half = rmia(target_x, ref_x, target_z, ref_z, a=0.5)  # p(z) = 0.75 p_out(z) + 0.25: ratios 0.8, 0.75, 0.92
    assert half[0] == 1.0


def test_bootstrap_intervals_cover_the_analytic_auc_and_a_paired_change_of_an_attack_with_itself_is_zero():
    rng = np.random.default_rng(5)
    member, nonmember = rng.normal(1.0, 1, 400), rng.normal(0, 1, 400)
    s = AttackScores("x", member, nonmember, 0.5)
    boot = resamples(400, 400, seed=1, reps=300)
    m = attack_metrics(s, boot)
    assert m["auc_low"] < norm.cdf(1 / np.sqrt(2)) < m["auc_high"] and 0.04 < m["auc_high"] - m["auc_low"] < 0.1
    assert m["accuracy"] == pytest.approx(0.5 * ((member >= 0.5).mean() + (nonmember < 0.5).mean()))
    assert m["tpr_at_0_1pct_fpr_low"] <= m["tpr_at_0_1pct_fpr"] <= m["tpr_at_0_1pct_fpr_high"]
    same = paired_change(s, s, boot)
    assert same == {"auc_change": 0.0, "auc_change_low": 0.0, "auc_change_high": 0.0}
    worse = AttackScores("y", member - 0.5, nonmember, 0.5)
    change = paired_change(s, worse, boot)
    assert change["auc_change_high"] < 0 and (change["auc_change_high"] - change["auc_change_low"]) < \
        attack_metrics(worse, boot)["auc_high"] - attack_metrics(worse, boot)["auc_low"]  # pairing narrows it


def test_metric_attack_auc_is_that_of_the_raw_statistic_with_class_thresholds_only_in_the_guesses():
    rng = np.random.default_rng(2)
    y_in, y_out = rng.integers(0, 3, 300), rng.integers(0, 3, 300)

    def probs(y, boost):
        p = rng.dirichlet(np.ones(3), len(y))
        p[np.arange(len(y)), y] += boost * (1 + y)  # the classes differ in confidence
        return p / p.sum(1, keepdims=True)
    shadow = Outputs(probs(y_in, 1.0), y_in, probs(y_out, 0.5), y_out)
    target = Outputs(probs(y_in, 1.0), y_in, probs(y_out, 0.5), y_out)
    s = MetricAttack("confidence").fit(shadow).run(target)
    raw_in = target.probs_in[np.arange(300), y_in]
    raw_out = target.probs_out[np.arange(300), y_out]
    assert attack_metrics(s)["auc"] == roc_auc(raw_in, raw_out)
    assert not np.array_equal(s.guess_member, raw_in >= np.median(raw_in))  # per-class thresholds decide


@pytest.fixture(scope="module")
def planted():
    """An overfit MLP on 5 separated Gaussian classes; 40 of the 400 records carry a wrong label,
    which a model fits only by memorising them. Target and 16 reference models on random halves."""
    rng = np.random.default_rng(0)
    centres = rng.normal(scale=4.0, size=(5, 10))
    y = np.repeat(np.arange(5), 80)
    x = (centres[y] + rng.normal(size=(400, 10))).astype(np.float32)
    odd = rng.permutation(400)[:40]
    y = y.copy()
    y[odd] = (y[odd] + rng.integers(1, 5, 40)) % 5
    keep = inclusion(17, 400, seed=1)
    with one_thread():
        conf = [softmax(logits_of(overfit_mlp(x[k], y[k], seed=m, epochs=300), x)) for m, k in enumerate(keep)]
    return x, y, keep, np.array(conf), np.isin(np.arange(400), odd)


def test_lira_beats_the_metric_attacks_at_low_fpr_on_a_memorised_subset(planted):
    x, y, keep, probs, odd = planted
    member = keep[0]
    phi = np.array([logit_confidence(p, y) for p in probs])
    scores = lira(phi[0], phi[1:], keep[1:])
    out = Outputs(probs[0][member], y[member], probs[0][~member], y[~member])
    at = 0.02  # 4 of the 200 non-members
    metric = max(tpr_at_fpr(s.member, s.nonmember, at) for s in
                 (MetricAttack(n).fit(out).run(out) for n in ("confidence", "modified_entropy")))
    for name in ("lira_online", "lira_offline"):
        s = scores[name]
        assert tpr_at_fpr(s[member], s[~member], at) > metric + 0.05, (name, metric)
    # what LiRA finds at low FPR are the memorised records
    top = np.argsort(-scores["lira_online"])[:15]
    assert odd[top].mean() > 0.5 and member[top].mean() > 0.7  # 10% of the records are memorised
