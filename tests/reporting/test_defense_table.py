"""The defense x attack table: rows, applicability and order (``pipeline.defenses``)."""
import pytest

from pipeline.core.metrics import nest
from pipeline.reporting import defense_table as defenses
from pipeline.reporting.plots import tradeoff


def _membership(test_accuracy, auc, attack, change=None, **extra):
    ends = {f"strongest_{k}{e}": v + d for k, v in (("auc", auc), ("tpr_at_1pct_fpr", auc / 10))
            for e, d in (("", 0), ("_low", -0.02), ("_high", 0.02))}
    out = {"test_accuracy": test_accuracy, "attacks": {}, "strongest": attack, **ends, **extra}
    if change is not None:
        out.update(auc_change=change, auc_change_low=change - 0.03, auc_change_high=change + 0.03)
    return out


def _inv(asr, accuracy, at_chance=0):
    ends = lambda k, v: {k: v, f"{k}_low": v - 0.1, f"{k}_high": v + 0.1}  # noqa: E731
    return {**ends("asr", asr), **ends("asr_no_attack", 0.3), **ends("lift", asr - 0.3),
            **ends("accuracy_test", accuracy), "at_chance": at_chance}


INVERSION = nest({"base": _inv(0.8, 0.93), "rp.sigma_0_3.n_10": _inv(0.4, 0.9), "rp.sigma_0_1.n_10": _inv(0.7, 0.92),
                  "mid.beta_0_01": _inv(0.5, 0.89, at_chance=1)})
MEMBERSHIP = nest({"none": _membership(0.93, 0.67, "lira_online"),
                   "output_perturbation": _membership(0.93, 0.55, "rmia", -0.12, fraction_perturbed=0.4,
                                                      mean_delta_l2=1.5, labels_changed=0),
                   "output_perturbation_aware": _membership(0.93, 0.66, "lira_online", -0.01),
                   "mid.beta_0_01": _membership(0.88, 0.58, "lira_offline", -0.09),
                   "rp.sigma_0_3.n_10": _membership(0.9, 0.52, "label_only_lira_online", -0.15)})


def test_rows_join_both_attacks_in_family_order_with_the_strongest_attack_and_its_change():
    rows = defenses.table(INVERSION, MEMBERSHIP)
    assert list(rows) == ["none", "output_perturbation", "output_perturbation_aware", "mid.beta_0_01",
                          "rp.sigma_0_1.n_10", "rp.sigma_0_3.n_10"]
    assert rows["output_perturbation"]["brepmi_asr"] == rows["output_perturbation_aware"]["brepmi_asr"] == 0.8
    rp = rows["rp.sigma_0_3.n_10"]
    assert rp["membership_attack"] == "label_only_lira_online" and rp["membership_auc"] == 0.52
    assert rp["membership_auc_low"] == pytest.approx(0.50) and rp["membership_auc_change"] == -0.15
    assert rows["none"]["membership_auc"] == 0.67 and rows["mid.beta_0_01"]["test_accuracy"] == 0.89  # inversion's
    assert "membership_auc" not in rows["rp.sigma_0_1.n_10"] and rows["rp.sigma_0_1.n_10"]["family"] == "RP"
    text = defenses.markdown(rows, {"train_accuracy": 1.0, "test_accuracy": 0.93})
    line = next(s for s in text.splitlines() if s.startswith("| RP, σ=0.3, N=10 |"))
    assert "label_only_lira_online | 0.520 [0.500, 0.540] | 5.2% [3.2%, 7.2%] | -0.150 [-0.180, -0.120] * |" in line
    aware = next(s for s in text.splitlines() if s.startswith("| output perturbation (mechanism-aware attacker) |"))
    assert aware.endswith("| -0.010 [-0.040, +0.020] |")  # not starred: the interval holds 0
    assert next(s for s in text.splitlines() if s.startswith("| RP, σ=0.1, N=10 |")).count("–") == 4
    assert "gap 7.00%" in text and "labels changed 0" in text
    assert "| 80% [70%, 90%] | 30% [20%, 40%] | +50% [+40%, +60%] |" in text.splitlines()[6]  # none: ASR, no attack, lift
    assert rows["output_perturbation"]["brepmi_lift"] == pytest.approx(0.5)
    assert "(at chance)" in next(s for s in text.splitlines() if s.startswith("| MID, β=0.01 |"))


def test_tradeoff_figure_is_a_png(tmp_path):
    tradeoff(tmp_path / "t.png", defenses.table(INVERSION, MEMBERSHIP))
    assert (tmp_path / "t.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
