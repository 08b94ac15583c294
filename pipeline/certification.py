"""Table 1: certify the test set and summarise it (Cohen et al.'s per-input columns)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from .smoothing import ABSTAIN, Smooth


def certify_table(model, x, y, sigma: float, cfg: dict, seed: int, unit_scale: float) -> pd.DataFrame:
    """One row per input: idx, label, predict, radius, correct (Cohen et al.'s columns, less
    ``time``: wall time would make the file differ between identical runs; it is logged to
    MLflow instead), plus pA_lower and the radius in the sensitive attribute's units."""
    smooth = Smooth(model, 2, sigma, noise=cfg["noise"], seed=seed, chunk=cfg["chunk"], progress=True)
    cert = smooth.certify(x, cfg["n0"], cfg["n"], cfg["alpha"])
    return pd.DataFrame({"idx": np.arange(len(y)), "label": y, "predict": cert.prediction,
                         "radius": cert.radius, "correct": (cert.prediction == y).astype(int),
                         "pA_lower": cert.pa_lower, "radius_units": cert.radius * unit_scale})


def summary(table: pd.DataFrame) -> dict:
    """Accuracy (abstain counts as wrong), abstention rate, and the average radius over
    positive predictions (Table 1's Avg. R), in standardised and in attribute units."""
    pos = table["predict"] == 1
    return {"accuracy": float(table["correct"].mean()),
            "abstention_rate": float((table["predict"] == ABSTAIN).mean()),
            "avg_radius": float(table.loc[pos, "radius"].mean()) if pos.any() else 0.0,
            "avg_radius_units": float(table.loc[pos, "radius_units"].mean()) if pos.any() else 0.0,
            "positive_predictions": int(pos.sum())}


def certified_accuracy(table: pd.DataFrame, radii: np.ndarray) -> np.ndarray:
    """Fraction of inputs classified correctly with a certified radius >= r, for each r."""
    ok = table["correct"].to_numpy() == 1
    r = table["radius"].to_numpy()
    return np.array([(ok & (r >= t)).mean() for t in radii])
