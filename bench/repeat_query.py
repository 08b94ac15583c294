"""The repeated-query attacker against a served smoothed model, fresh noise against keyed noise.

    .venv/bin/python bench/repeat_query.py            # table, then one JSON line
    .venv/bin/python bench/repeat_query.py --json     # the JSON line only

Needs the pipeline's model and data (`make repro`). The victims are the positive and
near-threshold test records (BMI >= B - 3, 200 sampled with the params' seed); the service
answers PREDICT (N, alpha from params.yaml) at sigma = 1. For K answers seen per victim, the
attacker keeps the BMI values whose answer law m(b) is plausible for the count of positive
answers (``pipeline.attribute_attack.repeated_queries``). Widths are medians in BMI units.
The secret for keyed noise comes from $RP_NOISE_SECRET, or a fixed demo secret.
"""
import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline import ape  # noqa: E402
from pipeline import attribute_attack as attack  # noqa: E402
from pipeline import model as mlp  # noqa: E402
from pipeline.io import read_json, read_npz  # noqa: E402
from pipeline.params import load_params  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sigma", type=float, default=1.0)
    parser.add_argument("--records", type=int, default=200)
    parser.add_argument("--near", type=float, default=3.0)
    parser.add_argument("--step", type=float, default=0.1)
    parser.add_argument("--calibration", type=int, default=20000)
    parser.add_argument("--repeats", type=int, nargs="+", default=[1, 10, 100])
    parser.add_argument("--json", action="store_true", help="print only the JSON line")
    args = parser.parse_args()
    params = load_params(ROOT / "params.yaml")
    sm, seed = params["smoothing"], params["seed"]
    a, meta = read_npz(ROOT / "data/processed/dataset.npz"), read_json(ROOT / "data/processed/meta.json")
    model = mlp.load(ROOT / "models/mlp.pt", len(meta["feature_names"]), params["train"]["hidden"])
    B, s = meta["threshold"], meta["sensitive_index"]
    idx = attack.victims(a["test_raw"], B, args.near, args.records, seed)
    truth, records = a["test_raw"][idx], a["test_x"][idx]
    grid = attack.sweep(a["train_raw"].min(), a["train_raw"].max(), args.step, B)
    on_grid = ape.Augmented(records, np.broadcast_to(grid, (len(idx), len(grid))), s, meta)
    own = ape.Augmented(records, truth[:, None], s, meta)[0:len(idx)]
    secret = os.environ.get("RP_NOISE_SECRET", "").encode() or b"robust-privacy bench secret"
    out = attack.repeated_queries(model, args.sigma, own, on_grid, grid, truth, sm["n"], sm["alpha"],
                                  args.repeats, args.calibration, seed, sm["chunk"], secret)
    result = {f"width_{mode}_k{k}": out[mode][k]["width_median"] for mode in ("fresh", "keyed") for k in args.repeats}
    result.update({f"coverage_{mode}_k{k}": out[mode][k]["coverage"] for mode in out for k in args.repeats})
    result.update({"sigma": args.sigma, "victims": int(len(idx)), "n": sm["n"], "alpha": sm["alpha"]})
    if not args.json:
        print(f"{len(idx)} victims (BMI >= B - {args.near:g}), sigma={args.sigma:g}, PREDICT N={sm['n']}, "
              f"alpha={sm['alpha']:g}; median interval width in {meta['sensitive']} (coverage of the truth)")
        print(f"{'attacker':12s} " + " ".join(f"{'K=' + str(k):>16s}" for k in args.repeats))
        for mode, by_k in out.items():
            print(f"{mode:12s} " + " ".join(f"{by_k[k]['width_median']:8.2f} ({by_k[k]['coverage']:5.1%})"
                                            for k in args.repeats))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
