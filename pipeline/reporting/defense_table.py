"""The defenses on one footing: one row per defense configuration, with its utility, the
model-inversion attack's success (BREP-MI, ``metrics/inversion.json``) and the membership
attacks' AUC (``metrics/membership.json``), both by configuration path (``pipeline.core.metrics``).

Rows: ``none`` (the undefended target), ``output_perturbation`` (the ACL 2025 defense),
``mid.beta_<b>`` (MID, Wang, Zhang and Jia), ``rp.sigma_<s>.n_<n>`` (Robust Privacy: the
smoothed target's majority vote). A cell is ``None`` where the attack cannot apply by construction (RP
releases labels only, so the attacks on confidence vectors have nothing to read) and absent
where that configuration was not run. Output perturbation never changes a label (checked by the membership stage), so its
BREP-MI success equals the undefended target's by construction, not by measurement.
"""
from __future__ import annotations

from ..attacks.membership import ATTACKS
from ..core.metrics import configurations, label
from .tables import ci_cell

FAMILIES = ("none", "output perturbation", "MID", "RP")


def family(row: str) -> str:
    return {"none": "none", "output_perturbation": "output perturbation"}.get(row) or \
        ("MID" if row.startswith("mid.") else "RP")


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
        row["membership_auc"] = {a: (None if r is None else r["auc"]) for a, r in m["attacks"].items()}
        applicable = [r for r in m["attacks"].values() if r is not None]
        row["best_auc"] = max(r["auc"] for r in applicable)
        row["best_tpr_at_1pct_fpr"] = max(r["tpr_at_1pct_fpr"] for r in applicable)
        if name == "output_perturbation":
            row.update({k: m[k] for k in ("fraction_perturbed", "mean_delta_l2", "labels_changed") if k in m})
    if "output_perturbation" in rows and "brepmi_asr" in rows.get("none", {}):  # same labels: same attack
        rows["output_perturbation"].update({k: v for k, v in rows["none"].items() if k.startswith("brepmi_")})
    for name, row in rows.items():
        row["family"] = family(name)

    def order(name):
        params = dict(part.split("=") for part in label(name).split(", ")[1:])
        return (FAMILIES.index(family(name)), float(params.get("N", 0)), float(params.get("β", params.get("σ", 0))))
    return {name: rows[name] for name in sorted(rows, key=order)}


def _cell(row: dict, attack: str) -> str:
    if attack not in row.get("membership_auc", {}):
        return "–"
    auc = row["membership_auc"][attack]
    return "n/a" if auc is None else f"{auc:.3f}"


def markdown(rows: dict[str, dict], target: dict) -> str:
    """The table as Markdown, with the undefended target's train/test gap and the legend."""
    pct = lambda v, d=0: "–" if v is None else f"{v:.{d}%}"  # noqa: E731
    lines = ["## Defenses x attacks (image target)\n",
             f"Undefended target: train accuracy {target['train_accuracy']:.2%}, test accuracy "
             f"{target['test_accuracy']:.2%} (gap {target['train_accuracy'] - target['test_accuracy']:.2%}).\n",
             "| Defense | Test accuracy | BREP-MI ASR | ASR, no attack | Lift | " + " | ".join(ATTACKS)
             + " | Best AUC | Best TPR at 1% FPR |",
             "|---|---|---|---|---|" + "---|" * len(ATTACKS) + "---|---|"]
    for name, row in rows.items():
        best = row.get("best_auc")
        chance = " (at chance)" if row.get("at_chance") else ""
        lines.append(f"| {label(name)} | {ci_cell(row, 'test_accuracy', lambda v: pct(v, 1))}{chance} | "
                     f"{ci_cell(row, 'brepmi_asr', pct)} | {ci_cell(row, 'brepmi_asr_no_attack', pct)} | "
                     f"{ci_cell(row, 'brepmi_lift', lambda v: f'{v:+.0%}')} | "
                     + " | ".join(_cell(row, a) for a in ATTACKS)
                     + f" | {'–' if best is None else f'{best:.3f}'} | {pct(row.get('best_tpr_at_1pct_fpr'), 1)} |")
    lines += ["", "Intervals: 95% (Wilson on rates, bootstrap over attacks on the lift). *ASR, no attack*: the "
              "evaluator on the attack's starts, the chance baseline of ASR; *lift*: ASR minus it. *At chance*: the "
              "test accuracy's interval reaches chance, so a low ASR there is no protection. Membership cells are "
              "ROC AUCs (0.5 = chance). n/a: not applicable by construction (RP releases "
              "a label only, so attacks reading confidence vectors have nothing to read). –: not run for this "
              "configuration. Output perturbation keeps every label, so its BREP-MI columns are the undefended ones "
              "by construction."]
    if "fraction_perturbed" in rows.get("output_perturbation", {}):
        op = rows["output_perturbation"]
        lines.append(f"Output perturbation changed {op['fraction_perturbed']:.1%} of the outputs, mean logit change "
                     f"(l2) {op['mean_delta_l2']:.3f}, labels changed {op['labels_changed']}.")
    return "\n".join(lines) + "\n"
