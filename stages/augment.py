"""DVC stage ``augment``: D_t,1 (test records the base classifier predicts positive) and the
left-of-threshold BMI trajectory for each (paper Section 5)."""
from pipeline import model as mlp
from pipeline.ape import augment
from pipeline.io import read_json, read_npz, write_npz
from pipeline.params import load_params
from pipeline.tracking import main, stage_run

DATASET, META, MODEL, OUT = ("data/processed/dataset.npz", "data/processed/meta.json", "models/mlp.pt",
                             "data/augmented.npz")


def run() -> None:
    params = load_params()
    cfg = params["ape"]
    a, meta = read_npz(DATASET), read_json(META)
    model = mlp.load(MODEL, len(meta["feature_names"]), params["train"]["hidden"])
    positive = mlp.predict(model, a["test_x"]) == 1
    values = augment(a["test_raw"][positive], meta["threshold"], cfg["step"], cfg["points"])
    write_npz(OUT, {"records": a["test_x"][positive], "test_index": positive.nonzero()[0], "values": values})
    with stage_run(params, "augment", {"ape": {k: cfg[k] for k in ("step", "points")}}) as mlflow:
        mlflow.log_metrics({"records": int(positive.sum()), "rows": int(values.size),
                            "lowest_value": float(values[:, 1:].min())})
    print(f"D_t,1: {positive.sum()} records x {values.shape[1]} values = {values.size} inputs")


if __name__ == "__main__":
    main(run)
