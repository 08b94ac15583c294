"""Section 6 protocol: BREP-MI against the base target, its smoothed versions and MID targets.

The defended model answers every query with a label (the always-return-a-label protocol of
Section 7.2). Smoothed (``sigma``, ``n``): the majority vote of the target over n noisy copies,
fresh Gaussian noise of standard deviation sigma (pixel units, images in [0, 1]) per query,
from the one smoothing engine (``Smooth.vote``). MID (``beta``; Wang, Zhang and Jia, AAAI 2021):
the argmax of the VIB target's logits, its bottleneck sampled anew for every query.

Per configuration (``summarise``): ASR = the share of attacks whose reconstruction the
evaluator labels as the attacked class (top-1; top-5 with at least 10 classes), beside its
chance baseline ``asr_no_attack`` (the same evaluator on the attack's start, a prior sample the
defended model labels as the class: what the prior gives with no optimisation) and the lift
between them; the recovery metrics of ``pipeline.attacks.recovery`` for reconstructions and
starts; how attacks ended (no start, no reconstruction, stopped by budget); accuracy on one
image per private class (the one the target is most confident of, as in the paper) and on the
private test split, flagged ``at_chance`` when the test accuracy's interval reaches chance.
Rates carry Wilson 95% intervals, the lift and the mean distances percentile-bootstrap ones
over attacks (paired: an attack's start and reconstruction stay together).

Work units, each a task of ``pipeline.core.compute.map_rows`` (local or Ray): one configuration,
its start search and then its attacks in lockstep (``attack_configurations``). Every random
stream (latent starts, sphere points, the defense's noise) is seeded by the seed, the
configuration and the attack alone, so the results do not depend on the backend, the worker
count or the order in which tasks run.
"""
from __future__ import annotations

import copy
from typing import Callable

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..attacks import brepmi
from ..attacks.recovery import TOP, recovery
from ..core.compute import map_rows
from ..core.device import on, select
from ..core.seeds import derive_seed as stream
from ..core.metrics import token
from ..core.training import logits, predict
from ..defenses.release import RandomizedResponse, demo_secret
from ..smoothing import Smooth
from ..smoothing.stats import bootstrap_interval, wilson_interval

STARTS, NOISE, WALK, ACCURACY = range(4)  # the random streams (``stream(seed, STARTS, configuration)``, ...)


def configs(sigmas: list[float], ns: list[int], betas: list[float], dp_epsilons: list[float] = (),
            rr_epsilons: list[float] = (), n_effect: dict | None = None) -> list[dict]:
    """The grid: base, then smoothed (every sigma x N, then the N grid at ``n_effect['sigma']``
    where not in it already), then MID (every beta), then the baselines: DP-SGD (every epsilon)
    and randomized response (every epsilon, fresh and keyed)."""
    smoothed = [(s, n) for s in sigmas for n in ns]
    if n_effect:
        smoothed += [(n_effect["sigma"], n) for n in n_effect["ns"] if (n_effect["sigma"], n) not in smoothed]
    return ([{"name": "base"}]
            + [{"name": f"rp.{token('sigma', s)}.{token('n', n)}", "sigma": s, "n": n} for s, n in smoothed]
            + [{"name": f"mid.{token('beta', b)}", "beta": b} for b in betas]
            + [{"name": f"dpsgd.{token('epsilon', e)}", "dpsgd": e} for e in dp_epsilons]
            + [{"name": f"rr.{token('epsilon', e)}.{mode}", "rr": e, "keyed": mode == "keyed"}
               for e in rr_epsilons for mode in ("fresh", "keyed")])


