"""DVC stages ``train_target`` and ``train_evaluator``: a classifier of the private classes (Section 6).
The target learns from the train split only (its members); the evaluator, the judge of attack
success, from every private image but the test split (train and shadow)."""
import argparse

import numpy as np
import torch

from pipeline.core.cli import execute, make_parser
from pipeline.core.device import select
from pipeline.core.io import read_json, read_npz, save_state
from pipeline.core.metrics import write_metrics
from pipeline.core.params import load_params
from pipeline.core.tracking import log_stage
from pipeline.core.training import accuracy
from pipeline.vision import nets

DATASET, META = "data/images/dataset.npz", "data/images/meta.json"


def run(args: argparse.Namespace) -> None:
    params, kind = load_params(), args.kind
    torch.set_num_threads(1)  # small convolutions: one thread is about as fast, and never spins against other processes
    a, meta = read_npz(DATASET), read_json(META)
    seed = params["seed"] + (kind == "evaluator")  # different initialisation and batch order
    parts = ["train"] if kind == "target" else ["train", "shadow"]
    x, y = (np.concatenate([a[f"{p}_{v}"] for p in parts]) for v in "xy")
    model, history = nets.train_classifier(kind, x, y, len(meta["classes"]), params[kind], seed,
                                           device=select(params["compute"]["device"]))
    metrics = {"train_accuracy": accuracy(model, x, y), "test_accuracy": accuracy(model, a["test_x"], a["test_y"])}
    metrics["generalization_gap"] = metrics["train_accuracy"] - metrics["test_accuracy"]
    save_state(f"models/{kind}.pt", model)
    tree = write_metrics(f"metrics/{kind}.json", kind, metrics)
    log_stage(params, f"train_{kind}", {kind: params[kind], "training_seed": seed}, tree,
              history=[(h["epoch"], {"loss": h["loss"], "epoch_train_accuracy": h["train_accuracy"]}) for h in history])
    print(f"{kind}: train accuracy {metrics['train_accuracy']:.2%}, test accuracy {metrics['test_accuracy']:.2%}")


if __name__ == "__main__":
    parser = make_parser(__doc__)
    parser.add_argument("--kind", required=True, choices=sorted(nets.BUILDERS), help="which classifier to train")
    execute(run, parser)
