"""DVC stage ``membership``: the defenses (none, output perturbation, MID per beta, RP per
sigma and N) against the membership attacks on the image target (``pipeline.defense_eval``)."""
import pandas as pd

import torch

from pipeline import defense_eval, mid, nets
from pipeline.io import atomic_path, read_json, read_npz, write_json
from pipeline.membership import roc_curve
from pipeline.params import load_params
from pipeline.plots import roc_grid
from pipeline.tracking import flatten, main, stage_run

DATASET, META = "data/images/dataset.npz", "data/images/meta.json"
METRICS, SCORES, FIGURE = "metrics/membership.json", "results/membership/scores.tsv", "plots/membership_roc.png"


def run() -> None:
    params = load_params()
    torch.set_num_threads(1)  # small convolutions: one thread is about as fast, and never spins against other processes
    a, meta = read_npz(DATASET), read_json(META)
    classes, shape = len(meta["classes"]), meta["shape"]
    target = nets.load("target", "models/target.pt", shape, classes)
    mids = {b: nets.load("mid", mid.checkpoint(b), shape, classes, k=params["mid"]["k"]) for b in params["mid"]["betas"]}
    table, scores = defense_eval.evaluate_defenses(target, mids, a, classes, params)

    with atomic_path(SCORES) as tmp:
        rows = pd.DataFrame(defense_eval.score_rows(scores), columns=["defense", "attack", "member", "score"])
        rows.to_csv(tmp, sep="\t", index=False, float_format="%.9g")
    write_json(METRICS, table)
    roc_grid(FIGURE, {d: {k: roc_curve(s.member, s.nonmember) for k, s in per.items()} for d, per in scores.items()},
             f"Membership inference on the image target: {len(a['train_y'])} members, {len(a['test_y'])} non-members")

    logged = {"membership": params["membership"], "target": params["target"], "mid": params["mid"],
              "seed": params["seed"]}
    with stage_run(params, "membership", logged) as mlflow:
        numbers = {k.replace("=", "_").replace(",", "."): v for k, v in flatten(table).items()
                   if isinstance(v, (int, float)) and not isinstance(v, bool)}
        mlflow.log_metrics(numbers)
        mlflow.log_artifact(SCORES)
        mlflow.log_artifact(FIGURE)
    for name, entry in table.items():
        aucs = "  ".join(f"{k} {v['auc']:.3f}" for k, v in entry["attacks"].items() if v is not None)
        print(f"{name:22s} test {entry['test_accuracy']:.3f}  best AUC {entry['best_auc']:.3f}  ({aucs})")


if __name__ == "__main__":
    main(run)
