"""DVC stage ``invert``: BREP-MI against the base target, the smoothed target over the sigma x N
grid (paper Section 6) and the MID targets (seed 002): ASR, accuracy, queries and the
reconstructions. One attack per task on ``compute``'s backend (local or Ray)."""
import numpy as np
import pandas as pd

import torch

from pipeline import brepmi, inversion, mid, nets
from pipeline.io import atomic_path, read_json, read_npz, write_json
from pipeline.params import derive_seed, load_params
from pipeline.plots import image_grid
from pipeline.tracking import main, stage_run

DATASET, META = "data/images/dataset.npz", "data/images/meta.json"
ATTACKS, METRICS, GRIDS = "results/inversion/attacks.tsv", "metrics/inversion.json", "plots/inversion"


def png(config: str) -> str:
    return f"{GRIDS}/{config.replace('=', '_').replace(',', '_')}.png"


def run() -> None:
    params = load_params()
    torch.set_num_threads(1)  # tiny batches of small images: torch's thread team only spins on a shared CPU
    b, grid, seed = params["brepmi"], params["inversion"], params["seed"]
    a, meta = read_npz(DATASET), read_json(META)
    classes, shape = len(meta["classes"]), meta["shape"]
    target = nets.load("target", "models/target.pt", shape, classes)
    evaluator = nets.load("evaluator", "models/evaluator.pt", shape, classes)
    G = nets.load("generator", "models/generator.pt", shape, params["gan"]["z_dim"])
    mids = {beta: nets.load("mid", mid.checkpoint(beta), shape, classes, k=params["mid"]["k"])
            for beta in params["mid"]["betas"]}
    models = {"target": target, "mid": mids}
    cfg = brepmi.Config(**{k: v for k, v in b.items() if k not in ("targets", "restarts")})
    top = inversion.most_confident(target, a["train_x"], a["train_y"], classes)
    configs = inversion.configs(grid["sigmas"], grid["ns"], params["mid"]["betas"])
    results = inversion.run(G, models, evaluator, configs, cfg, b["targets"], b["restarts"], params["gan"]["z_dim"],
                            classes, seed, grid["chunk"], params["compute"])

    metrics, rows, grids = {}, [], {}
    for i, (spec, (records, images, init_queries)) in enumerate(zip(configs, results)):
        config = spec["name"]
        labels = inversion.labeller(models, spec, classes, derive_seed(seed, inversion.ACCURACY, i), grid["chunk"])
        df = pd.DataFrame(records)
        metrics[config] = {
            "asr": float(df["success"].mean()),
            "accuracy": float((labels(a["train_x"][top]) == np.arange(classes)).mean()),
            "accuracy_test": float((labels(a["test_x"]) == a["test_y"]).mean()),
            "queries_mean": float(df["queries"].mean()), "init_queries": int(init_queries),
            "growths_mean": float(df["growths"].mean()), "starts_found": float(df["found_start"].mean()),
            "stopped_by_budget": float((df["stop"] == "budget").mean())}
        rows.append(df.assign(config=config))
        captions = [[f"eval {r['evaluator_label']}" if r["evaluator_label"] >= 0 else r["stop"]
                     for r in records[c * b["restarts"]:(c + 1) * b["restarts"]]] for c in range(b["targets"])]
        ok = df["success"].to_numpy().reshape(b["targets"], b["restarts"])
        image_grid(png(config), images, f"BREP-MI reconstructions, {config}: ASR {metrics[config]['asr']:.0%}",
                   captions, ok, [f"class {meta['classes'][c]}" for c in range(b["targets"])])
        grids[config] = png(config)
        print(f"{config:18s} ASR {metrics[config]['asr']:.0%}  accuracy {metrics[config]['accuracy']:.0%} "
              f"(test {metrics[config]['accuracy_test']:.2%})  queries/attack {metrics[config]['queries_mean']:.0f}")

    with atomic_path(ATTACKS) as tmp:
        pd.concat(rows)[["config", *records[0]]].to_csv(tmp, sep="\t", index=False, float_format="%.4f")
    write_json(METRICS, metrics)
    logged = {"brepmi": b, "inversion": grid, "mid": params["mid"], "seed": seed, "compute": params["compute"]}
    with stage_run(params, "invert", logged) as mlflow:
        for config, m in metrics.items():
            key = config.replace("=", "_").replace(",", "_")
            mlflow.log_metrics({f"{key}.{k}": v for k, v in m.items()})
        for path in grids.values():
            mlflow.log_artifact(path, "reconstructions")
        mlflow.log_artifact(ATTACKS)


if __name__ == "__main__":
    main(run)
