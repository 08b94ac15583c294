"""DVC stage ``ape``: positive predictions of the base and smoothed classifiers on the augmented
set (Figures 1 and 4), the observed expansion, and Definition 2's inference sets per record."""
import numpy as np
import pandas as pd

from pipeline import ape
from pipeline import model as mlp
from pipeline.io import atomic_path, read_json, read_npz, write_json
from pipeline.params import load_params
from pipeline.plots import ape_histograms
from pipeline.tracking import main, stage_run

META, MODEL, AUGMENTED = "data/processed/meta.json", "models/mlp.pt", "data/augmented.npz"
RECORDS, HIST, METRICS = "results/ape/records.tsv", "plots/ape_histogram.csv", "metrics/ape.json"
FIG1, FIG4 = "plots/ape_figure1.png", "plots/ape_figure4.png"


def run() -> None:
    params = load_params()
    cfg, smoothing = params["ape"], params["smoothing"]
    meta, aug_arrays = read_json(META), read_npz(AUGMENTED)
    model = mlp.load(MODEL, len(meta["feature_names"]), params["train"]["hidden"])
    values, B, unit = aug_arrays["values"], meta["threshold"], meta["sensitive"]
    aug = ape.Augmented(aug_arrays["records"], values, meta["sensitive_index"], meta)

    configs = ape.configurations(smoothing, cfg["ablation"])
    results = {"base": {"prediction": ape.base_predictions(model, aug),
                        "radius": np.zeros(values.shape)}}
    results.update(ape.evaluate(model, aug, configs, smoothing["n0"], cfg["noise"], params["seed"],
                                smoothing["chunk"], params["compute"]))

    edges = ape.bin_edges(values, B, cfg["bin_width"])
    counts, metrics, rows = {}, {}, []
    for name, r in results.items():
        counts[name], _ = np.histogram(values[r["prediction"] == 1], bins=edges)
        metrics[name], sets = ape.summarise(values, r["prediction"], r["radius"] * meta["sensitive_std"], B,
                                            cfg["robust_quantile"])
        rows.append(pd.DataFrame({"config": name, "test_index": aug_arrays["test_index"],
                                  "value": values[:, 0], **sets}))

    with atomic_path(RECORDS) as tmp:
        pd.concat(rows).to_csv(tmp, sep="\t", index=False, float_format="%.4f")
    with atomic_path(HIST) as tmp:
        pd.DataFrame({unit: np.round(edges[:-1], 4), **counts}).to_csv(tmp, index=False)
    main_names = ["base"] + [c[0] for c in configs[:len(smoothing["sigmas"])]]
    grid_names = [c[0] for c in configs[len(smoothing["sigmas"]):]]
    ape_histograms(FIG1, edges, {k: counts[k] for k in main_names}, B,
                   f"Figure 1: {unit} of positive predictions (N={smoothing['n']}, alpha={smoothing['alpha']:g})", unit)
    ape_histograms(FIG4, edges, {k: counts[k] for k in grid_names}, B,
                   f"Figure 4: sigma={cfg['ablation']['sigma']:g}, N and alpha varied", unit)
    write_json(METRICS, {"threshold": B, "records": int(values.shape[0]), **metrics})

    logged = {"ape": cfg, "smoothing": {k: smoothing[k] for k in ("sigmas", "n0", "n", "alpha", "chunk")},
              "seed": params["seed"], "compute": params["compute"]}
    with stage_run(params, "ape", logged) as mlflow:
        for name, m in metrics.items():
            key = name.replace("=", "_").replace(",", "_")
            mlflow.log_metrics({f"{key}.{k}": v for k, v in m.items()})
        for path in (FIG1, FIG4, HIST, RECORDS):
            mlflow.log_artifact(path)
    for name, m in metrics.items():
        print(f"{name:28s} expansion {m['expansion']:.2f} (robust {m['expansion_robust']:.2f}) {unit} below B={B:g}")


if __name__ == "__main__":
    main(run)
