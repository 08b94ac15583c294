"""Certification speed: Cohen et al.'s per-input procedure against the engine's two noise modes.

    .venv/bin/python bench/certify.py                  # table, then one JSON line
    .venv/bin/python bench/certify.py --json           # the JSON line only
    python bench/certify.py --device cuda              # on a GPU (torch, numpy, scipy, pyyaml, tqdm only)

The reference is Cohen, Rosenfeld and Kolter's CERTIFY ("Certified Adversarial Robustness via
Randomized Smoothing", ICML 2019) as their code runs it, one input at a time.
Uses the pipeline's trained model and test inputs when `make repro` has run (otherwise an
identically shaped model with a fixed seed and standard-normal inputs). Every contender gets
the same inputs, N0, N, alpha, sigma and torch thread count (threads: docs/performance.md).
``limit_us_per_input`` is a lower bound for evaluating the base classifier on N0 + N noisy
copies (1,100 by default): the FLOPs of one noisy evaluation (both dense layers) times
N0 + N, at this machine's measured dense matmul rate (a large product). ``fresh_floor_us_per_input``
is the fresh mode's floor, the two steps it cannot skip, each at its own measured rate: its
(N0 + N) x k standard normals per input from a generator seeded per input, and their first-layer
product z (sigma F)^T, (N0 + N) x k times k x h; both timed on one input's block, best of
several, on one thread, times the thread count (on the CPU). ``fresh_over_floor`` is the fresh
mode's time over it. Every contender runs on ``--device``
(the engine's ``device``, the reference loop's tensors), named in the output.
Agreement is the fraction of inputs on which a contender and the reference both abstain or
both certify the same class. ``agreement`` pairs them: the reference loop is fed the engine's
own noise (``Smooth.input_noise``), so any difference is the engine's doing, not Monte Carlo
luck. ``agreement_independent_*`` compares with the reference's own randn_like draws; it cannot
exceed ``agreement_baseline``, the agreement of two reference runs with different seeds.
"""
from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._args import parser as make_parser, positive_int, positive_number, probability  # noqa: E402
from pipeline.core.cli import execute  # noqa: E402
from pipeline.core.device import CHOICES, describe, select  # noqa: E402
from pipeline.core.io import read_npz  # noqa: E402
from pipeline.core.params import load_params  # noqa: E402
from pipeline.smoothing import ABSTAIN, ESTIMATE, SELECT, Smooth, clopper_pearson_lower  # noqa: E402
from pipeline.tabular.mlp import load_mlp, mlp  # noqa: E402


def reference_certify(model, x: torch.Tensor, sigma: float, n0: int, n: int, alpha: float,
                      batch: int = 1000, noise=None) -> np.ndarray:
    """Cohen et al.'s core.Smooth.certify, one input at a time (x.repeat + randn_like batches,
    np.bincount counts, Clopper-Pearson lower bound), as a user would otherwise run it.
    ``noise(i, stream, num)``, if given, supplies input i's num noise vectors instead of
    randn_like (the paired run: the reference fed the engine's own draws)."""
    def sample(i: int, stream: int, num: int) -> np.ndarray:
        counts = np.zeros(2, dtype=np.int64)
        given = noise(i, stream, num) if noise is not None else None
        for start in range(0, num, batch):
            size = min(batch, num - start)
            rows = x[i:i + 1].repeat((size, 1))
            eps = given[start:start + size].to(x.device) if given is not None else torch.randn_like(rows) * sigma
            counts += np.bincount(model(rows + eps).argmax(1).cpu().numpy(), minlength=2)
        return counts

    out = np.empty(len(x), dtype=np.int64)
    with torch.no_grad():
        for i in range(len(x)):
            top = int(sample(i, SELECT, n0).argmax())
            p_lower = clopper_pearson_lower(sample(i, ESTIMATE, n)[top], n, alpha)
            out[i] = top if p_lower >= 0.5 else ABSTAIN
    return out


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def best_seconds(fn, repeats: int, device: torch.device) -> float:
    """The shortest of ``repeats`` timed calls of ``fn`` on ``device``."""
    best = float("inf")
    for _ in range(repeats):
        sync(device)
        start = time.perf_counter()
        fn()
        sync(device)
        best = min(best, time.perf_counter() - start)
    return best


