"""Attribute Privacy Enhancement (paper Definition 2, Section 5 and Appendix A).

The augmented set: for every test record the base classifier predicts positive (D_t,1), the
record itself plus copies whose sensitive value is b' = B - j*s, j = 0..J, with every other
attribute unchanged. Positive predictions on it give Figure 1 / Figure 4 and the observed
expansion; certified radii along it give the inference sets I_y and I_y^(R) of Definition 2.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

from ..core.compute import map_rows
from ..core.device import select
from ..core.metrics import token
from ..core.seeds import mix
from ..core.training import predict
from ..smoothing import ESTIMATE, SELECT, Smooth, certify_from_counts
from .preprocess import to_standard


def trajectory(threshold: float, step: float, points: int) -> np.ndarray:
    """b' = B - j*s for j = 0..J (J + 1 values, from B down to B - J*s)."""
    return threshold - step * np.arange(points + 1)


class Augmented:
    """Rows of the augmented set, made on the fly (K records x P sensitive values, row-major).

    ``values[k, p]`` is the raw sensitive value of row (k, p); column 0 is the record's own.
    """

    def __init__(self, records: np.ndarray, values: np.ndarray, sensitive_index: int, meta: dict):
        self.records, self.values, self.s = records, values, sensitive_index
        self.standard = to_standard(values, meta).astype(np.float32)

    def __len__(self) -> int:
        return self.values.size

    def __getitem__(self, rows: slice) -> torch.Tensor:
        idx = np.arange(*rows.indices(len(self)))
        k, p = np.divmod(idx, self.values.shape[1])
        x = self.records[k].copy()
        x[:, self.s] = self.standard[k, p]
        return torch.from_numpy(x)


def base_predictions(model, aug: Augmented, rows: int = 65536) -> np.ndarray:
    """The base classifier's labels on the augmented set, (K, P), a block of rows at a time."""
    labels = [predict(model, aug[i:i + rows].numpy(), batch=None) for i in range(0, len(aug), rows)]
    return np.concatenate(labels).reshape(aug.values.shape)


def augment(raw: np.ndarray, threshold: float, step: float, points: int) -> np.ndarray:
    """Sensitive values (K, J + 2): each record's own value, then the trajectory."""
    traj = trajectory(threshold, step, points)
    return np.hstack([raw[:, None], np.broadcast_to(traj, (len(raw), len(traj)))])


def inference_sets(values: np.ndarray, positive: np.ndarray, radius: np.ndarray) -> dict:
    """Definition 2 per record, over the evaluated values z of the record (rows of ``values``):
    I_1 = {z : prediction(z) = 1} and I_1^(R) = union of [z - R_z, z + R_z] over z in I_1,
    with R_z in the sensitive attribute's units (0 where abstained or uncertified).
    Returns the lower and upper ends of both sets (NaN where I_1 is empty)."""
    lo = np.where(positive, values, np.inf).min(axis=1)
    hi = np.where(positive, values, -np.inf).max(axis=1)
    rlo = np.where(positive, values - radius, np.inf).min(axis=1)
    rhi = np.where(positive, values + radius, -np.inf).max(axis=1)
    empty = ~positive.any(axis=1)
    return {k: np.where(empty, np.nan, v) for k, v in
            (("i_lo", lo), ("i_hi", hi), ("ir_lo", rlo), ("ir_hi", rhi))}


def reach(values: np.ndarray, positive: np.ndarray, threshold: float) -> np.ndarray:
    """Per record, how far below B its positive predictions reach: B minus its lowest value
    predicted positive, 0 if none is below B."""
    lowest = np.where(positive, values, np.inf).min(axis=1)
    return np.where(positive.any(axis=1), np.maximum(threshold - lowest, 0.0), 0.0)


