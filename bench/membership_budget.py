"""How many LiRA / RMIA reference models the `membership` stage can afford.

    .venv/bin/python bench/membership_budget.py [--models 3] [--budget 360] [--json]

The two costs that grow with the attacker (pipeline/experiments/membership.py,
docs/membership.md): training one reference model with the target's recipe (`target` in
params.yaml) on half the default population (the synthetic identities' train + test splits),
and serving one RP release of the whole population to the label-only attacks (records x
(queries + 1) x N noisy evaluations). Both are timed on one torch thread, as the stage runs them,
with the default params. Printed: seconds per reference model, seconds per served RP release,
and the largest number of reference models whose training, added to the stage's other work
(``--fixed`` seconds, measured on this machine: 151 s for the eleven defense rows), fits
``--budget`` seconds, locally and on ``--workers`` Ray workers (training is one task per model).
The last line is one JSON object.
"""
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._args import parser as make_parser, positive_int, positive_number, report  # noqa: E402
from pipeline.attacks.membership import NoiseRobustnessAttack  # noqa: E402
from pipeline.attacks.reference import inclusion  # noqa: E402
from pipeline.core.cli import execute  # noqa: E402
from pipeline.core.params import load_params  # noqa: E402
from pipeline.defenses.release import Smoothed  # noqa: E402
from pipeline.experiments.membership import train_references  # noqa: E402
from pipeline.vision.identities import identities  # noqa: E402
from pipeline.vision.images import split_private  # noqa: E402
from pipeline.vision.nets import BUILDERS  # noqa: E402


def build_parser():
    parser = make_parser(__doc__)
    parser.add_argument("--models", type=positive_int, default=3, help="reference models trained and timed")
    parser.add_argument("--budget", type=positive_number, default=360.0, help="the stage's budget in seconds")
    parser.add_argument("--fixed", type=positive_number, default=151.0,
                        help="seconds of the stage that do not grow with the reference models")
    parser.add_argument("--workers", type=positive_int, default=8, help="Ray workers for the cluster estimate")
    parser.add_argument("--json", action="store_true", help="print only the JSON line")
    return parser


def run(args) -> None:
    torch.set_num_threads(1)
    p = load_params()
    im, cfg = p["images"], p["membership"]
    x, y = identities(im["identities"], im["per_identity"], im["channels"], im["size"], p["seed"])
    d = split_private(x, y, np.arange(im["private"]), im["test_fraction"], im["train_fraction"], p["seed"])
    px, py = np.concatenate([d["train_x"], d["test_x"]]), np.concatenate([d["train_y"], d["test_y"]])
    keep = inclusion(args.models, len(py), 0)
    start = time.perf_counter()
    states = train_references(0, args.models, px, py, keep, im["private"], p["target"], p["seed"])
    per_model = (time.perf_counter() - start) / args.models
    model = BUILDERS["target"](im["channels"], im["size"], im["private"])
    model.load_state_dict(states[0])
    sigma, n = cfg["rp"]["sigmas"][0], cfg["rp"]["ns"][0]
    served = Smoothed(model.eval(), im["private"], sigma, n, 0, cfg["chunk"])
    noise = NoiseRobustnessAttack((cfg["label_only_sigmas"][0],), cfg["label_only_queries"], 0)
    start = time.perf_counter()
    noise.robustness(served.labels, px, py, noise.sigmas[0], stream=1)
    per_release = time.perf_counter() - start
    room = max(args.budget - args.fixed, 0.0)
    result = {"records": len(py), "epochs": p["target"]["epochs"], "batch_size": p["target"]["batch_size"],
              "seconds_per_reference_model": per_model, "seconds_per_rp_release": per_release,
              "rp_noisy_evaluations_per_release": len(py) * (cfg["label_only_queries"] + 1) * n,
              "budget_s": args.budget, "fixed_s": args.fixed,
              "max_reference_models_local": int(room // per_model) - 1,  # one of the trained models is the shadow
              "workers": args.workers, "max_reference_models_on_workers": int(room * args.workers // per_model) - 1}
    report(result, args.json)


if __name__ == "__main__":
    execute(run, build_parser())