def labeller(models: dict, config: dict, classes: int, seed: int, chunk: int,
             device: torch.device | str = "cpu") -> Callable[[torch.Tensor], np.ndarray]:
    """Hard labels of ``config``'s model: the base target (``models['target']``), its smoothed
    version (majority vote, noise seeded by ``seed``), the MID model ``models['mid'][beta]``
    (bottleneck samples seeded by ``seed``), the DP-SGD model ``models['dpsgd'][epsilon]``, or the
    target's label through randomized response (fresh randomness seeded by ``seed``, or keyed by
    ``models['secret']``). Every model runs on ``device`` (a copy there, as the smoothing engine
    makes; MID's bottleneck noise from a generator there); the labels come back as numpy."""
    if "rr" in config:
        target = on(models["target"], device)
        return RandomizedResponse(lambda x: predict(target, x), classes, config["rr"], seed,
                                  config["keyed"], models["secret"]).labels
    if "dpsgd" in config:
        private = on(models["dpsgd"][config["dpsgd"]], device)
        return lambda x: predict(private, x)
    if "sigma" in config:
        smooth = Smooth(models["target"], classes, config["sigma"], noise="fresh", seed=seed, chunk=chunk, device=device)
        return lambda x: smooth.vote(x, config["n"])
    if "beta" in config:
        model = on(models["mid"][config["beta"]], device)
        model.generator = torch.Generator(device).manual_seed(seed)
        return lambda x: predict(model, x)
    target = on(models["target"], device)
    return lambda x: predict(target, x)


def most_confident(target: nn.Module, x: np.ndarray, y: np.ndarray, classes: int) -> np.ndarray:
    """Per class, the index of its image with the highest target softmax probability for it."""
    p = torch.softmax(logits(target, x), dim=1).numpy()
    return np.array([np.flatnonzero(y == c)[p[y == c, c].argmax()] for c in range(classes)])


def generate(G: nn.Module, device: torch.device | str = "cpu") -> Callable[[torch.Tensor], torch.Tensor]:
    """Images of latents (drawn anywhere, moved to ``device``) from a copy of ``G`` on ``device``
    with channels-last weights: its transposed convolutions run about twice as fast on the CPU.
    The images come back contiguous, on ``device``."""
    G = copy.deepcopy(G).eval().to(device, memory_format=torch.channels_last)

    @torch.inference_mode()
    def run(z):
        return G(torch.as_tensor(z, dtype=torch.float32).to(device)).contiguous()
    return run


def attack_configurations(start: int, stop: int, *, G: nn.Module, models: dict, configs: list[dict],
                          cfg: brepmi.Config, targets: int, restarts: int, z_dim: int, classes: int, seed: int,
                          chunk: int, device: str = "cpu") -> list[tuple]:
    """Task: configurations [start, stop), each: the latent starts of every class
    (``brepmi.initial_latents``; latents drawn from the seed alone, the defense's noise from
    stream (STARTS, configuration)), then its attacks (class-major: class 0's restarts first) in
    lockstep (``brepmi.attacks``; the defense's noise from stream (NOISE, configuration), the
    sphere points of attack (c, k) from stream (WALK, c, k), so every configuration is attacked
    along the same random walk). Returns per configuration (records, start images,
    reconstructions, queries spent finding the starts); NaN images where there is none. The
    generator and the defended model run on ``device`` (a ``compute.device`` value, resolved
    where the task runs); the latents and sphere points are drawn on the CPU, the same everywhere."""
    engine = select(device)
    gen_images = generate(G, engine)
    shape = tuple(gen_images(torch.zeros(1, z_dim)).shape[1:])
    out = []
    for i in range(start, stop):
        oracle = brepmi.Oracle(labeller(models, configs[i], classes, stream(seed, STARTS, i), chunk, engine))
        found = brepmi.initial_latents(gen_images, oracle, list(range(targets)), restarts, z_dim, cfg,
                                       torch.Generator().manual_seed(seed))
        plan = [(c, k, found[c][k]) for c in range(targets) for k in range(restarts) if k < len(found[c])]
        attack = brepmi.Oracle(labeller(models, configs[i], classes, stream(seed, NOISE, i), chunk, engine))
        done = {(c, k): r for (c, k, _), r in zip(plan, brepmi.attacks(
            gen_images, attack, [z for _, _, z in plan], [c for c, _, _ in plan], cfg,
            [torch.Generator().manual_seed(stream(seed, WALK, c, k)) for c, k, _ in plan]))}
        records, firsts = [], np.full((targets * restarts, *shape), np.nan, np.float32)
        images = firsts.copy()
        for j, (c, k) in enumerate((c, k) for c in range(targets) for k in range(restarts)):
            r = done.get((c, k))
            records.append({"target": c, "restart": k, "found_start": r is not None, "growths": 0, "iterations": 0,
                            "rejected": 0, "queries": 0, "radius": 0.0, "stop": "no start"})
            if r is not None:
                records[-1].update(growths=r.growths, iterations=r.iterations, rejected=r.rejected, queries=r.queries,
                                   radius=r.radius, stop=r.stop)
                firsts[j] = gen_images(torch.from_numpy(r.start)[None])[0].cpu().numpy()
                if r.reconstruction is not None:
                    images[j] = gen_images(torch.from_numpy(r.reconstruction)[None])[0].cpu().numpy()
        out.append((records, firsts, images, oracle.queries))
    return out


