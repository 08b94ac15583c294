"""The defense x attack table: rows, applicability and order (``pipeline.defenses``)."""
import pytest

from pipeline.core.metrics import nest
from pipeline.reporting import defense_table as defenses
from pipeline.reporting.plots import frontier


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
    assert aware.endswith("| -0.010 [-0.040, +0.020] | yes / no |")  # not starred: the interval holds 0
    assert next(s for s in text.splitlines() if s.startswith("| RP, σ=0.1, N=10 |")).count("–") == 5
    assert "gap 7.00%" in text and "labels changed 0" in text
    assert "| 80% [70%, 90%] | 30% [20%, 40%] | +50% [+40%, +60%] |" in text.splitlines()[6]  # none: ASR, no attack, lift
    assert rows["output_perturbation"]["brepmi_lift"] == pytest.approx(0.5)
    assert "(at chance)" in next(s for s in text.splitlines() if s.startswith("| MID, β=0.01 |"))


def test_frontier_figure_is_a_png(tmp_path):
    frontier(tmp_path / "t.png", defenses.table(INVERSION, MEMBERSHIP),
             [("brepmi_asr", "ASR", None, True, "inversion"), ("membership_auc", "AUC", 0.5, True, "membership")], "t")
    assert (tmp_path / "t.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_pareto_front_keeps_exactly_the_undominated_points():
    points = {"a": (0.9, 0.5), "b": (0.8, 0.2), "c": (0.8, 0.3), "d": (0.95, 0.6), "e": (0.7, 0.2), "f": (0.9, 0.5)}
    # c is beaten by b (same utility, lower attack); e by b (more utility, same attack); a and f tie: both stay
    assert defenses.pareto(points) == {"a", "b", "d", "f"}
    assert defenses.pareto({k: (u, -a) for k, (u, a) in points.items()}, lower_is_better=False) == {"a", "b", "d", "f"}
    rows = defenses.table(INVERSION, MEMBERSHIP)
    # BREP-MI: none (0.93, 0.8) and rp sigma 0.1 (0.92, 0.7) and rp sigma 0.3 (0.9, 0.4) are undominated; MID is not
    assert {n for n, r in rows.items() if r.get("pareto_brepmi")} == {"none", "output_perturbation",
                                                                     "output_perturbation_aware",
                                                                     "rp.sigma_0_1.n_10", "rp.sigma_0_3.n_10"}


def test_the_tabular_rows_take_rp_utility_from_certify_and_the_narrowest_informed_attacker():
    interval = lambda w, c: {"width_median": w, "width_median_low": w - 1, "width_median_high": w + 1,  # noqa: E731
                             "coverage": c, "coverage_low": c - 0.05, "coverage_high": min(1.0, c + 0.05)}
    acc = lambda a: {"test_accuracy": a, "test_accuracy_low": a - 0.01, "test_accuracy_high": a + 0.01}  # noqa: E731
    attribute = {"victims": 30, "base": {"queries": 9, **interval(21.0, 1.0), **acc(1.0)},
                 "sigma_1": {"queries": 9, **interval(25.0, 0.95),
                             "repeat": {"fresh": {"k_10": interval(4.0, 0.9)}, "keyed": {"k_10": interval(25.0, 1.0)},
                                        "keyed_naive": {"k_10": interval(1.0, 0.1)}}},
                 "rr.epsilon_1.keyed": {"queries": 9, **interval(37.0, 1.0), **acc(0.73),
                                        "repeat": {"keyed": {"k_10": interval(37.0, 1.0)},
                                                   "keyed_naive": {"k_10": interval(2.0, 0.0)}}}}
    certify = {"sigma_1": {"accuracy": 0.96, "accuracy_low": 0.95, "accuracy_high": 0.97}}
    rows = defenses.tabular_table(attribute, certify)
    assert list(rows) == ["none", "rp.sigma_1.fresh", "rp.sigma_1.keyed", "rr.epsilon_1.keyed"]
    fresh, keyed = rows["rp.sigma_1.fresh"], rows["rp.sigma_1.keyed"]
    assert fresh["test_accuracy"] == keyed["test_accuracy"] == 0.96 and fresh["attribute_attack"] == "repeated_fresh"
    assert fresh["attribute_width_median"] == 4.0 and fresh["curve"] == "RP, fresh"
    # against keyed noise the repeats are one answer: Scenario I stays the strongest; the naive reading is no attack
    assert keyed["attribute_attack"] == "scenario_i" and keyed["attribute_width_median"] == 25.0
    assert rows["rr.epsilon_1.keyed"]["attribute_attack"] == "scenario_i"
    assert {n for n, r in rows.items() if r["pareto_attribute"]} == {"none", "rp.sigma_1.keyed", "rr.epsilon_1.keyed"}
    text = defenses.tabular_markdown(rows, "bmi")
    assert "| RP, σ=1, fresh | 96.00% [95.00%, 97.00%] | repeated fresh | 4.00 [3.00, 5.00] |" in text


def test_the_paper_comparison_takes_each_familys_most_accurate_configuration_under_the_asr_level():
    rows = defenses.table(INVERSION, MEMBERSHIP)
    assert defenses.best_at(rows, "brepmi_asr", 0.5) == {"MID": "mid.beta_0_01", "RP": "rp.sigma_0_3.n_10"}
    assert defenses.best_at(rows, "brepmi_asr", 0.75) == {"MID": "mid.beta_0_01", "RP": "rp.sigma_0_1.n_10"}
    assert defenses.best_at(rows, "brepmi_asr", 0.1) == {}
    text = defenses.markdown(rows, {"train_accuracy": 1.0, "test_accuracy": 0.93})
    assert "**At BREP-MI ASR <= 21%**" in text and "none reaches it" in text
