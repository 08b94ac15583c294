"""BREP-MI throughput at the official budgets, on synthetic CelebA-shaped data (no data set needed).

    .venv/bin/python bench/brepmi.py                      # CPU: 64x64 RGB, 1,000 classes
    python bench/brepmi.py --device cuda --attacks 100    # on a GPU (torch, numpy, scipy, pyyaml, tqdm only)

The attack is ``pipeline.attacks.brepmi.attacks`` as the invert stage runs it (Kahla et al., "Label-Only
Model Inversion Attacks via Boundary Repulsion", CVPR 2022: 32 sphere points and one candidate step per
iteration, attacks in lockstep), against the target architecture ``--arch`` at ``--size`` with
``--classes`` outputs, through its DCGAN-style generator (both initialised from a fixed seed: the
cost of a query does not depend on the weights). Each attack starts from a latent the target labels
as its class and runs ``--rounds`` iterations (a query budget of 33 per round), timed.

``attacks_per_minute_at_most`` is the official budget's rate: the authors' attack stops only after
1,000 accepted iterations without growth of the radius (no query budget), so one attack takes at
least 1,000 rounds; growths and rejected steps add more. The last line is one JSON object, with
the device named.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._args import parser as make_parser, positive_int  # noqa: E402
from pipeline.attacks import brepmi  # noqa: E402
from pipeline.core.cli import execute  # noqa: E402
from pipeline.core.device import CHOICES, describe, select  # noqa: E402
from pipeline.vision import nets  # noqa: E402

OFFICIAL_ITERATIONS = 1000  # config2.yaml: max_iters_at_radius, the least rounds an official attack runs
Z_DIM = 100


def build_parser():
    parser = make_parser(__doc__)
    parser.add_argument("--attacks", type=positive_int, default=10, help="attacks in lockstep (one class each)")
    parser.add_argument("--rounds", type=positive_int, default=20, help="iterations timed per attack")
    parser.add_argument("--classes", type=positive_int, default=1000, help="outputs of the target (CelebA: 1,000)")
    parser.add_argument("--size", type=int, choices=(16, 32, 64), default=64, help="image side in pixels")
    parser.add_argument("--arch", choices=nets.ARCHS, default="small",
                        help="the target's architecture (target.arch; the official profiles: facenet64)")
    parser.add_argument("--device", choices=CHOICES, default="auto", help="where the networks run")
    parser.add_argument("--json", action="store_true", help="print only the JSON line")
    return parser


def run(args) -> None:
    device = select(args.device, "--device")
    torch.manual_seed(0)
    G = nets.generator(3, args.size, Z_DIM).eval().to(device, memory_format=torch.channels_last)
    target = nets.build("target", args.arch, 3, args.size, args.classes).eval().to(device)

    @torch.inference_mode()
    def images(z: torch.Tensor) -> torch.Tensor:
        return G(z.to(device)).contiguous()

    @torch.inference_mode()
    def labels(x: torch.Tensor) -> np.ndarray:
        return target(x).argmax(dim=1).cpu().numpy()

    gen = torch.Generator().manual_seed(0)
    starts = torch.randn(args.attacks, Z_DIM, generator=gen).clamp(-1.5, 1.5)
    classes = labels(images(starts))  # each attack's class: the one its start is labelled
    cfg = brepmi.Config(max_iters_at_radius=10 ** 9, max_queries=(brepmi.Config.points + 1) * args.rounds)
    oracle = brepmi.Oracle(labels)
    brepmi.attacks(images, oracle, list(starts.numpy()[:1]), [int(classes[0])], brepmi.Config(max_queries=33), [gen])
    oracle.queries = 0  # the warm-up round is not timed
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    results = brepmi.attacks(images, oracle, list(starts.numpy()), [int(c) for c in classes], cfg,
                             [torch.Generator().manual_seed(i) for i in range(args.attacks)])
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - start
    rounds = max(r.iterations + r.growths + r.rejected for r in results)
    per_round = seconds / rounds
    result = {"device": describe(device), "image_shape": [3, args.size, args.size], "classes": args.classes,
              "arch": args.arch, "attacks": args.attacks, "rounds": rounds, "queries": oracle.queries, "seconds": seconds,
              "queries_per_second": oracle.queries / seconds, "seconds_per_round": per_round,
              "attacks_per_minute_at_most": 60 * args.attacks / (OFFICIAL_ITERATIONS * per_round)}
    if not args.json:
        print(f"{args.attacks} attacks x {rounds} rounds on {result['device']}: {oracle.queries / seconds:,.0f} "
              f"queries/s, {per_round * 1e3:.1f} ms per round; at the official budget (>= {OFFICIAL_ITERATIONS} "
              f"rounds an attack) at most {result['attacks_per_minute_at_most']:.2f} attacks per minute")
    print(json.dumps(result))


if __name__ == "__main__":
    execute(run, build_parser())
