"""The defenses on one footing: one row per defense configuration, with its utility, the
model-inversion attack's success (BREP-MI, ``metrics/inversion.json``) and the membership
attacker's strongest attack (chosen on its own shadow data: ``metrics/membership.json``), both
by configuration path (``pipeline.core.metrics``).

Rows: ``none`` (the undefended target), ``output_perturbation`` (the ACL 2025 defense; its
``_aware`` and ``_wrong_label`` rows are the same defense against the adaptive attackers),
``mid.beta_<b>`` (MID, Wang, Zhang and Jia), ``rp.sigma_<s>.n_<n>`` (Robust Privacy: the
smoothed target's majority vote), and the baselines ``dpsgd.epsilon_<e>`` (DP-SGD, Abadi et al.)
and ``rr.epsilon_<e>.fresh`` / ``.keyed`` (randomized response on the label). A cell is ``None`` where the attack cannot apply by construction (RP
releases labels only, so the attacks on confidence vectors have nothing to read) and absent
where that configuration was not run. Output perturbation never changes a label (checked by the membership stage), so its
BREP-MI success equals the undefended target's by construction, not by measurement.

The privacy-utility frontier: ``pareto`` marks the configurations no other one beats on both
axes (point estimates: test accuracy up, the attack's success down); ``tabular_table`` is the
same footing for the tabular task (utility against the attribute attacker's interval width).
"""
from __future__ import annotations

from ..core.metrics import configurations, label
from .paper import PAPER_FRONTIER
from .tables import ci_cell

FAMILIES = ("none", "output perturbation", "MID", "RP", "DP-SGD", "randomized response")
PREFIXES = {"output_perturbation": "output perturbation", "mid.": "MID", "rp.": "RP",
            "dpsgd.": "DP-SGD", "rr.": "randomized response"}


def family(row: str) -> str:
    return next((f for prefix, f in PREFIXES.items() if row.startswith(prefix)), "none")


def curve(name: str) -> str:
    """The frontier curve of a configuration: RP one per N (images) or per noise (tabular: fresh,
    keyed), randomized response one per randomness, output perturbation one per attacker, every
    other family one."""
    f = family(name)
    if f in ("RP", "randomized response") and name.count(".") == 2:
        return f"{f}, {label(name.split('.')[2])}"
    return label(name) if f == "output perturbation" else f


def pareto(points: dict[str, tuple[float, float]], lower_is_better: bool = True) -> set[str]:
    """The names whose (utility, attack) point no other point dominates: at least the utility
    and at most the attack's success (``lower_is_better=False``: at least the privacy measure),
    one of them strictly."""
    sign = 1 if lower_is_better else -1
    front = set()
    for name, (u, a) in points.items():
        if not any(u2 >= u and sign * a2 <= sign * a and (u2 > u or sign * a2 < sign * a)
                   for other, (u2, a2) in points.items() if other != name):
            front.add(name)
    return front


def _order(name: str) -> tuple:
    params = dict(part.split("=") for part in label(name).split(", ")[1:] if "=" in part)
    return (FAMILIES.index(family(name)), float(params.get("N", 0)),
            float(params.get("β", params.get("σ", params.get("ε", 0)))), name)


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
    for name in [n for n in rows if n.startswith("output_perturbation")]:  # same labels: same attack and accuracy
        rows[name].update({k: v for k, v in rows.get("none", {}).items()
                           if k.startswith(("brepmi_", "test_accuracy")) or k == "at_chance"})
    for name, row in rows.items():
        row.update(family=family(name), curve=curve(name))
    for key in ("brepmi_asr", "membership_auc"):
        points = {n: (r["test_accuracy"], r[key]) for n, r in rows.items() if r.get(key) is not None}
        front = pareto(points)
        for n in points:
            rows[n][f"pareto_{key.split('_')[0]}"] = int(n in front)
    return {name: rows[name] for name in sorted(rows, key=_order)}


def strongest_width(m: dict, modes=("fresh", "keyed")) -> tuple[str, dict]:
    """The attribute attacker that pins the victims down best on a served model: Scenario I
    (one query per value) or, where answers are random, the averaging attacker after the most
    repeats (its largest K) with the randomness it faces (``modes``: fresh, or keyed: it knows
    repeats are one answer)."""
    options = {"scenario_i": m}
    for mode in modes:
        if mode in m.get("repeat", {}):
            by_k = m["repeat"][mode]
            options[f"repeated_{mode}"] = by_k[max(by_k, key=lambda k: int(k.split("_")[1]))]
    name = min(options, key=lambda k: options[k]["width_median"])
    return name, options[name]


def tabular_table(attribute: dict, certify: dict) -> dict[str, dict]:
    """Rows of the tabular task: each served model's test accuracy (RP: its certified
    classifier's, from ``metrics/certify``) and the strongest attribute attacker's median
    interval width and truth coverage, with intervals, and its place on the frontier."""
    rows = {}
    for name, m in configurations(attribute, "queries").items():
        acc = certify[name] if name in certify else m
        prefix = "" if name in certify else "test_"
        # RP serves fresh or keyed noise: one row each (a single query is distributed alike under both)
        served = [(f"rp.{name}.{mode}", (mode,)) for mode in ("fresh", "keyed")] if name in certify else \
            [("none" if name == "base" else name, ("fresh", "keyed"))]
        for key, modes in served:
            attacker, r = strongest_width(m, modes)
            rows[key] = {
                "family": family(key), "curve": curve(key), "test_accuracy": acc[f"{prefix}accuracy"],
                "test_accuracy_low": acc[f"{prefix}accuracy_low"], "test_accuracy_high": acc[f"{prefix}accuracy_high"],
                "attribute_attack": attacker, **{f"attribute_{k}": r[k] for k in
                                                 ("width_median", "width_median_low", "width_median_high", "coverage",
                                                  "coverage_low", "coverage_high")}}
    front = pareto({n: (r["test_accuracy"], r["attribute_width_median"]) for n, r in rows.items()},
                   lower_is_better=False)
    for n, r in rows.items():
        r["pareto_attribute"] = int(n in front)
    return {name: rows[name] for name in sorted(rows, key=_order)}


