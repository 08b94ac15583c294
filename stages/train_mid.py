"""DVC stage ``train_mid``: the MID defense (seed 002), one VIB variant of the target per beta,
trained on the target's training set (``pipeline.mid``)."""
import torch

from pipeline import mid, nets
from pipeline.io import read_json, read_npz, save_state, write_json
from pipeline.params import load_params
from pipeline.tracking import main, stage_run

DATASET, META, METRICS = "data/images/dataset.npz", "data/images/meta.json", "metrics/mid.json"


def run() -> None:
    params = load_params()
    torch.set_num_threads(1)
    cfg, seed = params["mid"], params["seed"]
    a, meta = read_npz(DATASET), read_json(META)
    classes = len(meta["classes"])
    metrics, histories = {}, {}
    for beta in cfg["betas"]:
        model, histories[beta] = nets.train_mid(a["train_x"], a["train_y"], classes, cfg, beta, seed)
        model.generator = torch.Generator().manual_seed(seed)  # sampling stays on: seeded for the metrics
        m = {"train_accuracy": nets.accuracy(model, a["train_x"], a["train_y"]),
             "test_accuracy": nets.accuracy(model, a["test_x"], a["test_y"]), "kl": histories[beta][-1]["kl"]}
        m["generalization_gap"] = m["train_accuracy"] - m["test_accuracy"]
        save_state(mid.checkpoint(beta), model)
        metrics[f"beta={beta:g}"] = m
        print(f"MID beta={beta:g}: train accuracy {m['train_accuracy']:.2%}, test accuracy {m['test_accuracy']:.2%}, "
              f"KL {m['kl']:.1f} nats")
    write_json(METRICS, metrics)
    with stage_run(params, "train_mid", {"mid": cfg, "seed": seed}) as mlflow:
        for beta, history in histories.items():
            for h in history:
                mlflow.log_metrics({f"beta_{beta:g}.{k}": v for k, v in h.items() if k != "epoch"}, step=h["epoch"])
        for config, m in metrics.items():
            mlflow.log_metrics({f"{config.replace('=', '_')}.{k}": v for k, v in m.items()})


if __name__ == "__main__":
    main(run)
