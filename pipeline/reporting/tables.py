"""The result tables the report stages write (Markdown beside the paper's numbers, and the JSON
of Table 1): Table 1, APE, the Scenario I attack, model inversion and membership inference."""
from __future__ import annotations

from ..core.metrics import configurations, label, token
from .paper import PAPER_EXPANSION, PAPER_INTERVAL, PAPER_INVERSION, PAPER_TABLE1


def _pct(v) -> str:
    return "-" if v is None else f"{v:.2%}"


def _num(v, fmt=".2f") -> str:
    return "-" if v is None else format(v, fmt)


def ci_cell(r: dict, key: str, fmt) -> str:
    """``value [low, high]`` from a row's ``key``, ``key_low``, ``key_high`` (``fmt``: a formatter)."""
    if r.get(key) is None:
        return "-"
    if f"{key}_low" not in r:
        return fmt(r[key])
    return f"{fmt(r[key])} [{fmt(r[key + '_low'])}, {fmt(r[key + '_high'])}]"


def table1(base: dict, rows: list[dict], unit: str) -> dict:
    """Table 1 by configuration (``base``, ``sigma_1``, ...), as ``dvc exp show`` displays it;
    ``base``: the train stage's test accuracy with its interval; ``rows``: the certify stage's
    summaries."""
    table = {"base": base}
    keys = ["accuracy", "abstention_rate", "avg_radius", f"avg_radius_{unit}"]
    for m in sorted(rows, key=lambda m: m["sigma"]):
        table[token("sigma", m["sigma"])] = {k: m[k] for k in keys + [f"{k}_{e}" for k in keys for e in ("low", "high")]
                                             + ["radius_cap", "at_cap_share"]}
    return table


def table1_markdown(table: dict, unit: str) -> str:
    """Table 1 with 95% intervals: Clopper-Pearson on the rates, bootstrap over test inputs on Avg. R."""
    lines = [f"| Model | Accuracy | Abstention | Avg. R | Avg. R ({unit}) | Largest possible R, σ·Φ⁻¹(α^(1/N)) | Positives at it | "
             "Paper: acc. / abst. / Avg. R |", "|---|---|---|---|---|---|---|---|"]
    for name, r in table.items():
        paper = PAPER_TABLE1.get(name)
        paper = "n/a" if paper is None else " / ".join([_pct(paper[0]), _pct(paper[1]), _num(paper[2])])
        model = "Base" if name == "base" else f"Smoothed, {label(name)}"
        lines.append(f"| {model} | {ci_cell(r, 'accuracy', _pct)} | {ci_cell(r, 'abstention_rate', _pct)} | "
                     f"{ci_cell(r, 'avg_radius', lambda v: _num(v, '.3f'))} | {ci_cell(r, f'avg_radius_{unit}', _num)} | "
                     f"{_num(r.get('radius_cap'), '.3f')} | {_pct(r.get('at_cap_share'))} | {paper} |")
    return "\n".join(lines) + "\n"


def ape_markdown(ape: dict, unit: str) -> str:
    """One row per APE configuration (``ape``: records by configuration path, in order), with
    bootstrap intervals over records; then the split of the positives below B by b*."""
    lines = [f"| Classifier | Expansion ({unit}) | Robust expansion | Median certified expansion | "
             "Positives below B | Abstention | Paper expansion |", "|---|---|---|---|---|---|---|"]
    for name, m in ape.items():
        lines.append(f"| {label(name)} | {ci_cell(m, 'expansion', _num)} | {ci_cell(m, 'expansion_robust', _num)} | "
                     f"{ci_cell(m, 'certified_expansion_median', _num)} | {m['positives_below_threshold']} | "
                     f"{m['abstention_rate']:.2%} | {_num(PAPER_EXPANSION.get(name))} |")
    lines += ["", "What each positive below B is, on the records whose boundary b* was located (stage boundary): "
              "above b* the smoothed classifier itself says 1 (an effect of smoothing); below b* it does not, so the "
              "certificate is wrong, which CERTIFY allows with probability alpha per input.\n",
              "| Classifier | Records | Positives below B | Between b* and B | Below b* (failures) | Expected failures "
              "at most | Inside b*'s interval |", "|---|---|---|---|---|---|---|"]
    for name, m in ape.items():
        if "truth" in m:
            t = m["truth"]
            lines.append(f"| {label(name)} | {t['records']} | {t['positives_below_threshold']} | {t['smoothing_effect']} | "
                         f"{t['certification_failures']} | {t['failure_bound']:.1f} | {t['undecided']} |")
    return "\n".join(lines) + "\n"


