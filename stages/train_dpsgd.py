"""DVC stage ``train_dpsgd``: the DP-SGD baseline (``pipeline.defenses.dpsgd``), one model per
epsilon of ``dpsgd.epsilons`` for a task: ``--task images`` (the target's architecture,
``target.arch``, on its training split; batch norm becomes group norm, ``dpsgd.private_ready``) or ``--task tabular`` (the Section 5 MLP with its l1 penalty). Each model's
epsilon is the accountant's, as spent."""
import argparse
from functools import partial

import torch

from pipeline.core.cli import execute, make_parser
from pipeline.core.compute import map_rows
from pipeline.core.io import read_json, read_npz, save_state
from pipeline.core.metrics import token, write_metrics
from pipeline.core.params import load_params
from pipeline.core.seeds import derive_seed
from pipeline.core.tracking import log_stage
from pipeline.core.training import accuracy
from pipeline.defenses import dpsgd
from pipeline.tabular.mlp import L1Step, mlp
from pipeline.vision import nets

DATA = {"images": ("data/images/dataset.npz", "data/images/meta.json"),
        "tabular": ("data/processed/dataset.npz", "data/processed/meta.json")}
DPSGD_STREAM = 7  # this stage's random streams: derive_seed(seed, DPSGD_STREAM, task)


def build(task: str, a: dict, meta: dict, params: dict):
    """The task's architecture (a picklable constructor) and its data-independent penalty."""
    if task == "images":
        return partial(nets.build, "target", params["target"]["arch"], a["train_x"].shape[1], a["train_x"].shape[2],
                       len(meta["classes"])), None
    return (partial(mlp, a["train_x"].shape[1], params["train"]["hidden"]),
            L1Step(meta["sensitive_index"], params["train"]["l1"]))


def run(args: argparse.Namespace) -> None:
    params, task = load_params(), args.task
    torch.set_num_threads(1)
    cfg = params["dpsgd"]
    dataset, meta_path = DATA[task]
    a, meta = read_npz(dataset), read_json(meta_path)
    make, penalty = build(task, a, meta, params)
    seed = derive_seed(params["seed"], DPSGD_STREAM, list(DATA).index(task))
    trained = [r for part in map_rows(dpsgd.train_grid, len(cfg["epsilons"]), {**params["compute"], "chunk": 1},
                                      f"DP-SGD {task}", unit="model", spread=True, build=make, x=a["train_x"], y=a["train_y"],
                                      cfg=cfg[task], epsilons=cfg["epsilons"], delta=cfg["delta"], seed=seed,
                                      penalty=penalty, device=params["compute"]["device"]) for r in part]
    metrics = {}
    for eps, (state, record) in zip(cfg["epsilons"], trained):
        model = dpsgd.private_ready(make())
        model.load_state_dict(state)
        model.eval()
        batch = None if task == "tabular" else 1024
        m = {**record, "train_accuracy": accuracy(model, a["train_x"], a["train_y"], batch),
             "test_accuracy": accuracy(model, a["test_x"], a["test_y"], batch)}
        save_state(dpsgd.checkpoint(task, eps), model)
        metrics[token("epsilon", eps)] = m
        print(f"DP-SGD {task} epsilon {eps:g} (spent {m['epsilon']:.3f}, noise multiplier {m['noise_multiplier']:.3f}): "
              f"train accuracy {m['train_accuracy']:.2%}, test accuracy {m['test_accuracy']:.2%}")
    tree = write_metrics(f"metrics/dpsgd_{task}.json", f"dpsgd_{task}", metrics)
    log_stage(params, f"train_dpsgd_{task}", {"dpsgd": {k: v for k, v in cfg.items() if k in ("epsilons", "delta", task)},
                                              "seed": params["seed"]}, tree)


if __name__ == "__main__":
    parser = make_parser(__doc__)
    parser.add_argument("--task", required=True, choices=sorted(DATA), help="which task's model to train privately")
    execute(run, parser)
