"""DVC stage ``boundary``: the exact smoothed classifier's boundary b* along the trajectories of
a seeded sample of D_t,1, for every sigma of the APE experiment, with its interval; and what
Table 1's Avg. R is made of on those records (the radius, the distance to b*, the cap)."""
import pandas as pd

from pipeline.core.cli import execute
from pipeline.core.io import atomic_path, read_json, read_npz
from pipeline.core.metrics import label, write_metrics
from pipeline.core.params import load_params
from pipeline.core.tracking import log_stage
from pipeline.experiments.ape import run_boundary
from pipeline.tabular.mlp import load_mlp

META, MODEL, AUGMENTED = "data/processed/meta.json", "models/mlp.pt", "data/augmented.npz"
OUT, METRICS = "results/ape/boundary.tsv", "metrics/boundary.json"


def run() -> None:
    params = load_params()
    meta = read_json(META)
    model = load_mlp(MODEL, len(meta["feature_names"]), params["train"]["hidden"])
    certified = {s: pd.read_csv(f"results/certify/sigma_{s}.tsv", sep="\t") for s in params["smoothing"]["sigmas"]}
    table, metrics = run_boundary(model, read_npz(AUGMENTED), meta, params, certified)
    with atomic_path(OUT) as tmp:
        table.to_csv(tmp, sep="\t", index=False, float_format="%.5f")
    tree = write_metrics(METRICS, "boundary", metrics)
    log_stage(params, "boundary", {"ape": {"boundary": params["ape"]["boundary"]}, "seed": params["seed"]}, tree, [OUT])
    unit = meta["sensitive"]
    if metrics["base"]["located"]:
        print(f"base       flips at {metrics['base']['b_star_median']:.3f} {unit} (median over records)")
    for name, m in metrics.items():
        if name.startswith("sigma_") and m["located"]:
            print(f"{label(name):10s} b* median {m['b_star_median']:.3f} {unit} (B - b* {m['threshold_minus_b_star_median']:+.3f}; "
                  f"interval half-width median {m['halfwidth_median']:.3f}), {m['located']} of {metrics['records']} located")


if __name__ == "__main__":
    execute(run)
