"""Membership-inference attacks on an overfit toy target (high AUC) and on a model that releases
the same thing for every input (AUC exactly 1/2)."""
import numpy as np
import pytest

from pipeline.attacks.membership import (METRIC_ATTACKS, MetricAttack, NeuralAttack, NoiseRobustnessAttack, Outputs,
                                         run_output_attacks, signal)
from pipeline.attacks.membership_metrics import attack_metrics
from pipeline.core.errors import PipelineError
from tests.helpers import CLASSES, logits_of, one_thread, outputs, toy


def test_metric_signals_by_hand():
    p = np.array([[0.7, 0.2, 0.1], [0.2, 0.5, 0.3]])
    y = np.array([0, 2])
    assert np.array_equal(signal("correctness", p, y), [1.0, 0.0])
    assert np.allclose(signal("confidence", p, y), [0.7, 0.3])
    assert np.allclose(signal("entropy", p, y), (p * np.log(p)).sum(1))
    mentr0 = -(0.3 * np.log(0.7)) - 0.2 * np.log(0.8) - 0.1 * np.log(0.9)
    mentr1 = -(0.7 * np.log(0.3)) - 0.2 * np.log(0.8) - 0.5 * np.log(0.5)
    assert np.allclose(signal("modified_entropy", p, y), [-mentr0, -mentr1])
    one_hot = np.array([[1.0, 0.0, 0.0]])  # finite everywhere, largest possible value
    assert np.isfinite(signal("modified_entropy", one_hot, np.array([0]))).all()
    assert signal("modified_entropy", one_hot, np.array([1]))[0] < -60  # confidently wrong: far from member


def test_thresholds_are_per_class():
    """Class 0's members have confidence 0.95 against 0.85 outside; class 1's 0.6 against 0.4:
    one global threshold cannot separate both, per-class thresholds separate them perfectly. The
    AUC is the raw statistic's: class 1's members lose to class 0's non-members, (200 + 100) / 400."""
    def probs(conf, y):
        p = np.full((len(conf), 2), 0.0)
        p[np.arange(len(y)), y] = conf
        p[np.arange(len(y)), 1 - y] = 1 - np.asarray(conf)
        return p
    y = np.array([0] * 10 + [1] * 10)
    conf_in, conf_out = np.r_[[0.95] * 10, [0.6] * 10], np.r_[[0.85] * 10, [0.4] * 10]
    shadow = Outputs(probs(conf_in, y), y, probs(conf_out, y), y)
    attack = MetricAttack("confidence").fit(shadow)
    assert 0.85 < attack.thresholds[0] <= 0.95 and 0.4 < attack.thresholds[1] <= 0.6
    result = attack_metrics(attack.run(shadow))
    assert result["accuracy"] == 1.0 and result["auc"] == 0.75 and result["tpr_at_1pct_fpr"] == 0.5


def test_outputs_refuse_logits_and_bad_labels():
    p = np.full((3, 2), 0.5)
    with pytest.raises(PipelineError, match="probs_in"):
        Outputs(np.array([[2.0, -1.0]]), np.array([0]), p, np.zeros(3, int))
    with pytest.raises(PipelineError, match="labels_out"):
        Outputs(p, np.zeros(3, int), p, np.array([0, 1, 2]))


@pytest.fixture(scope="module")
def overfit():
    data, models = toy()
    return data, models, outputs(data, models["shadow"], "shadow"), outputs(data, models["target"], "target")


def test_every_attack_has_signal_on_the_overfit_target(overfit):
    data, models, shadow, target = overfit
    with one_thread():
        results = {name: attack_metrics(s) for name, s in run_output_attacks(shadow, target).items()}
        label_only = NoiseRobustnessAttack(queries=30).fit(lambda x: logits_of(models["shadow"], x).argmax(1),
                                                           *data["shadow_in"], *data["shadow_out"])
        results["label_only"] = attack_metrics(label_only.run(lambda x: logits_of(models["target"], x).argmax(1),
                                                        *data["target_in"], *data["target_out"]))
    # train accuracy 1, test accuracy about 0.65: correctness alone reaches (1 + 1 - 0.65) / 2
    test_acc = (target.probs_out.argmax(1) == target.labels_out).mean()
    assert results["correctness"]["auc"] == pytest.approx((1 + 1 - test_acc) / 2)
    for name, r in results.items():
        assert r["auc"] > 0.62 and r["accuracy"] > 0.6, (name, r)
    assert results["confidence"]["auc"] > 0.72 and results["modified_entropy"]["auc"] > 0.72


def test_every_attack_is_blind_on_a_constant_model(overfit):
    """A model that releases the same vector for every input: members and non-members have the
    same label counts, so every score has the same distribution in both: AUC exactly 1/2."""
    data, _, shadow, target = overfit
    const = np.array([0.5, 0.2, 0.1, 0.1, 0.1])

    def constant(out):
        return Outputs(np.tile(const, (len(out.labels_in), 1)), out.labels_in,
                       np.tile(const, (len(out.labels_out), 1)), out.labels_out)
    with one_thread():
        scores = run_output_attacks(constant(shadow), constant(target))
        oracle = lambda x: np.zeros(len(x), dtype=int)  # noqa: E731
        label_only = NoiseRobustnessAttack(queries=5).fit(oracle, *data["shadow_in"], *data["shadow_out"])
        scores["label_only"] = label_only.run(oracle, *data["target_in"], *data["target_out"])
    assert set(scores) == set(METRIC_ATTACKS) | {"neural", "label_only"}
    for name, s in scores.items():
        r = attack_metrics(s)
        assert r["auc"] == 0.5 and r["tpr_at_1pct_fpr"] <= 0.25, (name, r)  # label 0 has 1/5 of the records
        assert abs(r["accuracy"] - 0.5) < 1e-12, (name, r)


def test_attacks_refuse_to_run_unfitted_or_on_other_class_counts(overfit):
    _, _, shadow, target = overfit
    with pytest.raises(ValueError, match="fit"):
        MetricAttack("confidence").run(target)
    with pytest.raises(ValueError, match="fit"):
        NeuralAttack().run(target)
    two = Outputs(np.full((2, 2), 0.5), np.array([0, 1]), np.full((2, 2), 0.5), np.array([0, 1]))
    with pytest.raises(ValueError, match="classes"):
        MetricAttack("entropy").fit(two).run(target)
    assert CLASSES == target.probs_in.shape[1]


def test_noise_robustness_clips_queries_to_the_image_range_and_scores_misclassified_records_zero():
    """Choquette-Choo et al.'s reference: noisy copies stay images, a wrongly labelled record scores 0."""
    seen = []

    def oracle(x):
        seen.append((x.min(), x.max()))
        return (x.reshape(len(x), -1).mean(1) > 0.5).astype(int)  # label 1 iff the image is bright
    x = np.stack([np.full((1, 4, 4), v, np.float32) for v in (0.02, 0.98, 0.9, 0.55)])
    y = np.array([0, 1, 0, 1])  # the third is misclassified
    attack = NoiseRobustnessAttack(sigmas=(0.3,), queries=20, seed=0)
    attack.fit(oracle, x[:2], y[:2], x[2:], y[2:])
    s = attack.run(oracle, x[:2], y[:2], x[2:], y[2:])
    assert min(lo for lo, _ in seen) >= 0.0 and max(hi for _, hi in seen) <= 1.0
    assert s.nonmember[0] == 0.0 and s.member[0] == s.member[1] == 1.0 and 0 < s.nonmember[1] < 1