def boundary_markdown(m: dict, unit: str) -> str:
    """b* per sigma (``metrics/boundary.json``) and what Avg. R is made of on the sampled records."""
    sigmas = [k for k in m if k.startswith("sigma_")]
    lines = [f"## The smoothed classifier's boundary b* ({m['records']} records of D_t,1, B = {m['threshold']:g})\n",
             f"| Noise | Located | Draws | b* median (5%-95% over records) | B - b* median | b* interval half-width "
             f"(median / max) | Avg. R ({unit}) | Distance to b* ({unit}) | Largest possible R | Positives at it |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for name in sigmas:
        r = m[name]
        if not r["located"]:
            lines.append(f"| {label(name)} | 0 | {r['draws']:,} | not located in the searched range | - | - | - | - | - | - |")
            continue
        avg = "-" if f"avg_radius_{unit}" not in r else ci_cell(r, f"avg_radius_{unit}", _num)
        dist = "-" if f"distance_to_b_star_{unit}" not in r else ci_cell(r, f"distance_to_b_star_{unit}", _num)
        lines.append(f"| {label(name)} | {r['located']} | {r['draws']:,} | {r['b_star_median']:.3f} "
                     f"({r['b_star_q05']:.3f}-{r['b_star_q95']:.3f}) | "
                     f"{ci_cell(r, 'threshold_minus_b_star_median', lambda v: format(v, '+.3f'))} | "
                     f"{r['halfwidth_median']:.3f} / {r['halfwidth_max']:.3f} | {avg} | {dist} | "
                     f"{_num(r.get(f'radius_cap_{unit}'))} | {_pct(r.get('at_cap_share'))} |")
    if m["base"]["located"]:
        lines.append(f"\nThe base classifier itself flips at {m['base']['b_star_median']:.3f} {unit} (median over the "
                     f"{m['base']['located']} records where it flips inside the searched range).")
    return "\n".join(lines) + "\n"


def _change(r: dict, key: str) -> str:
    """A paired difference with its interval, starred when the interval excludes 0."""
    if key not in r:
        return ""
    star = " *" if r[f"{key}_low"] > 0 or r[f"{key}_high"] < 0 else ""
    return ci_cell(r, key, lambda v: f"{v:+.0%}") + star


def inversion_markdown(metrics: dict, held_out: dict, meta: dict, target: dict, evaluator: dict) -> str:
    """Section 6's tables, one row per configuration of ``metrics/inversion.json``: what the
    attack recovers (ASR beside its no-attack baseline, the lift, the recovery metrics of
    reconstructions and of starts, and what the held-out private images score), then utility
    and how the attacks ended, then which ASR differences are significant."""
    pct = lambda v: f"{v:.0%}"  # noqa: E731
    first = next(iter(metrics.values()))
    top5 = "asr_top5" in first
    lines = [f"## Model inversion (BREP-MI, {meta['source']}, {len(meta['classes'])} private classes, "
             f"{first['attacks']} attacks per configuration)\n",
             f"Target test accuracy {target['test_accuracy']:.2%}, evaluator test accuracy "
             f"{evaluator['test_accuracy']:.2%}. 95% intervals: Wilson on rates, percentile bootstrap over attacks "
             "on the lift and the mean distances. *No attack*: the same evaluator on the attack's start (a prior "
             "sample the defended model labels as the class), the chance baseline of ASR. *Nearer private*: share "
             "of images nearer (pixel l2) a private training image of the class than any public image. KNN and "
             "feature distances: the evaluator's feature space (lower = closer to the private class). "
             "Reconstruction / start.\n",
             "| Model | ASR | ASR, no attack | Lift | " + ("Top-5 ASR | " if top5 else "")
             + "Nearer private | KNN distance | Feature distance | Paper: ASR / accuracy |",
             "|---|---|---|---|" + ("---|" if top5 else "") + "---|---|---|---|"]
    for config, r in metrics.items():
        lines.append(f"| {label(config)}{' (at chance)' if r['at_chance'] else ''} | {ci_cell(r, 'asr', pct)} | "
                     f"{ci_cell(r, 'asr_no_attack', pct)} | {ci_cell(r, 'lift', lambda v: f'{v:+.0%}')} | "
                     + (f"{ci_cell(r, 'asr_top5', pct)} | " if top5 else "")
                     + f"{pct(r['nearer_private'])} / {pct(r['nearer_private_no_attack'])} | "
                     f"{ci_cell(r, 'knn_distance', _num)} / {_num(r['knn_distance_no_attack'])} | "
                     f"{ci_cell(r, 'feature_distance', _num)} / {_num(r['feature_distance_no_attack'])} | "
                     f"{PAPER_INVERSION.get(config, '')} |")
    lines += ["", f"Held-out private images of the attacked classes ({held_out['images']}, real images the target "
              f"never saw: what a perfect reconstruction would score): evaluator top-1 "
              f"{ci_cell(held_out, 'accuracy', pct)}, nearer private {ci_cell(held_out, 'nearer_private', pct)}, "
              f"KNN distance {ci_cell(held_out, 'knn_distance', _num)}, feature distance "
              f"{ci_cell(held_out, 'feature_distance', _num)}."]
    lines += ["", "| Model | Test accuracy (private test split) | Accuracy (most confident image per class) | "
              "No start | No reconstruction | Stopped by budget | Queries / attack |", "|---|---|---|---|---|---|---|"]
    for config, r in metrics.items():
        lines.append(f"| {label(config)} | {ci_cell(r, 'accuracy_test', lambda v: f'{v:.1%}')}"
                     f"{' at chance' if r['at_chance'] else ''} | {ci_cell(r, 'accuracy', pct)} of {r['accuracy_images']} | "
                     f"{r['no_start']} | {r['no_reconstruction']} | {r['stopped_by_budget']} | {r['queries_mean']:.0f} |")
    against_n = sorted({k for r in metrics.values() for k in r if k.startswith("asr_change_vs_") and
                        not k.endswith(("_low", "_high"))})
    lines += ["", "ASR differences, paired over attack slots (class, restart; the same sphere points), 95% bootstrap "
              "intervals; * = significant (the interval excludes 0).\n",
              "| Model | ASR minus the base model's | " + " | ".join(f"ASR minus {label(k[14:])} at the same σ"
                                                          for k in against_n) + " |",
              "|---|---|" + "---|" * len(against_n)]
    for config, r in metrics.items():
        if config != "base":
            lines.append(f"| {label(config)} | {_change(r, 'asr_change')} | "
                         + " | ".join(_change(r, k) for k in against_n) + " |")
    lines += ["", f"*At chance*: the test accuracy's interval reaches chance ({first['chance']:.0%}); a low ASR there "
              "says the model stopped working, not that the defense hid anything. Whether two configurations "
              "differ: the paired table above, not whether their own intervals overlap (docs/inversion.md)."]
    return "\n".join(lines) + "\n"


PROTOCOL_NAMES = {"predict": "PREDICT, abstentions visible", "abstain_as_negative": "PREDICT, abstain answered 0",
                  "vote": "majority vote (no abstention)", "certify": "CERTIFY's answer"}


def attribute_markdown(m: dict, unit: str, repeats: list[int]) -> str:
    """The Scenario I attack (``metrics/attribute_attack.json``): the attacker's interval per
    served model, the answers inside the certified sets, and the repeated-query attacker."""
    served = [k for k, r in m.items() if isinstance(r, dict) and "queries" in r]
    lines = [f"## Scenario I: label-only attribute inference ({m['victims']} victims, {m['grid_values']} "
             f"{unit} values queried per victim, B = {m['threshold']:g})\n",
             "95% intervals: bootstrap over victims on the width, Clopper-Pearson on the coverage, Wilson on the "
             "test accuracy (RP's: the certify stage's).\n",
             f"| Served model | Median interval width ({unit}) | Truth inside | Median midpoint error | "
             "No compatible value | Victim's answer was abstain | Noisy evaluations | Test accuracy |",
             "|---|---|---|---|---|---|---|---|"]
    for name in served:
        r = m[name]
        accuracy = ci_cell(r, "test_accuracy", lambda v: f"{v:.2%}") if "test_accuracy" in r else "see Table 1"
        lines.append(f"| {label(name)} | {ci_cell(r, 'width_median', _num)} | {ci_cell(r, 'coverage', lambda v: f'{v:.1%}')} | "
                     f"{r['midpoint_error_median']:.2f} | "
                     f"{r['empty_rate']:.1%} | {r['released_abstain_rate']:.1%} | {r['noisy_evaluations']:,} | "
                     f"{accuracy} |")
    smoothed = [k for k in served if k.startswith("sigma_")]
    lines += ["", "Answers on the grid values inside each victim's certified set [I_lo - R, I_lo] (Definition 2):\n",
              "| Served model | Values inside | Answered 1 | Answered abstain | Answered 0 | Compatible values below it |",
              "|---|---|---|---|---|---|"]
    for name in smoothed:
        r = m[name]
        lines.append(f"| {label(name)} | {r['certified_values']} | {r['certified_answered_positive']} | "
                     f"{r['certified_answered_abstain']} | {r['certified_answered_negative']} | "
                     f"{r['compatible_below_certified']} |")
    lines += ["", f"The same attack under each release protocol a service could choose: median interval width "
              f"({unit}, 95% interval; truth inside). The revised paper reports {PAPER_INTERVAL['base']:.2f} for the "
              f"base model and {PAPER_INTERVAL['rp']:.2f} with RP.\n",
              "| Served model | " + " | ".join(PROTOCOL_NAMES.values()) + " |", "|---|" + "---|" * len(PROTOCOL_NAMES)]
    for name in ["base", *smoothed]:
        r = m[name].get("protocol", dict.fromkeys(PROTOCOL_NAMES, m[name]))  # base: one answer, whatever the protocol
        lines.append(f"| {label(name)} | " + " | ".join(
            f"{ci_cell(r[k], 'width_median', _num)} ({r[k]['coverage']:.0%})" for k in PROTOCOL_NAMES) + " |")
    lines += ["", f"Repeated queries ({m['victims_near_threshold']} victims near B; RP answers the majority "
              "vote, randomized response one noisy label): median interval width (truth inside) after K answers:\n",
              "| Served model | Randomness | " + " | ".join(f"K = {k}" for k in repeats) + " |",
              "|---|---|" + "---|" * len(repeats)]
    for name in [k for k in served if "repeat" in m[k]]:
        for mode in m[name]["repeat"]:
            cells = [f"{r['width_median']:.2f} ({r['coverage']:.0%})"
                     for r in (m[name]["repeat"][mode][token("k", k)] for k in repeats)]
            lines.append(f"| {label(name)} | {mode.replace('_', ' ')} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def membership_markdown(table: dict, setup: dict) -> str:
    """Every defense against the membership attacks (``metrics/membership.json``): the attacker's
    strongest attack with its intervals and its paired AUC change against no defense, then every
    attack's AUC and TPR at 1% FPR; n/a where an attack cannot apply by construction."""
    auc, pct = (lambda v: f"{v:.3f}"), (lambda v: f"{v:.1%}")
    n0 = setup["nonmembers"]
    lines = [f"## Membership inference ({setup['members']} members, {n0} non-members, "
             f"{setup['reference_models']} reference models)\n",
             "The attacker's strongest attack, chosen by its AUC on the attacker's own pseudo-target (never on the "
             "target's records). Intervals: 95% stratified bootstrap over the records. Chance: AUC 0.5, TPR = FPR. "
             f"TPR at 0.1% FPR allows {int(0.001 * n0 + 1e-9)} of {n0} non-members above the threshold, TPR at 1% "
             f"FPR {int(0.01 * n0 + 1e-9)}. *: the AUC change's paired interval excludes 0.\n",
             "| Defense | Train accuracy | Test accuracy | Strongest attack | AUC | TPR at 0.1% FPR | TPR at 1% FPR "
             "| Balanced accuracy | AUC change vs none |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, row in table.items():
        r = {k[len("strongest_"):]: v for k, v in row.items() if k.startswith("strongest_")}
        change = "–"
        if "auc_change" in row:
            change = ci_cell(row, "auc_change", lambda v: f"{v:+.3f}")
            if row["auc_change_low"] > 0 or row["auc_change_high"] < 0:
                change += " *"
        lines.append(f"| {label(name)} | {row['train_accuracy']:.1%} | {row['test_accuracy']:.1%} | "
                     f"{row['strongest']} | {ci_cell(r, 'auc', auc)} | {ci_cell(r, 'tpr_at_0_1pct_fpr', pct)} | "
                     f"{ci_cell(r, 'tpr_at_1pct_fpr', pct)} | {ci_cell(r, 'accuracy', auc)} | {change} |")
    attacks = list(next(iter(table.values()))["attacks"])
    lines += ["", "### Every attack: AUC / TPR at 1% FPR\n",
              "| Defense | " + " | ".join(attacks) + " |", "|---|" + "---|" * len(attacks)]
    for name, row in table.items():
        cells = ["n/a" if a is None else f"{a['auc']:.3f} / {a['tpr_at_1pct_fpr']:.1%}" for a in row["attacks"].values()]
        lines.append(f"| {label(name)} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def n_effect_markdown(m: dict, unit: str) -> str:
    """The tabular task's N grid at fixed sigma (``n_effect`` of ``metrics/guarantee.json``)."""
    ns = [k for k in m if k.startswith("n_")]
    pct = lambda v: f"{v:.1%}"  # noqa: E731
    lines = [f"## The effect of N at σ = {m['sigma']:g} (tabular task)\n",
             f"Utility on the first test records; Scenario I on {m['victims']} victims (median {unit} interval width, "
             "truth inside). 95% intervals: Wilson on accuracy, bootstrap over victims on the width. Noisy "
             "evaluations per query: N.\n",
             "| N | Accuracy, PREDICT | Accuracy, vote | Interval width, PREDICT | Interval width, vote |",
             "|---|---|---|---|---|"]
    for k in ns:
        r = m[k]
        lines.append(f"| {r['noisy_evaluations_per_query']} | {ci_cell(r['predict'], 'test_accuracy', pct)} | "
                     f"{ci_cell(r['vote'], 'test_accuracy', pct)} | "
                     f"{ci_cell(r['predict'], 'width_median', _num)} ({r['predict']['coverage']:.0%}) | "
                     f"{ci_cell(r['vote'], 'width_median', _num)} ({r['vote']['coverage']:.0%}) |")
    return "\n".join(lines) + "\n"


def distinguish_markdown(m: dict) -> str:
    """The distinguishing game (``distinguish`` of ``metrics/guarantee.json``), per task."""
    pct = lambda v: f"{v:.0%}"  # noqa: E731
    three = lambda v: f"{v:.3f}"  # noqa: E731
    lines = ["## The distinguishing game of (R, α)-Robust Privacy\n",
             "Per pair (a certified x, a partner x' within R_x): the advantage of the best distinguisher between the "
             "answers released at x and at x' (fresh noise: total-variation distance of the answer laws, plug-in "
             "estimate; keyed noise: the rate at which the two answers differ over secrets). 95% intervals: bootstrap "
             "over pairs on the median, Clopper-Pearson on the shares; the share whose *lower bound* exceeds α/2 is "
             "the one to quote (the plug-in estimate is biased upward).\n",
             "| Task | Partner | Release | Noise | K | Pairs | Median advantage | Lower bound > α/2 | Estimate > α/2 | "
             "Largest |", "|---|---|---|---|---|---|---|---|---|---|"]
    for task, t in m.items():
        for kind in (k for k in t if isinstance(t[k], dict) and "exact" in t[k]):
            node = t[kind]
            e = node["exact"]
            lines.append(f"| {task} | {kind} | exact g | - | 1 | - | - | - | - | g(x) ≠ g(x'): "
                         f"{ci_cell(e, 'differ', pct)} |")
            for protocol in (p for p in node if p != "exact"):
                rows = [(n, 1, r) for n, r in node[protocol].items() if n != "repeat"]
                rows += [(n, int(k.split("_")[1]), r) for k, by in node[protocol].get("repeat", {}).items()
                         for n, r in by.items()]
                for noise, k, r in rows:
                    lines.append(f"| {task} | {kind} | {protocol} | {noise} | {k} | {r['pairs']} | "
                                 f"{ci_cell(r, 'advantage_median', three)} | {ci_cell(r, 'lower_above_half_alpha', pct)} | "
                                 f"{ci_cell(r, 'above_half_alpha', pct)} | {r['advantage_max']:.3f} |")
    first = next(iter(m.values()))
    lines += ["", "Records certified: " + ", ".join(f"{task} {t['certified']} of {t['records']} (median R "
                                                     f"{ci_cell(t, 'radius_median', three)})" for task, t in m.items())
              + f"; α/2 = {first['half_alpha']:g}."]
    return "\n".join(lines) + "\n"


def extraction_markdown(m: dict, params: dict, unit: str) -> str:
    """The distillation boundary (``extraction`` of ``metrics/guarantee.json``): per served model,
    the attacks against it and against the students distilled from it at every query budget."""
    pct = lambda v: f"{v:.1%}"  # noqa: E731
    attacked = lambda node, task: ["served"] + [token("q", q) for q in params["extraction"][task]["budgets"]]  # noqa: E731
    name = lambda a: "the served model" if a == "served" else f"student, {int(a.split('_')[1]):,} queries"  # noqa: E731
    lines = ["## The distillation boundary\n",
             "An extraction attacker queries the served model (RP: the keyed vote; base; MID) on synthetic records or "
             "public images, trains a student on the labels, then attacks the student. 95% intervals: Wilson on "
             "agreement and accuracy, bootstrap over victims on the width and its change, Wilson on ASR.\n",
             f"**Tabular** (Scenario I; median {unit} interval width, truth inside):\n",
             "| Served model | Attacked | Agreement with served | Agreement with base | Test accuracy | Interval width | "
             "Truth inside | Width change vs base |", "|---|---|---|---|---|---|---|---|"]
    for config, node in configurations(m["tabular"], "served").items():
        for a in attacked(node, "tabular"):
            r = node[a]
            lines.append(f"| {label(config)} | {name(a)} | {ci_cell(r, 'agreement', pct)} | "
                         f"{ci_cell(r, 'agreement_base', pct)} | {ci_cell(r, 'test_accuracy', pct)} | "
                         f"{ci_cell(r, 'width_median', _num)} | {ci_cell(r, 'coverage', lambda v: f'{v:.0%}')} | "
                         f"{ci_cell(r, 'width_change_vs_base', lambda v: f'{v:+.2f}')} |")
    chance = m["images"]["base"]["served"]["brepmi"]["chance"]
    lines += ["", f"**Images** (BREP-MI label-only and white-box inversion through the prior; ASR, chance "
                  f"{chance:.0%}; white-box: the served base model's own gradients, the ceiling of a perfect copy):\n",
              "| Served model | Attacked | Agreement with served | Agreement with base | Test accuracy | BREP-MI ASR | "
              "White-box ASR |", "|---|---|---|---|---|---|---|"]
    for config, node in configurations(m["images"], "served").items():
        for a in attacked(node, "images"):
            r = node[a]
            white = ci_cell(r["whitebox"], "asr", lambda v: f"{v:.0%}") if "whitebox" in r else "-"
            lines.append(f"| {label(config)} | {name(a)} | {ci_cell(r, 'agreement', pct)} | "
                         f"{ci_cell(r, 'agreement_base', pct)} | {ci_cell(r, 'test_accuracy', pct)} | "
                         f"{ci_cell(r['brepmi'], 'asr', lambda v: f'{v:.0%}')} | {white} |")
    return "\n".join(lines) + "\n"