def run_attacks(G: nn.Module, models: dict, configs: list[dict], cfg: brepmi.Config, targets: int, restarts: int,
                z_dim: int, classes: int, seed: int, chunk: int, compute: dict,
                progress: bool = True) -> list[tuple[list[dict], np.ndarray, np.ndarray, int]]:
    """``attack_configurations`` for every configuration, one task each on ``compute``'s backend
    (locally: spread over the worker processes, one torch thread each) and ``compute.device``."""
    return [r for part in map_rows(attack_configurations, len(configs), {**compute, "chunk": 1}, "BREP-MI",
                                   progress, "configuration", spread=True, G=G, models=models, configs=configs, cfg=cfg,
                                   targets=targets, restarts=restarts, z_dim=z_dim, classes=classes, seed=seed,
                                   chunk=chunk, device=compute.get("device", "cpu")) for r in part]


def judge(evaluator: nn.Module, images: np.ndarray, targets: np.ndarray, data: dict) -> pd.DataFrame:
    """``recovery`` of the images that exist (not NaN) among ``images``, one row per attack
    (rows without an image: label -1, no hit, distances NaN)."""
    has = ~np.isnan(images.reshape(len(images), -1)).any(axis=1)
    r = recovery(evaluator, images[has], targets[has], data["train_x"], data["train_y"], data["public_x"])
    out = pd.DataFrame({"label": -1, "success": False, "top5": False, "knn": np.nan, "centroid": np.nan,
                        "private": -1, "public": -1, "private_distance": np.nan, "public_distance": np.nan,
                        "nearer_private": False}, index=range(len(images)))
    for k, v in r.items():
        out.loc[has, k] = v
    out.loc[has, "success"] = r["label"] == targets[has]
    return out


def _rate(metrics: dict, name: str, hits: np.ndarray, level: float = 0.95) -> None:
    """``name`` = the share of ``hits``, with its Wilson interval."""
    k, n = int(np.sum(hits)), len(hits)
    lo, hi = wilson_interval(k, n, level)
    metrics.update({name: k / n if n else float("nan"), f"{name}_low": float(lo), f"{name}_high": float(hi)})


def _mean(metrics: dict, name: str, values: np.ndarray, seed: int, reps: int) -> None:
    """``name`` = the mean of ``values`` (NaN left out), with its bootstrap interval over them."""
    v = values[np.isfinite(values)]
    lo, hi = bootstrap_interval(lambda i: v[i].mean(), len(v), seed, reps) if len(v) else (float("nan"),) * 2
    metrics.update({name: float(v.mean()) if len(v) else float("nan"), f"{name}_low": lo, f"{name}_high": hi})


