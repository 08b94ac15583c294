"""Section 6 protocol: BREP-MI against the base target, its smoothed versions and MID targets.

The defended model answers every query with a label (the always-return-a-label protocol of
Section 7.2). Smoothed (``sigma``, ``n``): the majority vote of the target over n noisy copies,
fresh Gaussian noise of standard deviation sigma (pixel units, images in [0, 1]) per query,
from the one smoothing engine (``Smooth.vote``). MID (``beta``; Wang, Zhang and Jia, AAAI 2021):
the argmax of the VIB target's logits, its bottleneck sampled anew for every query. ASR = fraction of attacks
whose reconstruction the evaluator labels as the attacked class (top-1); accuracy is measured
as in the paper (one image per private class, the one the target is most confident of) and
on the private test split.

Work units, each a task of ``pipeline.core.compute.map_rows`` (local or Ray): the start search of
one configuration (``find_starts``), then one attack = configuration x class x restart
(``attack_rows``). Every random stream (latent starts, sphere points, the defense's noise)
is seeded by (seed, configuration, class, restart) alone, so the results do not depend on the
backend, the worker count or the order in which tasks run.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..attacks import brepmi
from ..core.compute import map_rows
from ..core.seeds import derive_seed as stream
from ..core.metrics import token
from ..core.training import logits, predict
from ..smoothing import Smooth

STARTS, NOISE, WALK, ACCURACY = range(4)  # the random streams (``stream(seed, STARTS, configuration)``, ...)


def configs(sigmas: list[float], ns: list[int], betas: list[float]) -> list[dict]:
    """The grid: base, then smoothed (every sigma x N), then MID (every beta)."""
    return ([{"name": "base"}]
            + [{"name": f"rp.{token('sigma', s)}.{token('n', n)}", "sigma": s, "n": n} for s in sigmas for n in ns]
            + [{"name": f"mid.{token('beta', b)}", "beta": b} for b in betas])


def labeller(models: dict, config: dict, classes: int, seed: int, chunk: int) -> Callable[[torch.Tensor], np.ndarray]:
    """Hard labels of ``config``'s model: the base target (``models['target']``), its smoothed
    version (majority vote, noise seeded by ``seed``) or the MID model ``models['mid'][beta]``
    (bottleneck samples seeded by ``seed``)."""
    if "sigma" in config:
        smooth = Smooth(models["target"], classes, config["sigma"], noise="fresh", seed=seed, chunk=chunk)
        return lambda x: smooth.vote(x, config["n"])
    if "beta" in config:
        model = models["mid"][config["beta"]]
        model.generator = torch.Generator().manual_seed(seed)
        return lambda x: predict(model, x)
    return lambda x: predict(models["target"], x)


def most_confident(target: nn.Module, x: np.ndarray, y: np.ndarray, classes: int) -> np.ndarray:
    """Per class, the index of its image with the highest target softmax probability for it."""
    p = torch.softmax(logits(target, x), dim=1).numpy()
    return np.array([np.flatnonzero(y == c)[p[y == c, c].argmax()] for c in range(classes)])


def generate(G: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    @torch.inference_mode()
    def run(z):
        return G(torch.as_tensor(z, dtype=torch.float32))
    return run


def find_starts(start: int, stop: int, *, G: nn.Module, models: dict, configs: list[dict], cfg: brepmi.Config,
                targets: int, restarts: int, z_dim: int, classes: int, seed: int, chunk: int) -> list[tuple]:
    """Task: for configurations [start, stop), the latent starts of every class
    (``brepmi.initial_latents``, latents drawn from the seed alone) and the queries spent."""
    out = []
    for i in range(start, stop):
        oracle = brepmi.Oracle(labeller(models, configs[i], classes, stream(seed, STARTS, i), chunk))
        starts = brepmi.initial_latents(generate(G), oracle, list(range(targets)), restarts, z_dim, cfg,
                                        torch.Generator().manual_seed(seed))
        out.append((starts, oracle.queries))
    return out


def attack_rows(start: int, stop: int, *, G: nn.Module, models: dict, evaluator: nn.Module, configs: list[dict],
                plan: list[tuple], cfg: brepmi.Config, classes: int, seed: int, chunk: int) -> list[tuple]:
    """Task: attacks [start, stop) of ``plan`` (configuration index, class, restart, start
    latent or None). Returns (record, reconstruction image or None) per attack."""
    gen_images = generate(G)
    out = []
    for i, c, k, z0 in plan[start:stop]:
        rec = {"target": c, "restart": k, "found_start": z0 is not None, "success": False, "growths": 0,
               "iterations": 0, "rejected": 0, "queries": 0, "radius": 0.0, "stop": "no start", "evaluator_label": -1}
        image = None
        if z0 is not None:
            oracle = brepmi.Oracle(labeller(models, configs[i], classes, stream(seed, NOISE, i, c, k), chunk))
            r = brepmi.attack(gen_images, oracle, z0, c, cfg, torch.Generator().manual_seed(stream(seed, WALK, c, k)))
            rec.update(growths=r.growths, iterations=r.iterations, rejected=r.rejected, queries=r.queries,
                       radius=r.radius, stop=r.stop)
            if r.reconstruction is not None:
                image = gen_images(torch.from_numpy(r.reconstruction)[None])
                rec["evaluator_label"] = int(predict(evaluator, image)[0])
                rec["success"] = rec["evaluator_label"] == c
                image = image[0].numpy()
        out.append((rec, image))
    return out


def run_attacks(G: nn.Module, models: dict, evaluator: nn.Module, configs: list[dict], cfg: brepmi.Config, targets: int,
        restarts: int, z_dim: int, classes: int, seed: int, chunk: int, compute: dict,
        progress: bool = True) -> list[tuple[list[dict], np.ndarray, int]]:
    """Every attack of every configuration, one task each on ``compute``'s backend. Per
    configuration: records, reconstructions (targets, restarts, C, H, W; zeros where there is
    none) and the queries spent finding the starts. The sphere points of an attack depend only
    on the seed, class and restart, so configurations are compared on the same random walk."""
    tasks = {**compute, "chunk": 1}  # one configuration / one attack per task
    common = dict(G=G, models=models, configs=configs, cfg=cfg, classes=classes, seed=seed, chunk=chunk)
    found = [r for part in map_rows(find_starts, len(configs), tasks, "BREP-MI starts", progress, "configuration",
                                     targets=targets, restarts=restarts, z_dim=z_dim, **common) for r in part]
    plan = [(i, c, k, starts[c][k] if k < len(starts[c]) else None)
            for i, (starts, _) in enumerate(found) for c in range(targets) for k in range(restarts)]
    done = [r for part in map_rows(attack_rows, len(plan), tasks, "BREP-MI attacks", progress, "attack",
                                    evaluator=evaluator, plan=plan, **common) for r in part]
    shape = tuple(generate(G)(torch.zeros(1, z_dim)).shape[1:])
    per = targets * restarts
    results = []
    for i, (_, init_queries) in enumerate(found):
        images = np.zeros((targets, restarts, *shape), dtype=np.float32)
        for j, (_, image) in enumerate(done[i * per:(i + 1) * per]):
            if image is not None:
                images[j // restarts, j % restarts] = image
        results.append(([rec for rec, _ in done[i * per:(i + 1) * per]], images, init_queries))
    return results


def captions(records: list[dict]) -> list[str]:
    """Per attack, what its tile shows: the evaluator's label of the reconstruction, or why
    there is none (no start found; the walk stopped before its first radius growth)."""
    return [f"eval {r['evaluator_label']}" if r["evaluator_label"] >= 0
            else "no start" if not r["found_start"] else f"no image ({r['stop']})" for r in records]


def run_grid(G: nn.Module, target: nn.Module, mids: dict, evaluator: nn.Module, data: dict, class_names: list,
             params: dict, progress: bool = True) -> tuple[dict, pd.DataFrame, dict]:
    """The whole Section 6 grid (``configs`` of the ``inversion`` and ``mid`` params) measured:
    per configuration ASR over its ``attacks``, accuracy on the most confident image per class
    (``accuracy_images``) and on the private test split (``accuracy_test_images``), queries,
    growths, starts found and stops by budget; every attack's record (one row each, in
    configuration order); and the comparison figure's content for
    ``pipeline.reporting.plots.inversion_comparison``: the private training image of each
    attacked class (the target's most confident one) and per configuration its reconstructions
    (targets, restarts, C, H, W), whether each exists, its caption and success flag."""
    b, grid, seed = params["brepmi"], params["inversion"], params["seed"]
    classes = len(class_names)
    models = {"target": target, "mid": mids}
    cfg = brepmi.Config(**{k: v for k, v in b.items() if k not in ("targets", "restarts")})
    top = most_confident(target, data["train_x"], data["train_y"], classes)
    grid_configs = configs(grid["sigmas"], grid["ns"], params["mid"]["betas"])
    results = run_attacks(G, models, evaluator, grid_configs, cfg, b["targets"], b["restarts"],
                          params["gan"]["z_dim"], classes, seed, grid["chunk"], params["compute"], progress)
    metrics, rows = {}, []
    shape = (b["targets"], b["restarts"])
    figure = {"private": data["train_x"][top[:b["targets"]]], "classes": [str(c) for c in class_names[:b["targets"]]],
              "rows": {}}
    for i, (spec, (records, images, init_queries)) in enumerate(zip(grid_configs, results)):
        config = spec["name"]
        labels = labeller(models, spec, classes, stream(seed, ACCURACY, i), grid["chunk"])
        df = pd.DataFrame(records)
        metrics[config] = {
            "asr": float(df["success"].mean()), "attacks": len(df),
            "accuracy": float((labels(data["train_x"][top]) == np.arange(classes)).mean()), "accuracy_images": classes,
            "accuracy_test": float((labels(data["test_x"]) == data["test_y"]).mean()),
            "accuracy_test_images": len(data["test_y"]),
            "queries_mean": float(df["queries"].mean()), "init_queries": int(init_queries),
            "growths_mean": float(df["growths"].mean()), "starts_found": float(df["found_start"].mean()),
            "stopped_by_budget": float((df["stop"] == "budget").mean())}
        rows.append(df.assign(config=config)[["config", *records[0]]])
        figure["rows"][config] = {"images": images, "asr": metrics[config]["asr"],
                                  "has_image": (df["evaluator_label"] >= 0).to_numpy().reshape(shape),
                                  "ok": df["success"].to_numpy().reshape(shape),
                                  "captions": np.array(captions(records), dtype=object).reshape(shape)}
    return metrics, pd.concat(rows), figure
