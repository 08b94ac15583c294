"""DVC stage ``preprocess``: features, labels, split and metadata from data/insurance.csv."""
from pipeline import data
from pipeline.io import write_json, write_npz
from pipeline.params import load_params
from pipeline.preprocess import preprocess
from pipeline.tracking import main, stage_run

RAW, DATASET, META = "data/insurance.csv", "data/processed/dataset.npz", "data/processed/meta.json"


def run() -> None:
    params = load_params()
    df = data.read_csv(RAW)
    data.validate(df, RAW)
    out = preprocess(df, params, params["seed"])
    write_npz(DATASET, out["arrays"])
    write_json(META, out["meta"])
    meta = out["meta"]
    with stage_run(params, "preprocess", {"preprocess": params["preprocess"], "seed": params["seed"]}) as mlflow:
        mlflow.log_metrics({"threshold": meta["threshold"], "n_train": meta["n_train"], "n_test": meta["n_test"],
                            "features": len(meta["feature_names"]),
                            "positive_rate_train": meta["positive_rate_train"]})
        mlflow.log_artifact(META)


if __name__ == "__main__":
    main(run)