def _change(metrics: dict, name: str, hits: np.ndarray, other: np.ndarray, seed: int, reps: int) -> None:
    """``name`` = the mean of ``hits`` minus that of ``other`` (hits of the same attack slots:
    the same attack before and after, or the same class and restart, hence the same sphere
    points, under two configurations), with a paired bootstrap interval: slot j of both is
    resampled together. The difference is significant at 95% when the interval excludes 0."""
    gain = hits - other
    lo, hi = bootstrap_interval(lambda i: gain[i].mean(), len(gain), seed, reps)
    metrics.update({name: float(gain.mean()), f"{name}_low": lo, f"{name}_high": hi})


def summarise(records: pd.DataFrame, start: pd.DataFrame, end: pd.DataFrame, classes: int, seed: int,
              reps: int) -> dict:
    """The attack half of a configuration's metrics (see the module docstring) from its
    ``records`` (``attack_rows``) and the ``judge`` rows of its starts and reconstructions."""
    m = {"attacks": len(records)}
    _rate(m, "asr", end["success"].to_numpy())
    _rate(m, "asr_no_attack", start["success"].to_numpy())
    _change(m, "lift", end["success"].to_numpy(float), start["success"].to_numpy(float), seed, reps)
    if classes >= 2 * TOP:
        _rate(m, "asr_top5", end["top5"].to_numpy())
        _rate(m, "asr_top5_no_attack", start["top5"].to_numpy())
    for name, frame in (("", end), ("_no_attack", start)):
        _mean(m, f"knn_distance{name}", frame["knn"].to_numpy(), seed, reps)
        _mean(m, f"feature_distance{name}", frame["centroid"].to_numpy(), seed, reps)
        _rate(m, f"nearer_private{name}", frame["nearer_private"].to_numpy()[frame["label"].to_numpy() >= 0])
    m.update(reconstructions=int((end["label"] >= 0).sum()), no_start=int((~records["found_start"]).sum()),
             no_reconstruction=int(((end["label"] < 0) & records["found_start"]).sum()),
             stopped_by_budget=int((records["stop"] == "budget").sum()),
             queries_mean=float(records["queries"].mean()), growths_mean=float(records["growths"].mean()))
    return m


def utility(labels: Callable, data: dict, top: np.ndarray, classes: int) -> dict:
    """Accuracy on the most confident image per class and on the private test split (Wilson
    intervals), chance (1 / classes) and ``at_chance``: 1 when the test accuracy's interval
    reaches down to chance (the model no longer works; a low ASR there is no protection)."""
    m = {"chance": 1 / classes}
    _rate(m, "accuracy", labels(data["train_x"][top]) == np.arange(classes))
    _rate(m, "accuracy_test", labels(data["test_x"]) == data["test_y"])
    m.update(accuracy_images=classes, accuracy_test_images=len(data["test_y"]),
             at_chance=int(m["accuracy_test_low"] <= m["chance"]))
    return m


def held_out(evaluator: nn.Module, data: dict, targets: int, seed: int, reps: int) -> dict:
    """The recovery metrics of the private test images of the attacked classes, real images of
    the class that the target never saw: what a perfect reconstruction would score (the
    evaluator's accuracy is the ceiling of ASR; ``nearer_private`` the ceiling of that share)."""
    keep = data["test_y"] < targets
    r = recovery(evaluator, data["test_x"][keep], data["test_y"][keep], data["train_x"], data["train_y"],
                 data["public_x"])
    m = {"images": int(keep.sum())}
    _rate(m, "accuracy", r["label"] == data["test_y"][keep])
    _rate(m, "nearer_private", r["nearer_private"])
    _mean(m, "knn_distance", r["knn"], seed, reps)
    _mean(m, "feature_distance", r["centroid"], seed, reps)
    return m


