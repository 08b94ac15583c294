"""Observed APE expansion under fresh and shared noise, on a subset of D_t,1.

Run after `make repro` (it reads models/mlp.pt, data/augmented.npz, data/processed/meta.json):

    .venv/bin/python bench/ape_noise.py --records 300 --sigmas 1 3

For each sigma and noise mode it certifies every augmented row of the first ``--records``
records (N0, N, alpha from params.yaml) and prints how far below B positive predictions reach.
The last line is one JSON object.
"""
import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline import ape  # noqa: E402
from pipeline import model as mlp  # noqa: E402
from pipeline.io import read_json, read_npz  # noqa: E402
from pipeline.params import load_params  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=300)
    parser.add_argument("--sigmas", type=float, nargs="+", default=[1.0, 3.0])
    parser.add_argument("--json", action="store_true", help="print only the JSON line")
    args = parser.parse_args()
    params = load_params()
    s = params["smoothing"]
    meta, arrays = read_json("data/processed/meta.json"), read_npz("data/augmented.npz")
    model = mlp.load("models/mlp.pt", len(meta["feature_names"]), params["train"]["hidden"])
    values = arrays["values"][:args.records]
    aug = ape.Augmented(arrays["records"][:args.records], values, meta["sensitive_index"], meta)
    result = {"records": int(len(values)), "inputs": int(values.size)}
    for noise in ("fresh", "shared"):
        for sigma in args.sigmas:
            cfg = [(f"sigma={sigma:g}", sigma, s["n"], s["alpha"])]
            start = time.perf_counter()
            out = ape.evaluate(model, aug, cfg, s["n0"], noise, params["seed"], s["chunk"], params["compute"],
                               progress=not args.json)
            seconds = time.perf_counter() - start
            positive = out[cfg[0][0]]["prediction"] == 1
            exp = ape.expansion(values, positive, meta["threshold"], params["ape"]["robust_quantile"])
            key = f"{noise}_sigma{sigma:g}"
            result.update({f"{key}_expansion": exp["observed"], f"{key}_robust": exp["robust"],
                           f"{key}_positives_below": exp["positives_below_threshold"],
                           f"{key}_us_per_input": 1e6 * seconds / values.size})
            if not args.json:
                print(f"{noise:6s} sigma={sigma:g}: expansion {exp['observed']:.2f}, robust {exp['robust']:.2f}, "
                      f"{exp['positives_below_threshold']} positives below B, {1e6 * seconds / values.size:.0f} us/input")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
