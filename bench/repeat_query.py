"""The repeated-query attacker against a served smoothed model, fresh noise against keyed noise.

    .venv/bin/python bench/repeat_query.py            # table, then one JSON line
    .venv/bin/python bench/repeat_query.py --json     # the JSON line only

Needs the pipeline's model and data (`make repro`). The victims are the positive and negative
test records near the threshold (|BMI - B| <= 3, 200 sampled with params.yaml's seed); the
service answers the majority vote over N = 10 noisy copies (the Robust Privacy paper's Section
7.2) at sigma = 1, with fresh or keyed noise (``--serve-n`` changes N). For K answers seen per
victim, the attacker keeps the BMI values whose answer law m(b) is plausible for the count of
positive answers (``pipeline.attacks.attribute.repeated_queries``). Widths are medians in BMI
units. The secret for keyed noise comes from $RP_NOISE_SECRET, or a fixed demo secret.
The threat and why keyed noise answers it: docs/threats.md.
"""
import json
import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._args import parser as make_parser, positive_int, positive_number  # noqa: E402
from pipeline.attacks import attribute as attack  # noqa: E402
from pipeline.core.cli import execute  # noqa: E402
from pipeline.core.io import read_json, read_npz  # noqa: E402
from pipeline.core.params import load_params  # noqa: E402
from pipeline.tabular import ape  # noqa: E402
from pipeline.tabular.mlp import load_mlp  # noqa: E402


def build_parser():
    parser = make_parser(__doc__)
    parser.add_argument("--sigma", type=positive_number, default=1.0,
                        help="noise scale of the served model, standardised feature units")
    parser.add_argument("--records", type=positive_int, default=200, help="victims sampled near the threshold")
    parser.add_argument("--near", type=positive_number, default=3.0,
                        help="victims: test records with |BMI - B| <= this (BMI units)")
    parser.add_argument("--step", type=positive_number, default=0.1,
                        help="spacing of the attacker's BMI grid (BMI units)")
    parser.add_argument("--calibration", type=positive_int, default=20000,
                        help="the attacker's noisy evaluations per grid value, for its p_A curve")
    parser.add_argument("--serve-n", type=positive_int, default=10,
                        help="noisy copies per served answer (majority vote)")
    parser.add_argument("--repeats", type=positive_int, nargs="+", default=[1, 10, 100],
                        help="K: answers the attacker sees per victim, one figure each")
    parser.add_argument("--json", action="store_true", help="print only the JSON line")
    return parser


def run(args) -> None:
    params = load_params(ROOT / "params.yaml")
    sm, seed = params["smoothing"], params["seed"]
    a, meta = read_npz(ROOT / "data/processed/dataset.npz"), read_json(ROOT / "data/processed/meta.json")
    model = load_mlp(ROOT / "models/mlp.pt", len(meta["feature_names"]), params["train"]["hidden"])
    B, s = meta["threshold"], meta["sensitive_index"]
    idx = attack.victims(a["test_raw"], B, args.near, args.records, seed, above=args.near)
    truth, records = a["test_raw"][idx], a["test_x"][idx]
    grid = attack.sweep(a["train_raw"].min(), a["train_raw"].max(), args.step, B)
    on_grid = ape.Augmented(records, np.broadcast_to(grid, (len(idx), len(grid))), s, meta)
    own = ape.Augmented(records, truth[:, None], s, meta)[0:len(idx)]
    secret = os.environ.get("RP_NOISE_SECRET", "").encode() or b"robust-privacy bench secret"
    out = attack.repeated_queries(model, args.sigma, own, on_grid, grid, truth, args.serve_n, args.repeats,
                                  args.calibration, seed, sm["chunk"], secret)
    result = {f"width_{mode}_k{k}": out[mode][k]["width_median"] for mode in ("fresh", "keyed") for k in args.repeats}
    result.update({f"coverage_{mode}_k{k}": out[mode][k]["coverage"] for mode in out for k in args.repeats})
    result.update({"sigma": args.sigma, "victims": int(len(idx)), "serve_n": args.serve_n})
    if not args.json:
        print(f"{len(idx)} victims (|BMI - B| <= {args.near:g}), sigma={args.sigma:g}, majority vote of "
              f"N={args.serve_n}; median interval width in {meta['sensitive']} (coverage of the truth)")
        print(f"{'attacker':12s} " + " ".join(f"{'K=' + str(k):>16s}" for k in args.repeats))
        for mode, by_k in out.items():
            print(f"{mode:12s} " + " ".join(f"{by_k[k]['width_median']:8.2f} ({by_k[k]['coverage']:5.1%})"
                                            for k in args.repeats))
    print(json.dumps(result))


if __name__ == "__main__":
    execute(run, build_parser())
