"""The Scenario I experiment (Robust Privacy paper, Section 3): the label-only attribute attack
against the base classifier and the served smoothed classifier (PREDICT, abstentions visible)
at every sigma, compared with Definition 2's certified sets, and the repeated-query averaging
attacker against fresh and keyed noise (``pipeline.attacks.attribute``). The baselines face the
same attacks: each DP-SGD model (Scenario I), and randomized response on the base label, fresh
and keyed (Scenario I and the averaging attacker)."""
from __future__ import annotations

import os

import numpy as np
import pandas as pd

from ..attacks import attribute as attack
from ..core.device import select
from ..core.metrics import token
from ..core.seeds import derive_seed
from ..core.training import predict
from ..defenses.release import RandomizedResponse, demo_secret
from ..smoothing import ABSTAIN, PREDICT, SELECT, Smooth, clopper_pearson_interval
from ..smoothing.stats import bootstrap_interval, wilson_interval
from ..tabular import ape


RR_STREAM = 5  # randomized response's random streams: derive_seed(seed, RR_STREAM, configuration, role)


def service_secret(cfg: dict, seed: int) -> tuple[bytes, str]:
    """The keyed-noise secret from the environment variable ``cfg['secret_env']`` and where it
    came from; without it a demo secret derived from ``seed`` (reproducible, not secret)."""
    secret = os.environ.get(cfg["secret_env"], "").encode()
    return (secret, "env") if secret else (demo_secret(seed), "default")


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


def _repeat_metrics(intervals: dict, truth: np.ndarray, seed: int, reps: int) -> dict:
    """{mode: {k_<K>: interval_summary and its intervals}} of ``averaging_attack``'s intervals."""
    return {mode: {token("k", k): {**attack.interval_summary(lo, hi, truth), **_intervals(lo, hi, truth, seed, reps)}
                   for k, (lo, hi) in by_k.items()} for mode, by_k in intervals.items()}


def _protocol(answers: np.ndarray, grid: np.ndarray, truth: np.ndarray, seed: int, reps: int) -> dict:
    """Scenario I's interval when the service releases ``answers`` (victim's value first, then the
    grid), with the intervals of ``_intervals`` and how often the victim's own answer abstains."""
    lo, hi = attack.hull(grid, answers[:, 1:] == answers[:, :1])
    return {**attack.interval_summary(lo, hi, truth), **_intervals(lo, hi, truth, seed, reps),
            "released_abstain_rate": float(np.mean(answers[:, 0] == ABSTAIN))}


def _utility(labels: np.ndarray, truth: np.ndarray) -> dict:
    """Test accuracy of the released labels with its Wilson 95% interval."""
    hits = int((labels == truth).sum())
    lo, hi = wilson_interval(hits, len(truth))
    return {"test_accuracy": hits / len(truth), "test_accuracy_low": float(lo), "test_accuracy_high": float(hi)}


def served_configs(params: dict, private: dict) -> list[tuple[str, dict]]:
    """(name, spec) of every served classifier: base, RP per sigma, DP-SGD per epsilon,
    randomized response per epsilon (fresh, keyed)."""
    rr = params["randomized_response"]["epsilons"]
    return ([("base", {})] + [(token("sigma", float(x)), {"sigma": float(x)}) for x in params["smoothing"]["sigmas"]]
            + [(f"dpsgd.{token('epsilon', e)}", {"dpsgd": e}) for e in private]
            + [(f"rr.{token('epsilon', e)}.{mode}", {"rr": e, "keyed": mode == "keyed"}) for e in rr
               for mode in ("fresh", "keyed")])


