"""Latency overhead of the output-perturbation defense per released output.

    .venv/bin/python bench/perturbation_latency.py [--outputs 2000] [--classes 10] [--repeats 5] [--json]

The defense is "Crafting privacy-preserving adversarial examples: a defense against membership
inference" (ACL 2025), as pipeline/defenses/perturbation.py implements it (docs/membership.md).

An overfit MLP (d = 20 -> 128 -> 128 -> classes) on Gaussian classes with 20% label noise is
the target; a second one, trained the same way on other data, is the defender's shadow model
(risk evaluator fitted on its members and non-members, epsilon calibrated on them). Timed, on
``--outputs`` queries (half members, half not), best of ``--repeats``: the model's forward pass
alone, and forward pass + defense. Reported: microseconds per output for both, the overhead,
and the fraction perturbed. That paper reports a 10-15% overhead on BERT-size models, whose
forward pass is far costlier than this MLP's, so the relative figure here is an upper bound
for larger models and the absolute one (µs per output) is what transfers (docs/performance.md).
The last line is one JSON object.
"""
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._args import int_at_least, parser as make_parser, positive_int, report  # noqa: E402
from pipeline.core.cli import execute  # noqa: E402
from pipeline.defenses.perturbation import OutputPerturbation, RiskEvaluator  # noqa: E402


def data(rng, centres, n):
    y = rng.integers(0, len(centres), n)
    x = centres[y] + rng.normal(size=(n, centres.shape[1]))
    y = np.where(rng.random(n) < 0.2, rng.integers(0, len(centres), n), y)
    return torch.tensor(x, dtype=torch.float32), torch.tensor(y)


def overfit(x, y, classes, seed, epochs=300):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(x.shape[1], 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, classes))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(epochs):
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


def best_of(repeats, fn):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def build_parser():
    parser = make_parser(__doc__)
    parser.add_argument("--outputs", type=int_at_least(2), default=2000,
                        help="released outputs timed, half the target's training records, half not")
    parser.add_argument("--classes", type=int_at_least(2), default=10, help="classes of the Gaussian task")
    parser.add_argument("--repeats", type=positive_int, default=5, help="timed runs; the best is reported")
    parser.add_argument("--threads", type=positive_int, default=1, help="torch threads")
    parser.add_argument("--json", action="store_true", help="print only the JSON line")
    return parser


def run(args) -> None:
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    centres = rng.normal(scale=1.2, size=(args.classes, 20))
    half = args.outputs // 2
    t_in, t_out, d_in, d_out = (data(rng, centres, half) for _ in range(4))
    target = overfit(*t_in, args.classes, seed=0)
    shadow = overfit(*d_in, args.classes, seed=1)
    with torch.no_grad():
        s_in, s_out = shadow(d_in[0]).double().numpy(), shadow(d_out[0]).double().numpy()
    evaluator = RiskEvaluator.fit(s_in, d_in[1].numpy(), s_out, d_out[1].numpy())
    defense = OutputPerturbation(evaluator).calibrate(np.concatenate([s_in, s_out]),
                                                      np.concatenate([d_in[1].numpy(), d_out[1].numpy()]))
    x = torch.cat([t_in[0], t_out[0]])
    y = torch.cat([t_in[1], t_out[1]]).numpy()

    def forward():
        with torch.no_grad():
            return target(x).double().numpy()

    def defended():
        return defense(forward(), y)

    defended()  # warm-up
    base, full = best_of(args.repeats, forward), best_of(args.repeats, defended)
    release = defended()
    result = {"outputs": len(x), "classes": args.classes, "threads": args.threads, "epsilon": defense.epsilon,
              "tau": defense.tau, "model_us_per_output": 1e6 * base / len(x),
              "defended_us_per_output": 1e6 * full / len(x),
              "overhead_us_per_output": 1e6 * (full - base) / len(x),
              "overhead_relative": (full - base) / base, **release.summary()}
    report(result, args.json)


if __name__ == "__main__":
    execute(run, build_parser())