def run_grid(G: nn.Module, target: nn.Module, mids: dict, evaluator: nn.Module, data: dict, class_names: list,
             params: dict, progress: bool = True, private: dict | None = None) -> tuple[dict, pd.DataFrame, dict]:
    """The whole Section 6 grid (``configs`` of the ``inversion`` and ``mid`` params) measured:
    per configuration its metrics (``summarise``, ``utility``, queries spent on the starts, the
    ASR change against the base model and against the first N; ``held_out``: the reference);
    every attack's record with its judgement (one row each, in configuration order); and the
    content of ``pipeline.reporting.plots.inversion_comparison``: the private training image of
    each attacked class (the target's most confident one), the private and public images, and
    per configuration the reconstructions (attacks, C, H, W), their judgement and ASR.
    ``private``: the DP-SGD models by epsilon (none: no DP-SGD rows)."""
    b, grid, seed = params["brepmi"], params["inversion"], params["seed"]
    classes, device = len(class_names), select(params["compute"]["device"])
    models = {"target": target, "mid": mids, "dpsgd": private or {}, "secret": demo_secret(seed)}
    cfg = brepmi.Config(**{k: v for k, v in b.items() if k not in ("targets", "restarts")})
    top = most_confident(target, data["train_x"], data["train_y"], classes)
    grid_configs = configs(grid["sigmas"], grid["ns"], params["mid"]["betas"], list(private or {}),
                           params["randomized_response"]["epsilons"], params["n_effect"]["images"])
    results = run_attacks(G, models, grid_configs, cfg, b["targets"], b["restarts"], params["gan"]["z_dim"], classes,
                          seed, grid["chunk"], params["compute"], progress)
    targets = np.repeat(np.arange(b["targets"]), b["restarts"])
    metrics, rows = {}, []
    figure = {"private": data["train_x"][top[:b["targets"]]], "classes": [str(c) for c in class_names[:b["targets"]]],
              "train_x": data["train_x"], "public_x": data["public_x"], "restarts": b["restarts"], "rows": {}}
    for i, (spec, (records, firsts, images, init_queries)) in enumerate(zip(grid_configs, results)):
        config = spec["name"]
        df, start, end = pd.DataFrame(records), judge(evaluator, firsts, targets, data), judge(evaluator, images,
                                                                                               targets, data)
        labels = labeller(models, spec, classes, stream(seed, ACCURACY, i), grid["chunk"], device)
        metrics[config] = {**summarise(df, start, end, classes, seed, params["bootstrap"]), "init_queries": int(init_queries),
                           **utility(labels, data, top, classes)}
        rows.append(pd.concat([df, end.add_prefix("evaluator_").rename(columns={"evaluator_success": "success"}),
                               start[["label", "success"]].add_prefix("start_")], axis=1).assign(config=config))
        if "dpsgd" in spec or "rr" in spec:  # the figure shows the paper's grid; the baselines are in the frontier
            continue
        figure["rows"][config] = {"images": images, "judged": end, "asr": metrics[config]["asr"],
                                  "at_chance": metrics[config]["at_chance"],
                                  "missing": np.where(df["found_start"], "no image", "no start")}
    metrics["held_out"] = held_out(evaluator, data, b["targets"], seed, params["bootstrap"])
    attacks = pd.concat(rows)
    hits = {config: frame["success"].to_numpy(float) for config, frame in attacks.groupby("config", sort=False)}
    for spec in grid_configs[1:]:
        config = spec["name"]
        _change(metrics[config], "asr_change", hits[config], hits["base"], seed, params["bootstrap"])
        if spec.get("n", grid["ns"][0]) != grid["ns"][0]:
            first = f"rp.{token('sigma', spec['sigma'])}.{token('n', grid['ns'][0])}"
            _change(metrics[config], f"asr_change_vs_{token('n', grid['ns'][0])}", hits[config], hits[first], seed,
                    params["bootstrap"])
    return metrics, attacks[["config", *attacks.columns.drop("config")]], figure