def expansion(values: np.ndarray, positive: np.ndarray, threshold: float, quantile: float) -> dict:
    """How far below B positive predictions reach.

    ``observed``: B minus the lowest sensitive value predicted positive (the paper's 0.4 to
    1.0); ``robust``: the ``quantile`` of the per-record reach, so one record cannot set it.
    """
    r = reach(values, positive, threshold)
    below = positive & (values < threshold)
    return {"observed": float(r.max(initial=0.0)), "robust": float(np.quantile(r, quantile)),
            "positives_below_threshold": int(below.sum()), "records_reaching_below": int((r > 0).sum())}


def summarise(values: np.ndarray, prediction: np.ndarray, radius_units: np.ndarray, threshold: float,
              quantile: float) -> tuple[dict, dict]:
    """One classifier's APE figures (the metrics) and Definition 2's sets per record."""
    positive = prediction == 1
    sets = inference_sets(values, positive, radius_units)
    exp = expansion(values, positive, threshold, quantile)
    certified = sets["i_lo"] - sets["ir_lo"]
    return {"expansion": exp["observed"], "expansion_robust": exp["robust"],
            "positives_below_threshold": exp["positives_below_threshold"],
            "records_reaching_below": exp["records_reaching_below"],
            "abstention_rate": float((prediction == -1).mean()),
            "certified_expansion_median": float(np.nanmedian(certified)) if np.isfinite(certified).any() else 0.0,
            }, sets


def decompose(values: np.ndarray, positive: np.ndarray, threshold: float, b_lo: np.ndarray, b_hi: np.ndarray,
              alpha: float) -> dict:
    """Split the positives below B of records (rows) whose boundary b* lies in [b_lo, b_hi]:
    ``smoothing_effect`` (value > b_hi: the smoothed classifier g itself is positive there),
    ``certification_failures`` (value < b_lo: g is not 1 there, so each is a wrong certificate,
    probability <= alpha per input), ``undecided`` (inside b*'s interval); ``failure_bound``:
    alpha times the inputs below b_lo, the expected number of failures at most."""
    below = positive & (values < threshold)
    effect, under = values > b_hi[:, None], values < b_lo[:, None]
    return {"positives_below_threshold": int(below.sum()), "smoothing_effect": int((below & effect).sum()),
            "certification_failures": int((below & under).sum()), "undecided": int((below & ~effect & ~under).sum()),
            "inputs_below_boundary": int(under.sum()), "failure_bound": float(alpha * under.sum())}


ON_EDGE = 1e-6  # a value this close to a bin edge (in bin widths) lies on it


def bin_edges(values: np.ndarray, threshold: float, width: float) -> np.ndarray:
    """Right-closed bins (lo, hi] of ``width`` covering ``values``, with B on a bin edge: B and
    the trajectory's other on-edge values b' fall in the bin they close, so every bin right of B
    holds only values above B (the positive label's rule), and the lowest value lies inside
    the first bin."""
    below = int(np.floor((threshold - values.min()) / width + ON_EDGE)) + 1
    above = int(np.ceil((values.max() - threshold) / width - ON_EDGE))
    return threshold + width * np.arange(-below, max(above, 1) + 1)