def run_attribute_attack(model, data: dict, meta: dict, certified: pd.DataFrame, params: dict,
                         secret: bytes, private: dict | None = None) -> tuple[dict, pd.DataFrame, dict]:
    """Metrics (overall and per served model), the attacker's interval per victim and served
    model, and the repeated-query interval widths per (served model, noise mode) over K.
    ``certified``: the ``ape`` stage's records, indexed by (config, test_index); ``private``:
    the DP-SGD models by epsilon (Scenario I against each; no repeated queries: deterministic)."""
    cfg, sm, seed = params["attribute_attack"], params["smoothing"], params["seed"]
    private = private or {}
    B, s = meta["threshold"], meta["sensitive_index"]
    idx, truth, grid, sweep = attack.queries(data, meta, cfg["near"], cfg["step"], cfg["records"], seed)
    records = data["test_x"][idx]
    near = np.abs(truth - B) <= cfg["near"]  # the averaging attacker's victims: near the threshold
    own = ape.Augmented(records[near], truth[near, None], s, meta)[0:int(near.sum())]
    on_grid = ape.Augmented(records[near], np.broadcast_to(grid, (int(near.sum()), len(grid))), s, meta)
    test_x, test_y = data["test_x"], data["test_y"]
    grid_labels = ape.base_predictions(model, on_grid)  # what the averaging attacker learns of randomized response

    metrics, rows, widths = {}, [], {}
    device = select(params["compute"]["device"])
    for i, (name, spec) in enumerate(served_configs(params, private)):
        repeated, utility, protocols = None, {}, {}
        if "sigma" in spec:
            sigma = spec["sigma"]
            served = Smooth(model, 2, sigma, noise=cfg["noise"], seed=seed, chunk=sm["chunk"], progress=True,
                            secret=secret, device=device)
            counts, counts0 = served.counts_passes(sweep, [(sm["n"], PREDICT, 0), (sm["n0"], SELECT, 0)])
            protocols = {k: v.reshape(sweep.values.shape)
                         for k, v in attack.released(counts, counts0, sm["alpha"], sigma).items()}
            answers, cost = protocols["predict"], sm["n"]
            repeated = attack.repeated_queries(model, sigma, own, on_grid, grid, cfg["serve_n"], cfg["repeats"],
                                               cfg["calibration"], seed, sm["chunk"], secret, device)
        elif "rr" in spec:
            release = lambda keyed, stream: RandomizedResponse(  # noqa: E731
                lambda x: predict(model, x, None), 2, spec["rr"], derive_seed(seed, RR_STREAM, i, stream), keyed, secret)
            served = release(spec["keyed"], 0)
            answers, cost = served.labels(sweep[0:len(sweep)].numpy()).reshape(sweep.values.shape), 1
            repeated = attack.repeated_queries_rr(grid_labels, own.numpy(),
                                                  release(spec["keyed"], 1), grid, cfg["repeats"])
            utility = _utility(release(spec["keyed"], 2).labels(test_x), test_y)
        else:
            served_model = private.get(spec.get("dpsgd"), model)
            answers, cost = ape.base_predictions(served_model, sweep), 1
            utility = _utility(predict(served_model, test_x, None), test_y)
        released, answers = answers[:, 0], answers[:, 1:]
        lo, hi = attack.hull(grid, answers == released[:, None])
        m = {**attack.interval_summary(lo, hi, truth), **_intervals(lo, hi, truth, seed, params["bootstrap"]),
             "queries": int(sweep.values.size), "noisy_evaluations": int(sweep.values.size * cost),
             "released_abstain_rate": float(np.mean(released == ABSTAIN)), **utility}
        if protocols:  # the interval under every release protocol (``answers``: PREDICT's)
            m["protocol"] = {k: _protocol(v, grid, truth, seed, params["bootstrap"]) for k, v in protocols.items()}
        if "sigma" in spec:
            sets = certified.loc[name].reindex(idx)
            m.update(attack.certified_differences(grid, answers, released, sets["ir_lo"].to_numpy(),
                                                  sets["i_lo"].to_numpy()))
        if repeated is not None:
            m["repeat"] = _repeat_metrics(repeated, truth[near], seed, params["bootstrap"])
            for mode, by_k in m["repeat"].items():
                widths[name, mode] = [tuple(by_k[token("k", k)][f"width_median{part}"] for part in ("", "_low", "_high"))
                                      for k in cfg["repeats"]]
        metrics[name] = m
        rows.append(pd.DataFrame({"config": name, "test_index": idx, "value": truth, "released": released,
                                  "lo": lo, "hi": hi}))
    overall = {"threshold": B, "victims": int(len(idx)), "victims_near_threshold": int(near.sum()),
               "grid_values": int(len(grid)), **metrics}
    return overall, pd.concat(rows), widths
