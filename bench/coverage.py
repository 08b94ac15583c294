"""Soundness audit: how often does the engine certify a wrong class or too large a radius?

    .venv/bin/python bench/coverage.py [--noise fresh|shared|keyed] [--trials 10000] [--json]

The base classifier is linear, f(x) = 1[w.x + b > 0], so its smoothed version is known in
closed form: p_A(x) = Phi(|w.x + b| / (sigma ||w||)), g(x) = f(x), and the true certified
radius is |w.x + b| / ||w||. Each trial certifies one input (margins spread so that p_A
covers [0.5, 0.999]); a false certification is a returned class other than g(x) or a radius
above the true one. Each trial of PREDICT likewise counts a returned class other than g(x).
Both rates must stay below alpha + 3 standard errors. In ``shared`` mode every trial is its
own call, so every trial sees its own bank: the guarantee audited is the per-input one. In
``keyed`` mode the noise comes from an HMAC of each (distinct) input under a fixed secret.
The noise modes and what the audit shows: docs/engine.md. The last line is one JSON object.
"""
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._args import nonnegative_int, positive_int, positive_number, probability  # noqa: E402
from bench._args import parser as make_parser  # noqa: E402
from pipeline.core.cli import execute  # noqa: E402
from pipeline.smoothing import ABSTAIN, Smooth  # noqa: E402


def linear_classifier(w: np.ndarray, b: float) -> torch.nn.Sequential:
    layer = torch.nn.Linear(len(w), 2)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor(np.stack([np.zeros_like(w), w]), dtype=torch.float32))
        layer.bias.copy_(torch.tensor([0.0, b]))
    return torch.nn.Sequential(layer)


def audit(noise: str, trials: int, alpha: float, sigma: float, n0: int, n: int, d: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    w, b = rng.normal(size=d), float(rng.normal())
    unit = w / np.linalg.norm(w)
    margins = rng.choice([-1, 1], trials) * rng.uniform(0, 3.1, trials) * sigma  # signed distances
    along = rng.normal(size=(trials, d))
    along -= (along @ unit)[:, None] * unit
    x = torch.tensor(along - b * w / (w @ w) + margins[:, None] * unit, dtype=torch.float32)
    truth, true_radius = (margins > 0).astype(int), np.abs(margins)
    smooth = Smooth(linear_classifier(w, b), 2, sigma, noise=noise, seed=seed, secret=b"audit %d" % seed)
    if noise != "shared":
        cert = smooth.certify(x, n0, n, alpha)
        prediction, radius, predicted = cert.prediction, cert.radius, smooth.predict(x, n, alpha)
    else:  # one call, hence one bank, per trial
        certs = [smooth.certify(x[i:i + 1], n0, n, alpha) for i in range(trials)]
        prediction = np.concatenate([c.prediction for c in certs])
        radius = np.concatenate([c.radius for c in certs])
        predicted = np.concatenate([smooth.predict(x[i:i + 1], n, alpha) for i in range(trials)])
    made = prediction != ABSTAIN
    false_cert = made & ((prediction != truth) | (radius > true_radius))
    wrong = (predicted != ABSTAIN) & (predicted != truth)
    se = float(np.sqrt(alpha * (1 - alpha) / trials))
    return {"noise": noise, "alpha": alpha, "trials": trials, "false_certification_rate": float(false_cert.mean()),
            "predict_error_rate": float(wrong.mean()), "bound": alpha + 3 * se,
            "abstention_rate": float((~made).mean())}


def build_parser():
    parser = make_parser(__doc__)
    parser.add_argument("--noise", choices=["fresh", "shared", "keyed"], default="fresh",
                        help="the engine's noise mode under audit")
    parser.add_argument("--trials", type=positive_int, default=10_000, help="inputs certified, one trial each")
    parser.add_argument("--alpha", type=probability, default=0.01, help="failure probability of each certificate")
    parser.add_argument("--sigma", type=positive_number, default=1.0, help="noise scale, input units")
    parser.add_argument("--n0", type=positive_int, default=100, help="selection draws per input (N0)")
    parser.add_argument("--n", type=positive_int, default=1000, help="estimation draws per input (N)")
    parser.add_argument("--dim", type=positive_int, default=10, help="input dimension of the linear classifier")
    parser.add_argument("--seed", type=nonnegative_int, default=0,
                        help="seed of the classifier, the inputs and the engine's noise")
    parser.add_argument("--json", action="store_true", help="print only the JSON line")
    return parser


def run(args) -> None:
    result = audit(args.noise, args.trials, args.alpha, args.sigma, args.n0, args.n, args.dim, args.seed)
    if not args.json:
        ok = max(result["false_certification_rate"], result["predict_error_rate"]) <= result["bound"]
        print(f"{args.noise} noise, {args.trials} trials, alpha={args.alpha}: false certifications "
              f"{result['false_certification_rate']:.4f}, wrong predictions {result['predict_error_rate']:.4f}, "
              f"bound {result['bound']:.4f}: {'within' if ok else 'ABOVE'} the bound")
    print(json.dumps(result))


if __name__ == "__main__":
    execute(run, build_parser())
