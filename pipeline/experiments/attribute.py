"""The Scenario I experiment (Robust Privacy paper, Section 3): the label-only attribute attack
against the base classifier and the served smoothed classifier (PREDICT, abstentions visible)
at every sigma, compared with Definition 2's certified sets, and the repeated-query averaging
attacker against fresh and keyed noise (``pipeline.attacks.attribute``)."""
from __future__ import annotations

import os

import numpy as np
import pandas as pd

from ..attacks import attribute as attack
from ..core.metrics import token
from ..smoothing import ABSTAIN, Smooth, clopper_pearson_interval
from ..smoothing.stats import bootstrap_interval
from ..tabular import ape


def service_secret(cfg: dict, seed: int) -> tuple[bytes, str]:
    """The keyed-noise secret from the environment variable ``cfg['secret_env']`` and where it
    came from; without it a demo secret derived from ``seed`` (reproducible, not secret)."""
    secret = os.environ.get(cfg["secret_env"], "").encode()
    return (secret, "env") if secret else (f"robust-privacy demo secret {seed}".encode(), "default")


def _intervals(lo: np.ndarray, hi: np.ndarray, truth: np.ndarray, seed: int, reps: int) -> dict:
    """95% intervals on ``attack.interval_summary``'s width (percentile bootstrap over victims)
    and coverage (Clopper-Pearson)."""
    found, width = np.isfinite(lo), hi - lo
    covered = int((found & (lo <= truth) & (truth <= hi)).sum())
    low, high = bootstrap_interval(lambda i: np.median(width[i][found[i]]) if found[i].any() else np.nan, len(lo),
                                   seed, reps)
    c_low, c_high = clopper_pearson_interval(covered, len(lo))
    return {"width_median_low": low, "width_median_high": high, "coverage_low": float(c_low),
            "coverage_high": float(c_high)}


def run_attribute_attack(model, data: dict, meta: dict, certified: pd.DataFrame, params: dict,
                         secret: bytes) -> tuple[dict, pd.DataFrame, dict]:
    """Metrics (overall and per served model), the attacker's interval per victim and served
    model, and the repeated-query interval widths per (served model, noise mode) over K.
    ``certified``: the ``ape`` stage's records, indexed by (config, test_index)."""
    cfg, sm, seed = params["attribute_attack"], params["smoothing"], params["seed"]
    B, s = meta["threshold"], meta["sensitive_index"]
    idx = attack.victims(data["test_raw"], B, cfg["near"], cfg["records"], seed)
    truth, records = data["test_raw"][idx], data["test_x"][idx]
    grid = attack.sweep(data["train_raw"].min(), data["train_raw"].max(), cfg["step"], B)
    sweep = ape.Augmented(records, np.hstack([truth[:, None], np.broadcast_to(grid, (len(idx), len(grid)))]), s, meta)
    near = np.abs(truth - B) <= cfg["near"]  # the averaging attacker's victims: near the threshold
    own = ape.Augmented(records[near], truth[near, None], s, meta)[0:int(near.sum())]
    on_grid = ape.Augmented(records[near], np.broadcast_to(grid, (int(near.sum()), len(grid))), s, meta)

    metrics, rows, widths = {}, [], {}
    for sigma in [None] + [float(x) for x in sm["sigmas"]]:
        name = "base" if sigma is None else token("sigma", sigma)
        if sigma is None:
            answers, cost = ape.base_predictions(model, sweep), 1
        else:
            served = Smooth(model, 2, sigma, noise=cfg["noise"], seed=seed, chunk=sm["chunk"], progress=True,
                            secret=secret)
            answers, cost = served.predict(sweep, sm["n"], sm["alpha"]).reshape(sweep.values.shape), sm["n"]
        released, answers = answers[:, 0], answers[:, 1:]
        lo, hi = attack.hull(grid, answers == released[:, None])
        m = {**attack.interval_summary(lo, hi, truth), **_intervals(lo, hi, truth, seed, params["bootstrap"]),
             "queries": int(sweep.values.size),
             "noisy_evaluations": int(sweep.values.size * cost), "released_abstain_rate": float(np.mean(released == ABSTAIN))}
        if sigma is not None:
            sets = certified.loc[name].reindex(idx)
            m.update(attack.certified_differences(grid, answers, released, sets["ir_lo"].to_numpy(),
                                                  sets["i_lo"].to_numpy()))
            repeated = attack.repeated_queries(model, sigma, own, on_grid, grid, truth[near], cfg["serve_n"],
                                               cfg["repeats"], cfg["calibration"], seed, sm["chunk"], secret)
            m["repeat"] = {mode: {token("k", k): {"width_median": s["width_median"], "coverage": s["coverage"]}
                                  for k, s in by_k.items()} for mode, by_k in repeated.items()}
            for mode, by_k in repeated.items():
                widths[name, mode] = [by_k[k]["width_median"] for k in cfg["repeats"]]
        metrics[name] = m
        rows.append(pd.DataFrame({"config": name, "test_index": idx, "value": truth, "released": released,
                                  "lo": lo, "hi": hi}))
    overall = {"threshold": B, "victims": int(len(idx)), "victims_near_threshold": int(near.sum()),
               "grid_values": int(len(grid)), **metrics}
    return overall, pd.concat(rows), widths