def histogram(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Counts of ``values`` per right-closed bin (lo, hi] of ``bin_edges``; a value within
    ``ON_EDGE`` bins of an edge (b' = B - j*s in floating point) counts as on it."""
    return np.histogram(values, bins=edges + ON_EDGE * (edges[1] - edges[0]))[0]


class Configuration(NamedTuple):
    """One smoothed classifier of the APE experiment and the figure it belongs to."""
    name: str  # its metrics path (``pipeline.core.metrics``): sigma_1, ablation.sigma_3.n_100.alpha_0_01
    sigma: float
    n: int
    alpha: float
    figure: int  # 1: Figure 1 (every sigma at N, alpha); 4: Figure 4 (Appendix A's N x alpha grid)


def configurations(smoothing: dict, ablation: dict) -> list[Configuration]:
    """Figure 1's configurations (every sigma at N, alpha), then Figure 4's (Appendix A)."""
    main = [Configuration(token("sigma", s), float(s), smoothing["n"], smoothing["alpha"], 1) for s in smoothing["sigmas"]]
    grid = [Configuration(f"ablation.{token('sigma', ablation['sigma'])}.{token('n', n)}.{token('alpha', a)}",
                          float(ablation["sigma"]), n, a, 4)
            for n in ablation["ns"] for a in ablation["alphas"]]
    return main + grid


def certify_augmented(model, aug: Augmented, configs, n0: int, noise: str, seed: int, chunk: int,
                      compute: dict, progress: bool = True) -> dict[str, dict]:
    """Certify every augmented row for each configuration (abstentions kept: Section 7.2).

    ``noise``: ``record`` (one noise bank per record, shared by the values of its trajectory:
    records are independent trials, and each trajectory is the counterfactual "the same user,
    the same noise, another value") or ``fresh`` (independent draws for every row, as in Cohen
    et al.'s code). Either way each row's draws are i.i.d. N(0, sigma^2 I), so every
    certificate holds with probability >= 1 - alpha.
    Selection counts are drawn once per sigma and estimation counts once per (sigma, N); each
    alpha reuses them, which is exactly what a separate run with the same draws would give.
    Records are counted in chunks where ``compute`` says (``pipeline.core.compute``), each chunk
    for every configuration at once.
    Returns, per configuration, the prediction and the radius in standardised units (K, P).
    """
    passes = {}  # sigma -> the estimation sizes N it needs
    for c in configs:
        passes.setdefault(c.sigma, set()).add(c.n)
    passes = {sigma: sorted(ns) for sigma, ns in passes.items()}
    per_chunk = {**compute, "chunk": max(1, compute["chunk"] // aug.values.shape[1])}  # rows -> records
    parts = list(map_rows(count_records, len(aug.values), per_chunk, "ape", progress, unit="record", model=model,
                          aug=aug, passes=passes, n0=n0, noise=noise, seed=seed, chunk=chunk,
                          device=compute.get("device", "cpu")))
    counts = {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}
    shape, out = aug.values.shape, {}
    for c in configs:
        cert = certify_from_counts(counts[c.sigma, "select"], counts[c.sigma, c.n], c.alpha, c.sigma)
        out[c.name] = {"prediction": cert.prediction.reshape(shape), "radius": cert.radius.reshape(shape)}
    return out


def count_records(start: int, stop: int, model, aug: Augmented, passes: dict, n0: int, noise: str, seed: int,
                  chunk: int, device: str = "cpu") -> dict:
    """Class counts of the rows of records [start, stop) for every sigma (selection: key 0) and
    every N of that sigma (estimation: key N), with the draws the rows get inside the whole set:
    ``fresh``: by row position; ``record``: record k's bank is the shared bank of key (key, k).
    The engine runs on ``device`` (a ``compute.device`` value, resolved where the task runs)."""
    width, out = aug.values.shape[1], {}
    for sigma, ns in passes.items():
        smooth = Smooth(model, 2, sigma, noise="shared" if noise == "record" else noise, seed=seed, chunk=chunk,
                        device=select(device))
        keys = [("select", n0, SELECT, 0)] + [(n, n, ESTIMATE, n) for n in ns]
        if noise == "fresh":
            found = smooth.counts_passes(aug[start * width:stop * width], [(n, st, code) for _, n, st, code in keys],
                                         offset=start * width)
        else:
            per_record = [smooth.line_counts(torch.from_numpy(aug.records[k]), aug.s, aug.standard[k],
                                             [(n, st, mix(code, k)) for _, n, st, code in keys])
                          for k in range(start, stop)]
            found = [np.concatenate(parts) for parts in zip(*per_record)]
        out.update({(sigma, name): counts for (name, *_), counts in zip(keys, found)})
    return out
