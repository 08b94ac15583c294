"""DVC stage ``preprocess``: features, labels, split and metadata from data/insurance.csv."""
from pipeline.core.cli import execute
from pipeline.core.io import write_json, write_npz
from pipeline.core.params import load_params
from pipeline.core.tracking import log_stage
from pipeline.tabular import insurance
from pipeline.tabular.preprocess import preprocess

RAW, DATASET, META = "data/insurance.csv", "data/processed/dataset.npz", "data/processed/meta.json"


def run() -> None:
    params = load_params()
    df = insurance.read_csv(RAW)
    insurance.validate(df, RAW)
    out = preprocess(df, params, params["seed"])
    meta = out["meta"]
    write_npz(DATASET, out["arrays"])
    write_json(META, meta)
    log_stage(params, "preprocess", {"preprocess": params["preprocess"], "seed": params["seed"]},
              {k: meta[k] for k in ("threshold", "n_train", "n_test", "positive_rate_train")}
              | {"features": len(meta["feature_names"])}, [META])


if __name__ == "__main__":
    execute(run)
