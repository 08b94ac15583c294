"""Where the exact smoothed classifier flips along a record's trajectory (the truth behind the
APE histograms of the Robust Privacy paper, Section 5 and Appendix A).

For a record x and a sensitive value b, x(b) is x with its sensitive attribute set to b, and
p(b) = P(f(x(b) + eps) = 1), eps ~ N(0, sigma^2 I), the probability behind the smoothed
classifier g of Cohen, Rosenfeld and Kolter (ICML 2019). g(x(b)) = 1 iff p(b) > 1/2, so the
boundary along the trajectory is b* with p(b*) = 1/2. A positive certified at b' < B is either
(a) b' > b*: g itself is positive there (the APE effect of smoothing), or (b) b' < b*: a wrong
certificate, which CERTIFY allows with probability <= alpha per input.

Estimation (Monte Carlo with common random numbers): one noise bank of M draws, in blocks, for
every record and value of a sigma, so p-hat(b) is a smooth, increasing curve in b.
1. Coarse: p-hat on a grid of step ``coarse_step`` with the first block; b1 = the first
   crossing of 1/2 (linear interpolation).
2. Fine: p-hat at b1 - d, b1, b1 + d with every block; b* = the crossing of 1/2 of the line
   through the three points (least squares), and its (1 - level) interval the crossings of
   1/2 -+ z sqrt(1/4M): p-hat(b*) ~ N(1/2, 1/4M) at the true b*, and p-hat increases in b, so
   b* is in the interval exactly when |p-hat(b*) - 1/2| <= z sqrt(1/4M) (test inversion).
   M is chosen per sigma from the coarse slope for the requested half-width, within ``max_draws``.
The bank is shared by the records, so the records' estimation errors are correlated (each
interval holds on its own); it is independent of the APE experiment's draws.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from scipy.stats import norm

from ..core.seeds import derive_seed
from ..core.training import predict
from ..smoothing import ESTIMATE, Smooth
from .preprocess import to_standard

ROLE = 1  # the boundary's random stream under the pipeline seed (``derive_seed``)


class Boundary:
    """p-hat along trajectories: ``probability(records, values, blocks)`` for records (K, d) and
    raw sensitive values (K, V), over the first ``blocks`` blocks of ``block`` draws each."""

    def __init__(self, model, sigma: float, meta: dict, block: int, seed: int, device: torch.device | str = "cpu"):
        self.smooth = Smooth(model, 2, sigma, noise="shared", seed=seed, chunk=8 * block, device=device)
        self.meta, self.block, self.s = meta, block, meta["sensitive_index"]

    def probability(self, records: np.ndarray, values: np.ndarray, blocks: int) -> np.ndarray:
        x = np.repeat(records, values.shape[1], axis=0)
        x[:, self.s] = to_standard(values.ravel(), self.meta)
        x = torch.from_numpy(x.astype(np.float32))
        ones = sum(self.smooth.counts(x, self.block, ESTIMATE, key=b)[:, 1] for b in range(blocks))
        return (ones / (blocks * self.block)).reshape(values.shape)


def crossing(values: np.ndarray, p: np.ndarray, level: float = 0.5) -> np.ndarray:
    """Per row, the first b where the curve p(b) (increasing ``values``) reaches ``level``,
    linearly interpolated; NaN where the curve stays on one side."""
    above = p >= level
    first = np.where(above.any(axis=1) & ~above[:, 0], above.argmax(axis=1), 0)
    rows = np.arange(len(p))
    lo, hi = np.maximum(first - 1, 0), first
    p0, p1, b0, b1 = p[rows, lo], p[rows, hi], values[rows, lo], values[rows, hi]
    with np.errstate(invalid="ignore", divide="ignore"):
        b = b0 + (level - p0) * (b1 - b0) / (p1 - p0)
    return np.where(first > 0, b, np.nan)


def base_flip(model, records: np.ndarray, meta: dict, cfg: dict, steps: int = 20) -> np.ndarray:
    """Where the base classifier f itself flips from 0 to 1 along each record's trajectory:
    bisection on [B - below, B + above] (``cfg``: params ``ape.boundary``), ``steps`` halvings;
    NaN where the two ends do not give 0 and 1."""
    B, s = meta["threshold"], meta["sensitive_index"]

    def label(values):
        x = records.copy()
        x[:, s] = to_standard(values, meta)
        return predict(model, x, batch=None)

    lo, hi = np.full(len(records), B - cfg["below"]), np.full(len(records), B + cfg["above"])
    bracketed = (label(lo) == 0) & (label(hi) == 1)
    for _ in range(steps):
        mid = (lo + hi) / 2
        one = label(mid) == 1
        hi, lo = np.where(one, mid, hi), np.where(one, lo, mid)
    return np.where(bracketed, (lo + hi) / 2, np.nan)


def locate(model, records: np.ndarray, sigma: float, meta: dict, cfg: dict, seed: int,
           device: torch.device | str = "cpu") -> pd.DataFrame:
    """b* with its interval for every record (K, d) at noise ``sigma``; ``cfg``: params
    ``ape.boundary``. Columns: b_star, b_lo, b_hi, slope (p per unit at b*), draws, located
    (False where p-hat does not cross 1/2 inside the searched range). The engine runs on ``device``."""
    bound = Boundary(model, sigma, meta, cfg["block"], derive_seed(seed, ROLE), device)
    B, step = meta["threshold"], cfg["coarse_step"]
    grid = np.arange(B - cfg["below"], B + cfg["above"] + step / 2, step)
    b1 = crossing(np.broadcast_to(grid, (len(records), len(grid))),
                  bound.probability(records, np.broadcast_to(grid, (len(records), len(grid))), 1))
    found = np.isfinite(b1)
    out = pd.DataFrame({"b_star": np.nan, "b_lo": np.nan, "b_hi": np.nan, "slope": np.nan, "draws": 0,
                        "located": False}, index=range(len(records)))
    if not found.any():
        return out
    z = norm.ppf(1 - (1 - cfg["level"]) / 2)
    ends = bound.probability(records[found], b1[found, None] + np.array([-step, step]), 1)
    slope1 = np.clip((ends[:, 1] - ends[:, 0]) / (2 * step), 1e-6, None)
    need = (z * 0.5 / (np.quantile(slope1, 0.1) * cfg["halfwidth"])) ** 2  # 90% of records meet the half-width
    blocks = int(np.clip(np.ceil(need / cfg["block"]), 1, cfg["max_draws"] // cfg["block"]))
    points = b1[found, None] + step * np.array([-1.0, 0.0, 1.0])
    p = bound.probability(records[found], points, blocks)
    centred = points - points.mean(axis=1, keepdims=True)
    slope = (centred * p).sum(axis=1) / (centred ** 2).sum(axis=1)
    ok = slope > 0
    h = z * np.sqrt(0.25 / (blocks * cfg["block"]))
    with np.errstate(invalid="ignore", divide="ignore"):
        at = {k: np.where(ok, points.mean(axis=1) + (level - p.mean(axis=1)) / slope, np.nan)
              for k, level in (("b_star", 0.5), ("b_lo", 0.5 - h), ("b_hi", 0.5 + h))}
    out.loc[found, list(at)] = np.column_stack(list(at.values()))
    out.loc[found, "slope"], out.loc[found, "located"] = slope, ok
    out["draws"] = blocks * cfg["block"]
    return out
