"""DVC stage ``download``: write the insurance table to data/insurance.csv."""
from pathlib import Path

from pipeline import data
from pipeline.params import load_params
from pipeline.tracking import main, stage_run

OUT = "data/insurance.csv"


def run() -> None:
    params = load_params()  # validates every key before any work
    info = data.acquire(params["data"], params["seed"], Path(OUT))
    with stage_run(params, "download", {"data": params["data"], "seed": params["seed"]}) as mlflow:
        mlflow.log_metrics({"rows": info["rows"]})
        mlflow.set_tags({"data.source": info["source"], "data.sha256": info["sha256"]})


if __name__ == "__main__":
    main(run)
