"""Observed APE expansion under record (the default) and fresh noise, on a subset of D_t,1.

Run after `make repro` (it reads models/mlp.pt, data/augmented.npz, data/processed/meta.json):

    .venv/bin/python bench/ape_noise.py --records 300 --sigmas 1 3
    python bench/ape_noise.py --records 3929 --sigmas 1 2 3 --device cuda   # the paper's protocol, all of D_t,1

For each sigma and noise mode it certifies every augmented row of the first ``--records``
records (N0, N, alpha from params.yaml) and prints how far below B positive predictions reach.
What the modes mean and why they agree: docs/tabular.md, docs/performance.md.
``--device`` is where the engine runs (``compute.device``); the output names it, and the fresh
rows over all 3,929 records are the paper-protocol APE wall time (``*_seconds``).
The last line is one JSON object.
"""
import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._args import parser as make_parser, positive_int, positive_number  # noqa: E402
from pipeline.core.cli import execute  # noqa: E402
from pipeline.core.device import CHOICES, describe, select  # noqa: E402
from pipeline.core.io import read_json, read_npz  # noqa: E402
from pipeline.core.params import load_params  # noqa: E402
from pipeline.tabular import ape  # noqa: E402
from pipeline.tabular.mlp import load_mlp  # noqa: E402


def build_parser():
    parser = make_parser(__doc__)
    parser.add_argument("--records", type=positive_int, default=300,
                        help="records of D_t,1 to certify (each with its whole augmented trajectory)")
    parser.add_argument("--sigmas", type=positive_number, nargs="+", default=[1.0, 3.0],
                        help="noise scales, standardised feature units")
    parser.add_argument("--device", choices=CHOICES, default="auto", help="where the engine runs (compute.device)")
    parser.add_argument("--json", action="store_true", help="print only the JSON line")
    return parser


def run(args) -> None:
    params = load_params(ROOT / "params.yaml")
    s = params["smoothing"]
    meta, arrays = read_json(ROOT / "data/processed/meta.json"), read_npz(ROOT / "data/augmented.npz")
    model = load_mlp(ROOT / "models/mlp.pt", len(meta["feature_names"]), params["train"]["hidden"])
    values = arrays["values"][:args.records]
    aug = ape.Augmented(arrays["records"][:args.records], values, meta["sensitive_index"], meta)
    device = select(args.device, "--device")
    result = {"device": describe(device),
              "records": int(len(values)), "inputs": int(values.size)}
    compute = {**params["compute"], "device": args.device}
    for noise in ("record", "fresh"):
        for sigma in args.sigmas:
            cfg = [ape.Configuration(f"sigma={sigma:g}", sigma, s["n"], s["alpha"], 1)]
            start = time.perf_counter()
            out = ape.certify_augmented(model, aug, cfg, s["n0"], noise, params["seed"], s["chunk"],
                                        compute, progress=not args.json)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            seconds = time.perf_counter() - start
            positive = out[cfg[0].name]["prediction"] == 1
            exp = ape.expansion(values, positive, meta["threshold"], params["ape"]["robust_quantile"])
            key = f"{noise}_sigma{sigma:g}"
            result.update({f"{key}_expansion": exp["observed"], f"{key}_robust": exp["robust"],
                           f"{key}_positives_below": exp["positives_below_threshold"],
                           f"{key}_us_per_input": 1e6 * seconds / values.size, f"{key}_seconds": seconds})
            if not args.json:
                print(f"{noise:6s} sigma={sigma:g}: expansion {exp['observed']:.2f}, robust {exp['robust']:.2f}, "
                      f"{exp['positives_below_threshold']} positives below B, {1e6 * seconds / values.size:.0f} us/input")
    print(json.dumps(result))


if __name__ == "__main__":
    execute(run, build_parser())
