"""The price and the effect of N on the tabular task (revised Robust Privacy paper, arXiv
2601.17360v2: at fixed sigma a larger N strengthens privacy and improves utility together, at a
higher per-query cost). At ``n_effect.tabular.sigma``, for every N of its grid, the service
answers with N noisy evaluations per query (PREDICT with abstentions visible, and the majority
vote of the same N draws):

* utility: test accuracy of both answers (an abstention counts wrong) on the first
  ``test_records`` of the test split, Wilson 95% intervals;
* privacy: Scenario I (``pipeline.attacks.attribute``) against both, on ``victims`` drawn as the
  attribute attack draws its own, over its grid: median interval width (bootstrap) and coverage
  (Clopper-Pearson);
* cost: noisy evaluations per query (N), and the wall time per answered query, measured here
  and returned apart from the metrics (it varies between runs and machines; MLflow logs it).
"""
from __future__ import annotations

import time

from ..attacks import attribute as attack
from ..core.device import select
from ..core.metrics import token
from ..smoothing import PREDICT, Smooth, predict_from_counts
from .attribute import _protocol, _utility


def run_n_effect(model, data: dict, meta: dict, params: dict, progress: bool = True) -> tuple[dict, dict]:
    """Metrics per N (``n_<N>``: ``utility`` and ``scenario_i`` per answer, ``noisy_evaluations_per_query``)
    and the measured seconds per answered query per N."""
    cfg, sm, att, seed = params["n_effect"]["tabular"], params["smoothing"], params["attribute_attack"], params["seed"]
    idx, truth, grid, sweep = attack.queries(data, meta, att["near"], att["step"], cfg["victims"], seed)
    served = Smooth(model, 2, cfg["sigma"], seed=seed, chunk=sm["chunk"], progress=progress,
                    device=select(params["compute"]["device"]))
    metrics, seconds = {"sigma": float(cfg["sigma"]), "victims": int(len(idx))}, {}
    for key, n in enumerate(cfg["ns"]):
        test_counts = served.counts(data["test_x"][:cfg["test_records"]], n, PREDICT, key=2 * key)
        start = time.perf_counter()
        counts = served.counts(sweep, n, PREDICT, key=2 * key + 1)
        seconds[token("n", n)] = (time.perf_counter() - start) / len(sweep)
        answers = {"predict": predict_from_counts(counts, sm["alpha"]), "vote": counts.argmax(axis=1)}
        tests = {"predict": predict_from_counts(test_counts, sm["alpha"]), "vote": test_counts.argmax(axis=1)}
        metrics[token("n", n)] = {
            "noisy_evaluations_per_query": int(n),
            **{kind: {**_utility(tests[kind], data["test_y"][:cfg["test_records"]]),
                      **_protocol(a.reshape(sweep.values.shape), grid, truth, seed, params["bootstrap"])}
               for kind, a in answers.items()}}
    return metrics, seconds
