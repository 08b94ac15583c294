"""Table 1: certify the test set and summarise it (Cohen et al.'s per-input columns)."""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import norm

from ..core.compute import map_rows
from ..core.device import select
from .engine import ESTIMATE, SELECT, Smooth
from .stats import ABSTAIN, Certificate, bootstrap_interval, certify_from_counts, clopper_pearson_interval


def certify_table(model, x, y, sigma: float, cfg: dict, seed: int, unit_scale: float,
                  compute: dict, progress: bool = True) -> pd.DataFrame:
    """One row per input: idx, label, predict, radius, correct (Cohen et al.'s columns, less
    ``time``: wall time would make the file differ between identical runs; it is logged to
    MLflow instead), plus pA_lower and the radius in the sensitive attribute's units.
    The rows are certified in chunks where ``compute`` says (``pipeline.compute``), each on the
    device ``compute.device`` names there."""
    parts = list(map_rows(certify_rows, len(y), compute, f"certify sigma={sigma:g}", progress, model=model, x=x,
                          sigma=sigma, cfg=cfg, seed=seed, device=compute.get("device", "cpu")))
    cert = Certificate(*(np.concatenate([getattr(p, f) for p in parts]) for f in ("prediction", "pa_lower", "radius")))
    return pd.DataFrame({"idx": np.arange(len(y)), "label": y, "predict": cert.prediction,
                         "radius": cert.radius, "correct": (cert.prediction == y).astype(int),
                         "pA_lower": cert.pa_lower, "radius_units": cert.radius * unit_scale})


def certify_rows(start: int, stop: int, model, x, sigma: float, cfg: dict, seed: int,
                 device: str = "cpu") -> Certificate:
    """CERTIFY for rows [start, stop) of ``x``, with the draws they get inside the whole set:
    selection key 0, estimation key 1 (a fresh engine's first two calls), on ``device``
    (a ``compute.device`` value)."""
    smooth = Smooth(model, 2, sigma, noise=cfg["noise"], seed=seed, chunk=cfg["chunk"], device=select(device))
    rows = x[start:stop]
    counts0 = smooth.counts(rows, cfg["n0"], SELECT, key=0, offset=start)
    counts = smooth.counts(rows, cfg["n"], ESTIMATE, key=1, offset=start)
    return certify_from_counts(counts0, counts, cfg["alpha"], sigma)


def certification_summary(table: pd.DataFrame, unit: str, cfg: dict, sigma: float, seed: int, reps: int) -> dict:
    """Accuracy (abstain counts as wrong), abstention rate, and the average radius over
    positive predictions (Table 1's Avg. R), in standardised units and in the attribute's
    ``unit`` (``avg_radius_<unit>``); 95% intervals: Clopper-Pearson on the two rates,
    the percentile bootstrap over test inputs (``reps`` resamples) on Avg. R. Also the largest
    radius CERTIFY can give, sigma * PhiInv(alpha^(1/n)) (all n votes for the class: the
    one-sided Clopper-Pearson bound of n of n), and the share of positives that reach it."""
    pos = (table["predict"] == 1).to_numpy()
    correct, abstain = table["correct"].to_numpy(), (table["predict"] == ABSTAIN).to_numpy()
    radius = table["radius"].to_numpy()
    cap = sigma * norm.ppf(cfg["alpha"] ** (1 / cfg["n"]))
    out = {"accuracy": float(correct.mean()), "abstention_rate": float(abstain.mean()),
           "avg_radius": float(radius[pos].mean()) if pos.any() else 0.0,
           f"avg_radius_{unit}": float(table.loc[pos, "radius_units"].mean()) if pos.any() else 0.0,
           "positive_predictions": int(pos.sum()), "radius_cap": float(cap),
           "at_cap_share": float((radius[pos] >= cap - 1e-9).mean()) if pos.any() else 0.0}
    for name, hits in (("accuracy", correct), ("abstention_rate", abstain)):
        out[f"{name}_low"], out[f"{name}_high"] = (float(v) for v in clopper_pearson_interval(int(hits.sum()), len(hits)))
    scale = out[f"avg_radius_{unit}"] / out["avg_radius"] if out["avg_radius"] else 1.0
    lo, hi = bootstrap_interval(lambda i: radius[i][pos[i]].mean() if pos[i].any() else np.nan, len(radius), seed, reps)
    out.update({"avg_radius_low": lo, "avg_radius_high": hi, f"avg_radius_{unit}_low": lo * scale,
                f"avg_radius_{unit}_high": hi * scale})
    return out


def certified_accuracy(table: pd.DataFrame, radii: np.ndarray) -> np.ndarray:
    """Fraction of inputs classified correctly with a certified radius >= r, for each r."""
    ok = table["correct"].to_numpy() == 1
    r = table["radius"].to_numpy()
    return np.array([(ok & (r >= t)).mean() for t in radii])