def best_at(rows: dict[str, dict], key: str, level: float) -> dict[str, str]:
    """Per defense family, the most accurate configuration whose ``key`` (an attack's success)
    is at most ``level`` (point estimates): where each family's frontier crosses that level."""
    best: dict[str, str] = {}
    for name, row in rows.items():
        if row.get(key) is not None and row[key] <= level and row["family"] != "none":
            if row["family"] not in best or row["test_accuracy"] > rows[best[row["family"]]]["test_accuracy"]:
                best[row["family"]] = name
    return best


def markdown(rows: dict[str, dict], target: dict) -> str:
    """The table as Markdown, with the undefended target's train/test gap and the legend."""
    pct = lambda v, d=0: "–" if v is None else f"{v:.{d}%}"  # noqa: E731
    lines = ["## Image task: defenses x attacks\n",
             f"Undefended target: train accuracy {target['train_accuracy']:.2%}, test accuracy "
             f"{target['test_accuracy']:.2%} (gap {target['train_accuracy'] - target['test_accuracy']:.2%}).\n",
             "| Defense | Test accuracy | BREP-MI ASR | ASR, no attack | Lift | Membership: strongest attack | AUC | "
             "TPR at 1% FPR | AUC change vs none | Pareto (BREP-MI / membership) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
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
                     f"{cell('membership_tpr_at_1pct_fpr', lambda v: pct(v, 1))} | {change} | "
                     f"{_front(row, 'pareto_brepmi')} / {_front(row, 'pareto_membership')} |")
    lines += ["", "Intervals: 95% (Wilson on rates, bootstrap over attacks on the lift, stratified bootstrap over "
              "records on the membership columns). *ASR, no attack*: the evaluator on the attack's starts, the chance "
              "baseline of ASR; *lift*: ASR minus it. *At chance*: the test accuracy's interval reaches chance, so a "
              "low ASR there is no protection. *Strongest attack*: the attack with the highest AUC on the attacker's "
              "own pseudo-target (reference model 1), so the choice never looks at the target's members; its AUC "
              "(0.5 = chance) and TPR at 1% FPR (chance: 1%) on the target. *AUC change*: paired bootstrap against "
              "the undefended target's strongest attack; * marks an interval that excludes 0. Output perturbation "
              "keeps every label, so its BREP-MI columns are the undefended ones by construction. *Pareto*: no other "
              "row has at least its test accuracy and at most its attack success (point estimates). DP-SGD rows: "
              "the membership attacker's reference models are not private (docs/deviations.md)."]
    level = PAPER_FRONTIER["asr"]
    best = best_at(rows, "brepmi_asr", level)
    cells = [f"{f}: {label(n)}, {ci_cell(rows[n], 'test_accuracy', lambda v: pct(v, 1))} at ASR "
             f"{ci_cell(rows[n], 'brepmi_asr', pct)}" for f, n in sorted(best.items(), key=lambda x: FAMILIES.index(x[0]))]
    lines += ["", f"**At BREP-MI ASR <= {level:.0%}** (the revised paper's operating point: RP keeps "
              f"{PAPER_FRONTIER['rp_accuracy']:.1%} accuracy at {level:.0%} ASR, DP-SGD must drop to "
              f"{PAPER_FRONTIER['dpsgd_accuracy']:.1%}), the most accurate configuration of each family: "
              + ("; ".join(cells) if cells else "none reaches it") + ".", ""]
    if "fraction_perturbed" in rows.get("output_perturbation", {}):
        op = rows["output_perturbation"]
        lines.append(f"Output perturbation changed {op['fraction_perturbed']:.1%} of the outputs, mean logit change "
                     f"(l2) {op['mean_delta_l2']:.3f}, labels changed {op['labels_changed']}.")
    return "\n".join(lines) + "\n"


def _front(row: dict, key: str) -> str:
    return "–" if key not in row else ("yes" if row[key] else "no")


def tabular_markdown(rows: dict[str, dict], unit: str) -> str:
    """``tabular_table`` as Markdown, with the legend."""
    lines = ["## Tabular task: defenses x the attribute attacker\n",
             f"| Defense | Test accuracy | Strongest attacker | Median interval width ({unit}) | Truth inside | Pareto |",
             "|---|---|---|---|---|---|"]
    for name, row in rows.items():
        width = ci_cell(row, "attribute_width_median", lambda v: f"{v:.2f}")
        lines.append(f"| {label(name)} | {ci_cell(row, 'test_accuracy', lambda v: f'{v:.2%}')} | "
                     f"{row['attribute_attack'].replace('_', ' ')} | {width} | "
                     f"{ci_cell(row, 'attribute_coverage', lambda v: f'{v:.1%}')} | {_front(row, 'pareto_attribute')} |")
    lines += ["", "The attacker's interval: the values of the sensitive attribute its answers leave possible (wider = "
              "more private). *Strongest attacker*: the narrower of Scenario I (one query per value) and, where the "
              "answers are random, the averaging attacker after the most repeats, with the randomness it faces (a "
              "keyed service repeats one answer). Intervals: 95%, Wilson on accuracy (RP: the certified classifier's, "
              "abstentions counted wrong), bootstrap over victims on the width, Clopper-Pearson on the coverage. "
              "*Pareto*: no other row has at least its accuracy and at least its width (point estimates)."]
    return "\n".join(lines) + "\n"