def matmul_gflops(device: torch.device) -> float:
    """Dense float32 matmul rate of ``device`` (best of several 2048x512x512 products)."""
    a, b = torch.randn(2048, 512, device=device), torch.randn(512, 512, device=device)
    return 2 * 2048 * 512 * 512 / best_seconds(lambda: a @ b, 20, device) / 1e9


def normals_per_second(device: torch.device, draws: int, width: int) -> float:
    """Standard normals per second as the fresh mode draws them: ``draws`` x ``width`` from a
    generator reseeded for every input (best of several blocks of 64 inputs)."""
    out, gen = torch.empty(draws, width, device=device), torch.Generator(device)

    def block():
        for i in range(64):
            torch.randn(out.shape, generator=gen.manual_seed(i), out=out)
    return 64 * draws * width / best_seconds(block, 5, device)


def product_rate(device: torch.device, draws: int, k: int, h: int) -> float:
    """Products per second of one input's first-layer product, z (draws x k) times (sigma F)^T
    (k x h), in the layout a plain ``z @ W.T`` takes (one thread on the CPU; best of several)."""
    z, w, out = torch.randn(draws, k, device=device), torch.randn(h, k, device=device), torch.empty(draws, h, device=device)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return 1 / best_seconds(lambda: torch.mm(z, w.T, out=out), 50, device)
    finally:
        torch.set_num_threads(threads)


def load_inputs(count: int, hidden: int) -> tuple[torch.nn.Sequential, torch.Tensor, str]:
    dataset, model_path = ROOT / "data/processed/dataset.npz", ROOT / "models/mlp.pt"
    if dataset.exists() and model_path.exists():
        x = torch.from_numpy(read_npz(dataset)["test_x"][:count])
        return load_mlp(model_path, x.shape[1], hidden), x, "pipeline model and test inputs"
    torch.manual_seed(0)
    return mlp(83, hidden).eval(), torch.randn(count, 83), "seeded model, standard-normal inputs"


def timed(fn, device: torch.device):
    sync(device)
    start = time.perf_counter()
    result = fn()
    sync(device)
    return result, time.perf_counter() - start


def build_parser():
    parser = make_parser(__doc__)
    parser.add_argument("--inputs", type=positive_int, default=2000, help="test inputs to certify")
    parser.add_argument("--sigma", type=positive_number, default=1.0, help="noise scale, standardised feature units")
    parser.add_argument("--n0", type=positive_int, default=100, help="selection draws per input (N0)")
    parser.add_argument("--n", type=positive_int, default=1000, help="estimation draws per input (N)")
    parser.add_argument("--alpha", type=probability, default=0.01, help="failure probability of each certificate")
    parser.add_argument("--chunk", type=positive_int, default=None,
                        help="engine chunk, noisy evaluations per vectorised batch; None: params.yaml smoothing.chunk")
    parser.add_argument("--device", choices=CHOICES, default="auto", help="where every contender runs (compute.device)")
    parser.add_argument("--json", action="store_true", help="print only the JSON line")
    return parser


