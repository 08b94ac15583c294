"""DVC stage ``ape``: positive predictions of the base and smoothed classifiers on the augmented
set (Figures 1 and 4), the observed expansion, and Definition 2's inference sets per record."""
import pandas as pd

from pipeline.core.cli import execute
from pipeline.core.io import atomic_path, read_json, read_npz
from pipeline.core.metrics import label, write_metrics
from pipeline.core.params import load_params
from pipeline.core.tracking import log_stage
from pipeline.experiments.ape import run_ape
from pipeline.reporting import plot_data
from pipeline.reporting.plots import ape_histograms
from pipeline.tabular.mlp import load_mlp

META, MODEL, AUGMENTED, BOUNDARY = ("data/processed/meta.json", "models/mlp.pt", "data/augmented.npz",
                                   "results/ape/boundary.tsv")
RECORDS, HIST, METRICS = "results/ape/records.tsv", "plots/ape_histogram.csv", "metrics/ape.json"
FIGURES = {1: "plots/ape_figure1.png", 4: "plots/ape_figure4.png"}


def run() -> None:
    params = load_params()
    cfg, sm, meta = params["ape"], params["smoothing"], read_json(META)
    model = load_mlp(MODEL, len(meta["feature_names"]), params["train"]["hidden"])
    augmented = read_npz(AUGMENTED)
    r = run_ape(model, augmented, meta, params, pd.read_csv(BOUNDARY, sep="\t"))
    with atomic_path(RECORDS) as tmp:
        r.records.to_csv(tmp, sep="\t", index=False, float_format="%.4f")
    unit, B = meta["sensitive"], meta["threshold"]
    with atomic_path(HIST) as tmp:
        plot_data.histogram(r.edges, r.counts, unit).to_csv(tmp, index=False)
    titles = {1: f"Figure 1: {unit} of positive predictions on the augmented set (N={sm['n']}, α={sm['alpha']:g})",
              4: f"Figure 4: {unit} of positive predictions, σ={cfg['ablation']['sigma']:g}, N and α varied"}
    notes = {k: f"expansion {m['expansion']:.2f}\n[{m['expansion_low']:.2f}, {m['expansion_high']:.2f}] {unit}"
             for k, m in r.metrics.items()}
    for figure, names in r.figures.items():
        ape_histograms(FIGURES[figure], r.edges, {k: r.counts[k] for k in names}, B, titles[figure], unit, cfg["step"],
                       cfg["noise"], r.boundaries, notes)
    tree = write_metrics(METRICS, "ape", {"threshold": B, "records": int(len(augmented["values"])), **r.metrics})
    log_stage(params, "ape", {"ape": cfg, "smoothing": {k: sm[k] for k in ("sigmas", "n0", "n", "alpha", "chunk")},
                              "seed": params["seed"], "compute": params["compute"]},
              tree, [*FIGURES.values(), HIST, RECORDS])
    for name, m in r.metrics.items():
        truth = m.get("truth")
        split = "" if truth is None else (f"; on {truth['records']} records: {truth['smoothing_effect']} below B "
                                          f"above b*, {truth['certification_failures']} below b* "
                                          f"(bound {truth['failure_bound']:.0f}), {truth['undecided']} undecided")
        print(f"{label(name):28s} expansion {m['expansion']:.2f} [{m['expansion_low']:.2f}, {m['expansion_high']:.2f}] "
              f"{unit} below B={B:g}{split}")


if __name__ == "__main__":
    execute(run)
