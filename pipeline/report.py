"""Table 1 and the APE summary as markdown, beside the paper's numbers (Section 5)."""
from __future__ import annotations

PAPER_TABLE1 = {"base": (1.0, None, None), 1.0: (0.9636, 0.0364, 0.56), 2.0: (0.9276, 0.0723, 0.63),
                3.0: (0.8904, 0.1096, 0.65)}
PAPER_EXPANSION = {1.0: 0.4, 3.0: 1.0}


def _pct(v) -> str:
    return "-" if v is None else f"{v:.2%}"


def _num(v, fmt=".2f") -> str:
    return "-" if v is None else format(v, fmt)


def table1(base_accuracy: float, rows: list[dict], unit: str) -> tuple[list[dict], str]:
    """Rows: base, then one per sigma (metrics of the certify stage). Returns JSON rows and markdown."""
    out = [{"model": "Base", "accuracy": base_accuracy, "abstention_rate": None, "avg_radius": None,
            "avg_radius_units": None, "paper": PAPER_TABLE1["base"]}]
    for m in sorted(rows, key=lambda m: m["sigma"]):
        out.append({"model": f"Smoothed, sigma = {m['sigma']:g}", "accuracy": m["accuracy"],
                    "abstention_rate": m["abstention_rate"], "avg_radius": m["avg_radius"],
                    "avg_radius_units": m["avg_radius_units"], "paper": PAPER_TABLE1.get(m["sigma"])})
    lines = [f"| Model | Accuracy | Abstention | Avg. R | Avg. R ({unit}) | Paper: acc. / abst. / Avg. R |",
             "|---|---|---|---|---|---|"]
    for r in out:
        paper = "n/a" if r["paper"] is None else " / ".join(
            [_pct(r["paper"][0]), _pct(r["paper"][1]), _num(r["paper"][2])])
        lines.append(f"| {r['model']} | {_pct(r['accuracy'])} | {_pct(r['abstention_rate'])} | "
                     f"{_num(r['avg_radius'], '.3f')} | {_num(r['avg_radius_units'])} | {paper} |")
    return out, "\n".join(lines) + "\n"


def ape_table(ape: dict, unit: str) -> str:
    """One row per APE configuration: observed and robust expansion, certified expansion."""
    lines = [f"| Classifier | Expansion ({unit}) | Robust expansion | Median certified expansion | "
             "Positives below B | Abstention | Paper expansion |", "|---|---|---|---|---|---|---|"]
    ordered = sorted(ape["configs"].items(), key=lambda kv: (kv[0] != "base", "N=" in kv[0], kv[1]["sigma"],
                                                            kv[1]["n"], kv[1]["alpha"]))
    for name, m in ordered:
        paper = PAPER_EXPANSION.get(m["sigma"]) if "N=" not in name else None
        lines.append(f"| {name} | {m['expansion']:.2f} | {m['expansion_robust']:.2f} | "
                     f"{m['certified_expansion_median']:.2f} | {m['positives_below_threshold']} | "
                     f"{m['abstention_rate']:.2%} | {_num(paper)} |")
    return "\n".join(lines) + "\n"
