"""Print what ``make repro`` produced: Table 1, the APE expansions, the inversion and defenses
tables, and where to look next."""
from __future__ import annotations

from pathlib import Path

from mlflow.tracking import MlflowClient

from ..core.params import load_params
from ..core.tracking import tracking_uri


def main() -> None:
    for path in ("reports/table1.md", "reports/ape.md", "reports/attribute_attack.md", "reports/inversion.md",
                 "reports/membership.md", "reports/defenses.md"):
        if Path(path).is_file():
            print(Path(path).read_text())
    plots = sorted(str(p) for p in Path("plots").glob("*.png"))
    print("Plots:        " + ", ".join(plots))
    params = load_params()
    uri = tracking_uri(params)
    print(f"MLflow store: {uri}")
    print(f"  browse:     .venv/bin/mlflow ui --backend-store-uri {uri}")
    experiment = MlflowClient(uri).get_experiment_by_name(params["mlflow"]["experiment"])
    if experiment is not None:  # the model-training view: the UI opens on GenAI otherwise
        print(f"  then open:  http://127.0.0.1:5000/#/experiments/{experiment.experiment_id}/runs"
              "?workflowType=machine_learning")
    print("Next:         source .venv/bin/activate; dvc metrics show; dvc plots show; dvc exp run -S ...")


if __name__ == "__main__":
    main()
