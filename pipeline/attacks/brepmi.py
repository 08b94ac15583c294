"""BREP-MI: label-only model inversion by boundary repulsion (Kahla et al., CVPR 2022), as in the
authors' code (``brep_mi.py``, ``config2.yaml``), plus a query budget and exact query counts.

The attacker sees only hard labels: ``labels(images) -> np.ndarray`` (any classifier: the base
model, the smoothed model of paper Section 6, another defense). One query = one image labelled.
In the latent space of a generator G, for a target class c:

1. Start: the first random latents z ~ N(0, I) clamped to [-clamp, clamp], drawn in batches of
   ``init_batch``, whose image the model labels c (``initial_latents``; one per restart).
2. Each iteration at radius r: ``points`` latents z + u_i with u_i uniform on the sphere of
   radius r; if at least ``grow_at`` of them are labelled c, r <- r * ``expansion`` (the image
   at this growth is the current reconstruction). Repulsion-only direction
   g = mean_i(-1[label_i != c] u_i) / r (r after any growth, as in the official code), step
   min(r / ``step_divisor``, ``max_step``), z' = clamp(z + step g). If G(z') is not labelled c the
   step is rejected and the iteration is repeated (the official ``break`` to the outer loop:
   it does not count towards ``max_iters_at_radius``); otherwise z <- z'.
3. Stop after ``max_iters_at_radius`` accepted iterations without growth (growth iterations do
   not count either, as in the official code), or when the next iteration would exceed
   ``max_queries``. The reconstruction is G(z) after the accepted step of the last iteration
   that grew the radius; an attack that never grew has none, and counts as a failure (the
   official ``last_success_on_eval`` stays False).

Devices: the walk (latents, sphere points, steps) stays on the CPU, drawn from CPU generators,
so its random stream is the same everywhere; ``G`` takes those latents, runs wherever it was put
(``pipeline.experiments.inversion.generate``: on ``compute.device``) and hands its images to the
labeller, whose labels come back as numpy.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch


@dataclass(frozen=True)
class Config:
    points: int = 32
    radius: float = 2.0
    expansion: float = 1.3
    grow_at: int = 29
    clamp: float = 1.5
    step_divisor: float = 3.0
    max_step: float = 3.0
    max_iters_at_radius: int = 1000
    max_queries: int = 10 ** 9
    init_batch: int = 256
    max_init_batches: int = 100


class Oracle:
    """Hard-label access that counts every image it labels."""

    def __init__(self, labels: Callable[[torch.Tensor], np.ndarray]):
        self.labels, self.queries = labels, 0

    def __call__(self, images: torch.Tensor) -> np.ndarray:
        self.queries += len(images)
        return np.asarray(self.labels(images))


@dataclass
class Result:
    target: int
    start: np.ndarray
    reconstruction: np.ndarray | None  # latent after the accepted step of the last growth
    radius: float                      # final sphere radius
    growths: int
    iterations: int                    # accepted iterations that did not grow the radius
    rejected: int                      # steps whose point left the class
    queries: int
    stop: str                          # "converged" (max_iters_at_radius) or "budget"
    path: list[np.ndarray] = field(default_factory=list)  # every accepted latent, in order


def initial_latents(G: Callable, oracle: Oracle, targets: list[int], restarts: int, z_dim: int,
                    cfg: Config, gen: torch.Generator) -> dict[int, list[np.ndarray]]:
    """Per target class, the first ``restarts`` random latents (in draw order) labelled as it.
    Classes not found within ``max_init_batches`` batches get fewer (possibly none)."""
    found: dict[int, list[np.ndarray]] = {c: [] for c in targets}
    for _ in range(cfg.max_init_batches):
        z = torch.randn(cfg.init_batch, z_dim, generator=gen).clamp(-cfg.clamp, cfg.clamp)
        for zi, label in zip(z.numpy(), oracle(G(z))):
            if int(label) in found and len(found[int(label)]) < restarts:
                found[int(label)].append(zi)
        if all(len(v) == restarts for v in found.values()):
            break
    return found


def sphere(z: torch.Tensor, count: int, radius: float, gen: torch.Generator) -> torch.Tensor:
    """``count`` directions uniform on the sphere of ``radius`` (normalised Gaussians)."""
    u = torch.randn(count, *z.shape, generator=gen)
    return u * (radius / u.flatten(1).norm(dim=1)).view(-1, *[1] * z.dim())


def attack(G: Callable, oracle: Oracle, start: np.ndarray, target: int, cfg: Config,
           gen: torch.Generator) -> Result:
    """One BREP-MI attack on class ``target`` from latent ``start`` (labelled ``target``)."""
    return attacks(G, oracle, [start], [target], cfg, [gen])[0]


class _Walk:
    """The state of one attack between iterations."""

    def __init__(self, start: np.ndarray, target: int, cfg: Config):
        self.start, self.target = np.asarray(start), target
        self.z = torch.as_tensor(start, dtype=torch.float32)
        self.radius, self.it, self.last_growth = float(cfg.radius), 0, 0
        self.growths = self.rejected = self.queries = 0
        self.reconstruction, self.path, self.stop = None, [self.z.numpy().copy()], None

    def result(self) -> Result:
        return Result(self.target, self.start, self.reconstruction, self.radius, self.growths, self.it,
                      self.rejected, self.queries, self.stop, self.path)


def attacks(G: Callable, oracle: Oracle, starts: list[np.ndarray], targets: list[int], cfg: Config,
            gens: list[torch.Generator]) -> list[Result]:
    """BREP-MI attacks in lockstep: attack i on class ``targets[i]`` from latent ``starts[i]``,
    its sphere points drawn from ``gens[i]``. Each round, every attack still running makes one
    iteration, and the round's queries go to ``oracle`` as two batches (all the sphere points,
    then all the candidate steps). Every attack takes exactly the steps it would take alone;
    only the batching of the queries (one call instead of one per attack) differs."""
    walks = [_Walk(z, c, cfg) for z, c in zip(starts, targets)]
    while True:
        for w in walks:
            if w.stop is None and w.it - w.last_growth >= cfg.max_iters_at_radius:
                w.stop = "converged"
            elif w.stop is None and w.queries + cfg.points + 1 > cfg.max_queries:
                w.stop = "budget"
        live = [(w, g) for w, g in zip(walks, gens) if w.stop is None]
        if not live:
            return [w.result() for w in walks]
        steps = [min(w.radius / cfg.step_divisor, cfg.max_step) for w, _ in live]  # the radius before any growth
        us = [sphere(w.z, cfg.points, w.radius, g) for w, g in live]
        labels = oracle(G(torch.cat([w.z + u for (w, _), u in zip(live, us)])))
        candidates, grown = [], []
        for j, ((w, _), u, step) in enumerate(zip(live, us, steps)):
            inside = labels[j * cfg.points:(j + 1) * cfg.points] == w.target
            grew = int(inside.sum()) >= cfg.grow_at
            if grew:
                w.radius *= cfg.expansion
                w.last_growth = w.it
                w.growths += 1
            weight = torch.from_numpy(inside.astype(np.float32) - 1.0)  # 0 inside, -1 outside
            direction = (weight.view(-1, *[1] * w.z.dim()) * u).mean(dim=0) / w.radius
            candidates.append((w.z + step * direction).clamp(-cfg.clamp, cfg.clamp))
            grown.append(grew)
        kept = oracle(G(torch.stack(candidates)))
        for (w, _), candidate, grew, label in zip(live, candidates, grown, kept):
            w.queries += cfg.points + 1
            if label != w.target:  # the step left the class: rejected, the iteration is repeated
                w.rejected += 1
                continue
            w.z = candidate
            w.path.append(w.z.numpy().copy())
            if grew:
                w.reconstruction = w.z.numpy().copy()
                continue
            w.it += 1