def run(args) -> None:
    params = load_params(ROOT / "params.yaml")
    chunk = args.chunk or params["smoothing"]["chunk"]
    device = select(args.device, "--device")
    model, x, source = load_inputs(args.inputs, params["train"]["hidden"])
    model, x = model.to(device), x.to(device)
    warm = x[:64]  # one untimed call per contender first: allocations, thread start-up, caches
    reference_certify(model, warm, args.sigma, args.n0, args.n, args.alpha)
    torch.manual_seed(0)
    ref, t_ref = timed(lambda: reference_certify(model, x, args.sigma, args.n0, args.n, args.alpha), device)
    torch.manual_seed(1)  # a second, independent reference run: the Monte Carlo agreement floor
    baseline = float((reference_certify(model, x, args.sigma, args.n0, args.n, args.alpha) == ref).mean())
    rows, paired = {"reference": (ref, t_ref)}, {}
    for noise in ("fresh", "shared"):
        engine = Smooth(model, 2, args.sigma, noise=noise, seed=0, chunk=chunk, device=device)
        engine.certify(warm, args.n0, args.n, args.alpha, key=999)
        rows[noise] = timed(lambda: engine.certify(x, args.n0, args.n, args.alpha, key=0).prediction, device)
        draws = lambda i, stream, num: engine.input_noise(x[i], num, stream, key=0, position=i)  # noqa: E731
        paired[noise] = reference_certify(model, x, args.sigma, args.n0, args.n, args.alpha, noise=draws)
    d, h = x.shape[1], model[0].out_features
    flops = 2 * (d * h + h * 2) * (args.n0 + args.n)
    rate = matmul_gflops(device)
    k = engine.factor.shape[1]  # normals per noisy evaluation in the first-layer space (h < d) or d
    draw_rate = normals_per_second(device, args.n0 + args.n, k)
    products = product_rate(device, args.n0 + args.n, k, h)
    threads = torch.get_num_threads() if device.type == "cpu" else 1  # the fresh mode's chunks run on every thread
    floor_us = 1e6 * ((args.n0 + args.n) * k / draw_rate + 1 / products) / threads
    us = {k: 1e6 * t / len(x) for k, (_, t) in rows.items()}
    agree = {k: float((rows[k][0] == paired[k]).mean()) for k in ("fresh", "shared")}
    independent = {k: float((rows[k][0] == ref).mean()) for k in ("fresh", "shared")}
    result = {
        "device": describe(device), "inputs": len(x), "threads": torch.get_num_threads(), "chunk": chunk,
        "sigma": args.sigma,
        "reference_us_per_input": us["reference"], "fresh_us_per_input": us["fresh"],
        "shared_us_per_input": us["shared"], "speedup_fresh": us["reference"] / us["fresh"],
        "speedup_shared": us["reference"] / us["shared"], "agreement_fresh": agree["fresh"],
        "agreement_shared": agree["shared"], "agreement": min(agree.values()),
        "agreement_independent_fresh": independent["fresh"], "agreement_independent_shared": independent["shared"],
        "agreement_baseline": baseline,
        "matmul_gflops": rate, "limit_us_per_input": 1e6 * flops / (rate * 1e9),
        "normals_per_second": draw_rate, "first_layer_gflops": 2 * (args.n0 + args.n) * k * h * products / 1e9,
        "fresh_floor_us_per_input": floor_us, "fresh_over_floor": us["fresh"] / floor_us,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    if not args.json:
        print(f"{len(x)} inputs ({source}) on {result['device']}, sigma={args.sigma}, N0={args.n0}, N={args.n}, "
              f"alpha={args.alpha}, {result['threads']} threads, chunk {chunk}")
        print(f"{'contender':10s} {'us/input':>10s} {'speed-up':>9s} {'agreement':>10s} {'independent':>12s}")
        for k in rows:
            print(f"{k:10s} {us[k]:10.1f} {us['reference'] / us[k]:9.1f} {agree.get(k, 1.0):10.4f} "
                  f"{independent.get(k, 1.0):12.4f}")
        print(f"agreement of two independent reference runs (Monte Carlo floor): {baseline:.4f}")
        print(f"limit: {result['limit_us_per_input']:.1f} us/input ({flops / 1e6:.1f} MFLOP per input at "
              f"{rate:.0f} GFLOP/s); peak RSS {result['peak_rss_mb']:.0f} MB")
        print(f"fresh floor: {floor_us:.1f} us/input ({draw_rate / 1e6:.0f} M normals/s per thread, seeded per input, and "
              f"the first-layer product at {result['first_layer_gflops']:.0f} GFLOP/s per thread); "
              f"fresh is {result['fresh_over_floor']:.2f}x the floor")
    print(json.dumps(result))


if __name__ == "__main__":
    execute(run, build_parser())
