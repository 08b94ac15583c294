"""DVC stage ``train``: the Section 5 MLP with the l1 penalty on non-sensitive inputs."""

from pipeline import model as mlp
from pipeline.io import read_json, read_npz, save_state, write_json
from pipeline.params import load_params
from pipeline.plots import training_curve
from pipeline.tracking import main, stage_run

DATASET, META = "data/processed/dataset.npz", "data/processed/meta.json"
MODEL, METRICS, CURVE = "models/mlp.pt", "metrics/train.json", "plots/train_curve.png"


def run() -> None:
    params = load_params()
    a, meta = read_npz(DATASET), read_json(META)
    model, history = mlp.train(a["train_x"], a["train_y"], meta["sensitive_index"], params["train"], params["seed"])
    metrics = {"train_accuracy": mlp.accuracy(model, a["train_x"], a["train_y"]),
               "test_accuracy": mlp.accuracy(model, a["test_x"], a["test_y"])}
    save_state(MODEL, model)
    write_json(METRICS, metrics)
    training_curve(CURVE, history)
    with stage_run(params, "train", {"train": params["train"], "seed": params["seed"]}) as mlflow:
        for h in history:
            mlflow.log_metrics({"loss": h["loss"], "epoch_train_accuracy": h["train_accuracy"]}, step=h["epoch"])
        mlflow.log_metrics(metrics)
        mlflow.log_artifact(CURVE)
    print(f"train accuracy {metrics['train_accuracy']:.4%}, test accuracy {metrics['test_accuracy']:.4%}")


if __name__ == "__main__":
    main(run)
