"""The APE experiment (Robust Privacy paper, Section 5 and Appendix A): the base classifier and
every smoothed configuration on every augmented input, abstentions kept (Section 7.2), turned
into Figure 1 / Figure 4's histograms, the observed expansion and Definition 2's inference sets."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..tabular import ape


@dataclass
class ApeResults:
    records: pd.DataFrame     # Definition 2's sets per (configuration, record)
    edges: np.ndarray         # the right-closed bins (B on an edge)
    counts: dict              # configuration -> counts per bin
    metrics: dict             # configuration -> ``ape.summarise`` figures
    figures: dict             # figure number (1, 4) -> its configuration names ("base" in Figure 1)


def run_ape(model, augmented: dict, meta: dict, params: dict, progress: bool = True) -> ApeResults:
    """Certify the augmented set (``data/augmented.npz``'s arrays) for every configuration of
    ``ape.configurations`` and summarise each, the base classifier first."""
    cfg, smoothing = params["ape"], params["smoothing"]
    values, threshold = augmented["values"], meta["threshold"]
    aug = ape.Augmented(augmented["records"], values, meta["sensitive_index"], meta)
    configs = ape.configurations(smoothing, cfg["ablation"])
    results = {"base": {"prediction": ape.base_predictions(model, aug), "radius": np.zeros(values.shape)}}
    results.update(ape.certify_augmented(model, aug, configs, smoothing["n0"], cfg["noise"], params["seed"],
                                         smoothing["chunk"], params["compute"], progress))
    edges = ape.bin_edges(values, threshold, cfg["bin_width"])
    counts, metrics, rows = {}, {}, []
    for name, r in results.items():
        counts[name] = ape.histogram(values[r["prediction"] == 1], edges)
        metrics[name], sets = ape.summarise(values, r["prediction"], r["radius"] * meta["sensitive_std"], threshold,
                                            cfg["robust_quantile"])
        rows.append(pd.DataFrame({"config": name, "test_index": augmented["test_index"], "value": values[:, 0],
                                  **sets}))
    figures = {1: ["base"] + [c.name for c in configs if c.figure == 1], 4: [c.name for c in configs if c.figure == 4]}
    return ApeResults(pd.concat(rows), edges, counts, metrics, figures)
