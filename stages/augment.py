"""DVC stage ``augment``: D_t,1 (test records the base classifier predicts positive) and the
left-of-threshold BMI trajectory for each (paper Section 5)."""
from pipeline.core.cli import execute
from pipeline.core.io import read_json, read_npz, write_npz
from pipeline.core.params import load_params
from pipeline.core.tracking import log_stage
from pipeline.core.training import predict
from pipeline.tabular.ape import augment
from pipeline.tabular.mlp import load_mlp

DATASET, META, MODEL, OUT = ("data/processed/dataset.npz", "data/processed/meta.json", "models/mlp.pt",
                             "data/augmented.npz")


def run() -> None:
    params = load_params()
    cfg = params["ape"]
    a, meta = read_npz(DATASET), read_json(META)
    model = load_mlp(MODEL, len(meta["feature_names"]), params["train"]["hidden"])
    positive = predict(model, a["test_x"], batch=None) == 1
    values = augment(a["test_raw"][positive], meta["threshold"], cfg["step"], cfg["points"])
    write_npz(OUT, {"records": a["test_x"][positive], "test_index": positive.nonzero()[0], "values": values})
    log_stage(params, "augment", {"ape": {k: cfg[k] for k in ("step", "points")}},
              {"records": int(positive.sum()), "rows": int(values.size), "lowest_value": float(values[:, 1:].min())})
    print(f"D_t,1: {positive.sum()} records x {values.shape[1]} values = {values.size} inputs")


if __name__ == "__main__":
    execute(run)
