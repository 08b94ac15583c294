"""Section 6 protocol: BREP-MI against the base target and against its smoothed version.

The defended model answers every query with a label (the always-return-a-label protocol of
Section 7.2): the majority vote of the target over N noisy copies, fresh Gaussian noise of
standard deviation sigma (pixel units, images in [0, 1]) per query, from the one smoothing
engine (``Smooth.vote``; each call gets new noise). ASR = fraction of attacks whose
reconstruction the evaluator labels as the attacked class (top-1); accuracy is measured as in
the paper (one image per private class, the one the target is most confident of) and on the
private test split.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from . import brepmi, nets
from .smoothing import Smooth


def name(sigma: float | None, n: int | None) -> str:
    return "base" if sigma is None else f"sigma={sigma:g},N={n}"


def labeller(target: nn.Module, classes: int, sigma: float | None, n: int | None, seed: int,
             chunk: int) -> Callable[[torch.Tensor], np.ndarray]:
    """Hard labels of the base target (sigma None) or of its smoothed version (majority vote)."""
    if sigma is None:
        return lambda x: nets.predict(target, x)
    smooth = Smooth(target, classes, sigma, noise="fresh", seed=seed, chunk=chunk)
    return lambda x: smooth.vote(x, n)


def most_confident(target: nn.Module, x: np.ndarray, y: np.ndarray, classes: int) -> np.ndarray:
    """Per class, the index of its image with the highest target softmax probability for it."""
    p = torch.softmax(nets.logits(target, x), dim=1).numpy()
    return np.array([np.flatnonzero(y == c)[p[y == c, c].argmax()] for c in range(classes)])


def generate(G: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    @torch.inference_mode()
    def run(z):
        return G(torch.as_tensor(z, dtype=torch.float32))
    return run


def attack_seed(seed: int, target: int, restart: int) -> int:
    return int(np.random.SeedSequence([seed, target, restart]).generate_state(1, np.uint64)[0] >> 1)


def run(G: nn.Module, labels: Callable, evaluator: nn.Module, cfg: brepmi.Config, targets: int,
        restarts: int, z_dim: int, seed: int, desc: str = "") -> tuple[list[dict], np.ndarray, int]:
    """Every attack of one configuration: records, reconstructions (targets, restarts, C, H, W;
    zeros where there is none) and the queries spent finding the starts. The random streams
    (starts, sphere points) depend only on the seed, class and restart, not on the model."""
    gen_images = generate(G)
    oracle = brepmi.Oracle(labels)
    starts = brepmi.initial_latents(gen_images, oracle, list(range(targets)), restarts, z_dim, cfg,
                                    torch.Generator().manual_seed(seed))
    init_queries = oracle.queries
    shape = tuple(gen_images(torch.zeros(1, z_dim)).shape[1:])
    images = np.zeros((targets, restarts, *shape), dtype=np.float32)
    records = []
    with tqdm(total=targets * restarts, desc=desc or "attacks", mininterval=1.0) as bar:
        for c in range(targets):
            for k in range(restarts):
                rec = {"target": c, "restart": k, "found_start": k < len(starts[c]), "success": False,
                       "growths": 0, "iterations": 0, "rejected": 0, "queries": 0, "radius": 0.0,
                       "stop": "no start", "evaluator_label": -1}
                if k < len(starts[c]):
                    r = brepmi.attack(gen_images, oracle, starts[c][k], c, cfg,
                                      torch.Generator().manual_seed(attack_seed(seed, c, k)))
                    rec.update(growths=r.growths, iterations=r.iterations, rejected=r.rejected,
                               queries=r.queries, radius=r.radius, stop=r.stop)
                    if r.reconstruction is not None:
                        img = gen_images(torch.from_numpy(r.reconstruction)[None])
                        images[c, k] = img[0].numpy()
                        rec["evaluator_label"] = int(nets.predict(evaluator, img)[0])
                        rec["success"] = rec["evaluator_label"] == c
                records.append(rec)
                bar.update()
    return records, images, init_queries
