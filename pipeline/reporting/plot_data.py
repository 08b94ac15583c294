"""The data behind the DVC plots (``dvc plots show``, templates in ``.dvc/plots/``): long
tables, one row per point, with a ``series`` column naming the configuration (its ``label``),
so one plot shows every configuration whatever the params are."""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..core.metrics import label


def histogram(edges: np.ndarray, counts: dict[str, np.ndarray], unit: str) -> pd.DataFrame:
    """Positive predictions per bin (left edge in ``unit``), one series per configuration."""
    return pd.DataFrame([{unit: round(float(lo), 4), "series": label(name), "positives": int(c)}
                         for name, per_bin in counts.items() for lo, c in zip(edges[:-1], per_bin)])


def roc(curves: dict[str, dict[str, dict]], strongest: dict[str, str]) -> pd.DataFrame:
    """Each defense's ROC under the attacker's strongest attack (``strongest[defense]``);
    ``curves[defense][attack]``: ``pipeline.attacks.membership_metrics.roc_summary``."""
    rows = []
    for defense, per in curves.items():
        attack = strongest[defense]
        best = per[attack]
        series = f"{label(defense)}: {attack} (AUC {best['auc']:.3f})"
        rows += [{"fpr": float(f), "tpr": float(t), "series": series} for f, t in zip(best["fpr"], best["tpr"])]
    return pd.DataFrame(rows)


def interval_curve(x_name: str, x: list[float], y_name: str, series: dict[str, list[tuple[float, float, float]]]) \
        -> pd.DataFrame:
    """One row per (series, x): the estimate ``y_name`` and its interval (``lower``, ``upper``)."""
    return pd.DataFrame([{x_name: float(xi), "series": name, y_name: est, "lower": lo, "upper": hi}
                         for name, points in series.items() for xi, (est, lo, hi) in zip(x, points)])


def interval(m: dict, measure: str) -> tuple[float, float, float]:
    """The estimate ``m[measure]`` and its interval (``<measure>_low``, ``<measure>_high``)."""
    return m[measure], m[f"{measure}_low"], m[f"{measure}_high"]


def frontier(task: str, rows: dict[str, dict], panels: list[tuple[str, str]]) -> pd.DataFrame:
    """One row per (attack panel, configuration): test accuracy and the attack's success with
    their intervals, the frontier curve as ``series``, the configuration's ``label`` and
    whether it is on the Pareto front. ``panels``: (row key, the attack's name);
    ``rows``: ``pipeline.reporting.defense_table.table`` or ``tabular_table``."""
    out = []
    for key, attack in panels:
        flag = f"pareto_{key.split('_')[0]}"
        out += [{"task": task, "attack": attack, "series": "undefended" if r["curve"] == "none" else r["curve"],
                 "configuration": label(name), "accuracy": r["test_accuracy"],
                 "accuracy_lower": r["test_accuracy_low"], "accuracy_upper": r["test_accuracy_high"],
                 "success": r[key], "lower": r.get(f"{key}_low", r[key]), "upper": r.get(f"{key}_high", r[key]),
                 "pareto": int(r.get(flag, 0))} for name, r in rows.items() if r.get(key) is not None]
    return pd.DataFrame(out)
