"""DVC stage ``train``: the Section 5 MLP with the l1 penalty on non-sensitive inputs."""
from pipeline.core.cli import execute
from pipeline.core.device import select
from pipeline.core.io import read_json, read_npz, save_state
from pipeline.core.metrics import write_metrics
from pipeline.core.params import load_params
from pipeline.core.tracking import log_stage
from pipeline.core.training import accuracy
from pipeline.reporting.plots import training_curve
from pipeline.tabular.mlp import train_mlp

DATASET, META = "data/processed/dataset.npz", "data/processed/meta.json"
MODEL, METRICS, CURVE = "models/mlp.pt", "metrics/train.json", "plots/train_curve.png"


def run() -> None:
    params = load_params()
    a, meta = read_npz(DATASET), read_json(META)
    model, history = train_mlp(a["train_x"], a["train_y"], meta["sensitive_index"], params["train"], params["seed"],
                               test=(a["test_x"], a["test_y"]), device=select(params["compute"]["device"]))
    metrics = {"train_accuracy": accuracy(model, a["train_x"], a["train_y"], batch=None),
               "test_accuracy": accuracy(model, a["test_x"], a["test_y"], batch=None)}
    save_state(MODEL, model)
    tree = write_metrics(METRICS, "train", metrics)
    training_curve(CURVE, history)
    log_stage(params, "train", {"train": params["train"], "seed": params["seed"]}, tree, [CURVE],
              [(h["epoch"], {"loss": h["loss"], "epoch_train_accuracy": h["train_accuracy"],
                             "epoch_test_accuracy": h["test_accuracy"]}) for h in history])
    print(f"train accuracy {metrics['train_accuracy']:.4%}, test accuracy {metrics['test_accuracy']:.4%}")


if __name__ == "__main__":
    execute(run)
