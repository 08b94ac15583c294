"""The defense x attack table: rows, applicability and order (``pipeline.defenses``)."""
import pytest

from pipeline.core.metrics import nest
from pipeline.reporting import defense_table as defenses
from pipeline.reporting.plots import tradeoff


def _attacks(auc, label_only, output=True):
    cell = lambda a: {"accuracy": a, "auc": a, "tpr_at_1pct_fpr": a / 10}  # noqa: E731
    out = {a: (cell(auc) if output else None) for a in defenses.ATTACKS[:-1]}
    return {**out, "label_only_noise": cell(label_only)}


def _inv(asr, accuracy, at_chance=0):
    ends = lambda k, v: {k: v, f"{k}_low": v - 0.1, f"{k}_high": v + 0.1}  # noqa: E731
    return {**ends("asr", asr), **ends("asr_no_attack", 0.3), **ends("lift", asr - 0.3),
            **ends("accuracy_test", accuracy), "at_chance": at_chance}


INVERSION = nest({"base": _inv(0.8, 0.93), "rp.sigma_0_3.n_10": _inv(0.4, 0.9), "rp.sigma_0_1.n_10": _inv(0.7, 0.92),
                  "mid.beta_0_01": _inv(0.5, 0.89, at_chance=1)})
MEMBERSHIP = nest({"none": {"test_accuracy": 0.93, "attacks": _attacks(0.67, 0.6)},
                   "output_perturbation": {"test_accuracy": 0.93, "attacks": _attacks(0.55, 0.6),
                                           "fraction_perturbed": 0.4, "mean_delta_l2": 1.5, "labels_changed": 0},
                   "mid.beta_0_01": {"test_accuracy": 0.88, "attacks": _attacks(0.58, 0.57)},
                   "rp.sigma_0_3.n_10": {"test_accuracy": 0.9, "attacks": _attacks(0.0, 0.52, output=False)}})


def test_rows_join_both_attacks_in_family_order_with_inapplicable_cells_marked():
    rows = defenses.table(INVERSION, MEMBERSHIP)
    assert list(rows) == ["none", "output_perturbation", "mid.beta_0_01", "rp.sigma_0_1.n_10", "rp.sigma_0_3.n_10"]
    assert rows["output_perturbation"]["brepmi_asr"] == 0.8  # labels unchanged: the undefended ASR
    rp = rows["rp.sigma_0_3.n_10"]
    assert rp["membership_auc"]["confidence"] is None and rp["best_auc"] == 0.52  # only the label-only attack counts
    assert rows["none"]["best_auc"] == 0.67 and rows["mid.beta_0_01"]["test_accuracy"] == 0.89  # inversion's figure
    assert "membership_auc" not in rows["rp.sigma_0_1.n_10"] and rows["rp.sigma_0_1.n_10"]["family"] == "RP"
    text = defenses.markdown(rows, {"train_accuracy": 1.0, "test_accuracy": 0.93})
    line = next(s for s in text.splitlines() if s.startswith("| RP, σ=0.3, N=10 |"))
    assert line.count("n/a") == 5 and "0.520" in line
    assert next(s for s in text.splitlines() if s.startswith("| RP, σ=0.1, N=10 |")).count("–") == 8
    assert "gap 7.00%" in text and "labels changed 0" in text
    assert "| 80% [70%, 90%] | 30% [20%, 40%] | +50% [+40%, +60%] |" in text.splitlines()[6]  # none: ASR, no attack, lift
    assert rows["output_perturbation"]["brepmi_lift"] == pytest.approx(0.5) and rows["output_perturbation"]["brepmi_asr_low"] == rows["none"]["brepmi_asr_low"]
    assert "(at chance)" in next(s for s in text.splitlines() if s.startswith("| MID, β=0.01 |"))


def test_tradeoff_figure_is_a_png(tmp_path):
    tradeoff(tmp_path / "t.png", defenses.table(INVERSION, MEMBERSHIP))
    assert (tmp_path / "t.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
