"""The APE experiment (Robust Privacy paper, Section 5 and Appendix A): the base classifier and
every smoothed configuration on every augmented input, abstentions kept (Section 7.2), turned
into Figure 1 / Figure 4's histograms, the observed expansion and Definition 2's inference sets;
and the truth behind it: the exact smoothed classifier's boundary b* on a sample of records,
which splits each positive below B into a smoothing effect or a certification failure."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import norm

from ..core.device import select
from ..core.metrics import token
from ..core.seeds import derive_seed
from ..smoothing.stats import bootstrap_interval
from ..tabular import ape, boundary

SAMPLE = 1  # the record sample's random stream under the pipeline seed


@dataclass
class ApeResults:
    records: pd.DataFrame     # Definition 2's sets per (configuration, record)
    edges: np.ndarray         # the right-closed bins (B on an edge)
    counts: dict              # configuration -> counts per bin
    metrics: dict             # configuration -> ``ape.summarise`` figures, intervals, decomposition
    figures: dict             # figure number (1, 4) -> its configuration names ("base" in Figure 1)
    boundaries: dict          # configuration -> (median b*, lowest b_lo, highest b_hi) over the sample; base: its
                              # own flip between the last 0 and the first 1 of each record


def _interval(metrics: dict, name: str, statistic, records: int, seed: int, reps: int) -> None:
    metrics[f"{name}_low"], metrics[f"{name}_high"] = bootstrap_interval(statistic, records, seed, reps)


def run_ape(model, augmented: dict, meta: dict, params: dict, bounds: pd.DataFrame, progress: bool = True) -> ApeResults:
    """Certify the augmented set (``data/augmented.npz``'s arrays) for every configuration of
    ``ape.configurations`` and summarise each, the base classifier first; ``bounds``: the
    ``boundary`` stage's table (b* per sampled record and sigma, and the base classifier's own
    flip ``b_base``). Expansions carry percentile
    bootstrap intervals over records (for the maximum, the interval's top is the maximum)."""
    cfg, smoothing = params["ape"], params["smoothing"]
    values, threshold = augmented["values"], meta["threshold"]
    aug = ape.Augmented(augmented["records"], values, meta["sensitive_index"], meta)
    configs = ape.configurations(smoothing, cfg["ablation"])
    results = {"base": {"prediction": ape.base_predictions(model, aug), "radius": np.zeros(values.shape)}}
    results.update(ape.certify_augmented(model, aug, configs, smoothing["n0"], cfg["noise"], params["seed"],
                                         smoothing["chunk"], params["compute"], progress))
    edges = ape.bin_edges(values, threshold, cfg["bin_width"])
    alphas = {c.name: (c.sigma, c.alpha) for c in configs}
    counts, metrics, rows, lines = {}, {}, [], {}
    seed, reps = params["seed"], params["bootstrap"]
    for name, r in results.items():
        positive = r["prediction"] == 1
        counts[name] = ape.histogram(values[positive], edges)
        m, sets = ape.summarise(values, r["prediction"], r["radius"] * meta["sensitive_std"], threshold,
                                cfg["robust_quantile"])
        reach, certified = ape.reach(values, positive, threshold), sets["i_lo"] - sets["ir_lo"]
        _interval(m, "expansion", lambda i: reach[i].max(), len(values), seed, reps)
        _interval(m, "expansion_robust", lambda i: np.quantile(reach[i], cfg["robust_quantile"]), len(values), seed, reps)
        _interval(m, "certified_expansion_median",
                  lambda i: np.nanmedian(certified[i]) if np.isfinite(certified[i]).any() else 0.0, len(values), seed,
                  reps)
        if name in alphas:
            sigma, alpha = alphas[name]
            b = bounds[np.isclose(bounds["sigma"], sigma) & bounds["located"]]
            k = b["record"].to_numpy()
            m["truth"] = ape.decompose(values[k], positive[k], threshold, b["b_lo"].to_numpy(), b["b_hi"].to_numpy(),
                                       alpha)
            m["truth"]["records"] = int(len(k))
            if len(k):
                lines[name] = (float(b["b_star"].median()), float(b["b_lo"].min()), float(b["b_hi"].max()))
        elif "b_base" in bounds:  # the base classifier's own flip
            flip = bounds.drop_duplicates("record")["b_base"].dropna()
            if len(flip):
                lines[name] = (float(flip.median()), float(flip.min()), float(flip.max()))
        metrics[name] = m
        rows.append(pd.DataFrame({"config": name, "test_index": augmented["test_index"], "value": values[:, 0],
                                  **sets}))
    figures = {1: ["base"] + [c.name for c in configs if c.figure == 1], 4: [c.name for c in configs if c.figure == 4]}
    return ApeResults(pd.concat(rows), edges, counts, metrics, figures, lines)


def run_boundary(model, augmented: dict, meta: dict, params: dict, certified: dict) -> tuple[pd.DataFrame, dict]:
    """b* (``pipeline.tabular.boundary``) for a seeded sample of ``ape.boundary.records`` records
    of D_t,1 at every sigma of the APE experiment, and, for the sigmas of Table 1, what Avg. R
    is made of on the sampled records that ``certified`` (the certify tables by sigma) certifies
    positive: their radius, their distance to b* along the sensitive axis (an upper bound on
    the l2 radius of g) and Cohen et al.'s cap sigma * PhiInv(alpha^(1/N)) (all N votes for 1).
    Intervals: percentile bootstrap over the sampled records; on B - b*, also each record's
    Monte Carlo interval (the bootstrap of its lower and of its upper end)."""
    cfg, sm, unit = params["ape"]["boundary"], params["smoothing"], meta["sensitive"]
    K = len(augmented["values"])
    rng = np.random.default_rng(derive_seed(params["seed"], SAMPLE))
    sample = np.sort(rng.choice(K, min(cfg["records"], K), replace=False))
    sigmas = sorted({float(s) for s in sm["sigmas"]} | {float(params["ape"]["ablation"]["sigma"])})
    flip = boundary.base_flip(model, augmented["records"][sample], meta, cfg)
    tables, metrics = [], {"records": int(len(sample)), "threshold": meta["threshold"],
                           "base": {"located": int(np.isfinite(flip).sum())}}
    if np.isfinite(flip).any():
        metrics["base"]["b_star_median"] = float(np.nanmedian(flip))
    seed, reps, B = params["seed"], params["bootstrap"], meta["threshold"]
    for sigma in sigmas:
        t = boundary.locate(model, augmented["records"][sample], sigma, meta, cfg, params["seed"],
                            select(params["compute"]["device"]))
        t.insert(0, "sigma", sigma)
        t.insert(1, "record", sample)
        t.insert(2, "test_index", augmented["test_index"][sample])
        t.insert(3, "value", augmented["values"][sample, 0])
        t["b_base"] = flip
        tables.append(t)
        ok = t[t["located"]]
        if ok.empty:  # p-hat does not cross 1/2 inside the searched range for any record
            metrics[token("sigma", sigma)] = {"located": 0, "draws": int(t["draws"].iloc[0])}
            continue
        gap, half = B - ok["b_star"].to_numpy(), ((ok["b_hi"] - ok["b_lo"]) / 2).to_numpy()
        m = {"located": int(len(ok)), "draws": int(t["draws"].iloc[0]),
             "b_star_median": float(np.median(ok["b_star"])), "b_star_q05": float(np.quantile(ok["b_star"], 0.05)),
             "b_star_q95": float(np.quantile(ok["b_star"], 0.95)),
             "threshold_minus_b_star_median": float(np.median(gap)),
             "halfwidth_median": float(np.median(half)), "halfwidth_max": float(half.max()),
             "halfwidth_target_met": float((half <= cfg["halfwidth"] + 1e-12).mean())}
        # the median's interval over records, each record at the far end of its own b* interval
        far = {"low": B - ok["b_hi"].to_numpy(), "high": B - ok["b_lo"].to_numpy()}
        for end, values in far.items():
            bounds = bootstrap_interval(lambda i: np.median(values[i]), len(values), seed, reps)
            m[f"threshold_minus_b_star_median_{end}"] = bounds[0] if end == "low" else bounds[1]
        if sigma in [float(s) for s in sm["sigmas"]]:
            c = certified[next(s for s in sm["sigmas"] if float(s) == sigma)].set_index("idx")
            rows = c.loc[ok["test_index"]]
            pos = (rows["predict"] == 1).to_numpy()
            radius = rows["radius_units"].to_numpy()[pos]
            distance = (ok["value"] - ok["b_star"]).to_numpy()[pos]
            cap = sigma * norm.ppf(sm["alpha"] ** (1 / sm["n"])) * meta["sensitive_std"]
            m.update({"certified_positive": int(pos.sum()), f"avg_radius_{unit}": float(radius.mean()),
                      f"distance_to_b_star_{unit}": float(distance.mean()), f"radius_cap_{unit}": float(cap),
                      "at_cap_share": float((radius >= cap - 1e-6).mean())})
            _interval(m, f"avg_radius_{unit}", lambda i: radius[i].mean(), len(radius), seed, reps)
            _interval(m, f"distance_to_b_star_{unit}", lambda i: distance[i].mean(), len(distance), seed, reps)
        metrics[token("sigma", sigma)] = m
    return pd.concat(tables, ignore_index=True), metrics
