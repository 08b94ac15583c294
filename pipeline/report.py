"""Table 1 and the APE summary as markdown, beside the paper's numbers (Section 5, Appendix A)."""
from __future__ import annotations

# Paper Table 1: accuracy, abstention rate, Avg. R; and the observed expansion of Section 5.
PAPER_TABLE1 = {"Base": (1.0, None, None), "sigma=1": (0.9636, 0.0364, 0.56),
                "sigma=2": (0.9276, 0.0723, 0.63), "sigma=3": (0.8904, 0.1096, 0.65)}
PAPER_EXPANSION = {"sigma=1": 0.4, "sigma=3": 1.0}


def _pct(v) -> str:
    return "-" if v is None else f"{v:.2%}"


def _num(v, fmt=".2f") -> str:
    return "-" if v is None else format(v, fmt)


def table1(base_accuracy: float, rows: list[dict]) -> dict:
    """Table 1 as a flat mapping (what ``dvc metrics show`` and ``dvc exp show`` display)."""
    table = {"Base": {"accuracy": base_accuracy}}
    for m in sorted(rows, key=lambda m: m["sigma"]):
        table[f"sigma={m['sigma']:g}"] = {k: m[k] for k in
                                          ("accuracy", "abstention_rate", "avg_radius", "avg_radius_units")}
    return table


def table1_markdown(table: dict, unit: str) -> str:
    lines = [f"| Model | Accuracy | Abstention | Avg. R | Avg. R ({unit}) | Paper: acc. / abst. / Avg. R |",
             "|---|---|---|---|---|---|"]
    for name, r in table.items():
        paper = PAPER_TABLE1.get(name)
        paper = "n/a" if paper is None else " / ".join([_pct(paper[0]), _pct(paper[1]), _num(paper[2])])
        label = name if name == "Base" else f"Smoothed, σ = {name.split('=')[1]}"
        lines.append(f"| {label} | {_pct(r['accuracy'])} | {_pct(r.get('abstention_rate'))} | "
                     f"{_num(r.get('avg_radius'), '.3f')} | {_num(r.get('avg_radius_units'))} | {paper} |")
    return "\n".join(lines) + "\n"


def ape_markdown(ape: dict, names: list[str], unit: str) -> str:
    """One row per APE configuration, in ``names`` order."""
    lines = [f"| Classifier | Expansion ({unit}) | Robust expansion | Median certified expansion | "
             "Positives below B | Abstention | Paper expansion |", "|---|---|---|---|---|---|---|"]
    for name in names:
        m = ape[name]
        lines.append(f"| {name} | {m['expansion']:.2f} | {m['expansion_robust']:.2f} | "
                     f"{m['certified_expansion_median']:.2f} | {m['positives_below_threshold']} | "
                     f"{m['abstention_rate']:.2%} | {_num(PAPER_EXPANSION.get(name))} |")
    return "\n".join(lines) + "\n"
