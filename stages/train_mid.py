"""DVC stage ``train_mid``: the MID defense (Wang, Zhang and Jia, AAAI 2021), one VIB variant of
the target (of architecture ``target.arch``) per beta, trained on the target's training set
(``pipeline.defenses.mid``)."""
import torch

from pipeline.core.cli import execute
from pipeline.core.device import select
from pipeline.core.io import read_json, read_npz, save_state
from pipeline.core.metrics import token, write_metrics
from pipeline.core.params import load_params
from pipeline.core.tracking import log_stage
from pipeline.core.training import accuracy
from pipeline.defenses import mid

DATASET, META, METRICS = "data/images/dataset.npz", "data/images/meta.json", "metrics/mid.json"


def run() -> None:
    params = load_params()
    torch.set_num_threads(1)
    cfg, seed = params["mid"], params["seed"]
    a, meta = read_npz(DATASET), read_json(META)
    metrics, history = {}, []
    for beta in cfg["betas"]:
        model, steps = mid.train_mid(a["train_x"], a["train_y"], len(meta["classes"]), cfg, beta, seed,
                                     device=select(params["compute"]["device"]), arch=params["target"]["arch"])
        model.generator = torch.Generator().manual_seed(seed)  # sampling stays on: seeded for the metrics
        m = {"train_accuracy": accuracy(model, a["train_x"], a["train_y"]),
             "test_accuracy": accuracy(model, a["test_x"], a["test_y"]), "kl": steps[-1]["kl"]}
        m["generalization_gap"] = m["train_accuracy"] - m["test_accuracy"]
        save_state(mid.checkpoint(beta), model)
        metrics[token("beta", beta)] = m
        history += [(h["epoch"], {"mid": {token("beta", beta): {k: v for k, v in h.items() if k != "epoch"}}}) for h in steps]
        print(f"MID beta={beta:g}: train accuracy {m['train_accuracy']:.2%}, test accuracy {m['test_accuracy']:.2%}, "
              f"KL {m['kl']:.1f} nats")
    tree = write_metrics(METRICS, "mid", metrics)
    log_stage(params, "train_mid", {"mid": cfg, "seed": seed}, tree, history=history)


if __name__ == "__main__":
    execute(run)
