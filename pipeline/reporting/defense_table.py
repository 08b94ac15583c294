"""The defenses on one footing: one row per defense configuration, with its utility, the
model-inversion attack's success (BREP-MI, ``metrics/inversion.json``) and the membership
attacker's strongest attack (chosen on its own shadow data: ``metrics/membership.json``), both
by configuration path (``pipeline.core.metrics``).

Rows: ``none`` (the undefended target), ``output_perturbation`` (the ACL 2025 defense; its
``_aware`` and ``_wrong_label`` rows are the same defense against the adaptive attackers),
``mid.beta_<b>`` (MID, Wang, Zhang and Jia), ``rp.sigma_<s>.n_<n>`` (Robust Privacy: the
smoothed target's majority vote). A cell is ``None`` where the attack cannot apply by construction (RP
releases labels only, so the attacks on confidence vectors have nothing to read) and absent
where that configuration was not run. Output perturbation never changes a label (checked by the membership stage), so its
BREP-MI success equals the undefended target's by construction, not by measurement.
"""
from __future__ import annotations

from ..core.metrics import configurations, label
from .tables import ci_cell

FAMILIES = ("none", "output perturbation", "MID", "RP")


def family(row: str) -> str:
    if row.startswith("output_perturbation"):
        return "output perturbation"
    return "none" if row == "none" else ("MID" if row.startswith("mid.") else "RP")


def table(inversion: dict, membership: dict) -> dict[str, dict]:
    """Rows in family order (none, output perturbation, MID by beta, RP by N then sigma), from
    the ``inversion`` and ``membership`` metrics trees."""
    rows: dict[str, dict] = {}
    for config, m in configurations(inversion, "asr").items():
        name = "none" if config == "base" else config
        rows.setdefault(name, {}).update(
            {f"brepmi_{k}{end}": m[k + end] for k in ("asr", "asr_no_attack", "lift") for end in ("", "_low", "_high")},
            test_accuracy=m["accuracy_test"], test_accuracy_low=m["accuracy_test_low"],
            test_accuracy_high=m["accuracy_test_high"], at_chance=m["at_chance"])
    for name, m in configurations(membership, "attacks").items():
        row = rows.setdefault(name, {})
        row.setdefault("test_accuracy", m["test_accuracy"])
        row["membership_attack"] = m["strongest"]
        row.update({f"membership_{k}{end}": m[f"strongest_{k}{end}"] for k in ("auc", "tpr_at_1pct_fpr")
                    for end in ("", "_low", "_high")})
        if "auc_change" in m:
            row.update({f"membership_{k}": m[k] for k in ("auc_change", "auc_change_low", "auc_change_high")})
        if name.startswith("output_perturbation"):
            row.update({k: m[k] for k in ("fraction_perturbed", "mean_delta_l2", "labels_changed") if k in m})
    for name in [n for n in rows if n.startswith("output_perturbation")]:  # same labels: same attack
        rows[name].update({k: v for k, v in rows.get("none", {}).items() if k.startswith("brepmi_")})
    for name, row in rows.items():
        row["family"] = family(name)

    def order(name):
        params = dict(part.split("=") for part in label(name).split(", ")[1:] if "=" in part)
        return (FAMILIES.index(family(name)), float(params.get("N", 0)), float(params.get("β", params.get("σ", 0))),
                name)
    return {name: rows[name] for name in sorted(rows, key=order)}


def markdown(rows: dict[str, dict], target: dict) -> str:
    """The table as Markdown, with the undefended target's train/test gap and the legend."""
    pct = lambda v, d=0: "–" if v is None else f"{v:.{d}%}"  # noqa: E731
    lines = ["## Defenses x attacks (image target)\n",
             f"Undefended target: train accuracy {target['train_accuracy']:.2%}, test accuracy "
             f"{target['test_accuracy']:.2%} (gap {target['train_accuracy'] - target['test_accuracy']:.2%}).\n",
             "| Defense | Test accuracy | BREP-MI ASR | ASR, no attack | Lift | Membership: strongest attack | AUC | "
             "TPR at 1% FPR | AUC change vs none |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, row in rows.items():
        chance = " (at chance)" if row.get("at_chance") else ""
        cell = lambda key, fmt: "–" if row.get(key) is None else ci_cell(row, key, fmt)  # noqa: E731
        change = cell("membership_auc_change", lambda v: f"{v:+.3f}")
        if row.get("membership_auc_change_low", 0) > 0 or row.get("membership_auc_change_high", 0) < 0:
            change += " *"
        lines.append(f"| {label(name)} | {ci_cell(row, 'test_accuracy', lambda v: pct(v, 1))}{chance} | "
                     f"{ci_cell(row, 'brepmi_asr', pct)} | {ci_cell(row, 'brepmi_asr_no_attack', pct)} | "
                     f"{ci_cell(row, 'brepmi_lift', lambda v: f'{v:+.0%}')} | {row.get('membership_attack', '–')} | "
                     f"{cell('membership_auc', lambda v: f'{v:.3f}')} | "
                     f"{cell('membership_tpr_at_1pct_fpr', lambda v: pct(v, 1))} | {change} |")
    lines += ["", "Intervals: 95% (Wilson on rates, bootstrap over attacks on the lift, stratified bootstrap over "
              "records on the membership columns). *ASR, no attack*: the evaluator on the attack's starts, the chance "
              "baseline of ASR; *lift*: ASR minus it. *At chance*: the test accuracy's interval reaches chance, so a "
              "low ASR there is no protection. *Strongest attack*: the attack with the highest AUC on the attacker's "
              "own pseudo-target (reference model 1), so the choice never looks at the target's members; its AUC "
              "(0.5 = chance) and TPR at 1% FPR (chance: 1%) on the target. *AUC change*: paired bootstrap against "
              "the undefended target's strongest attack; * marks an interval that excludes 0. Output perturbation "
              "keeps every label, so its BREP-MI columns are the undefended ones by construction."]
    if "fraction_perturbed" in rows.get("output_perturbation", {}):
        op = rows["output_perturbation"]
        lines.append(f"Output perturbation changed {op['fraction_perturbed']:.1%} of the outputs, mean logit change "
                     f"(l2) {op['mean_delta_l2']:.3f}, labels changed {op['labels_changed']}.")
    return "\n".join(lines) + "\n"
