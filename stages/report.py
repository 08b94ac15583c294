"""DVC stage ``report``: Table 1, the APE summary and the certified-accuracy figure."""
import numpy as np
import pandas as pd

from pipeline.core.cli import execute
from pipeline.core.io import read_json, write_text
from pipeline.core.metrics import configurations, label, read_metrics, token, write_metrics
from pipeline.core.params import load_params
from pipeline.core.tracking import log_stage
from pipeline.reporting import tables
from pipeline.reporting.plots import certified_accuracy_curves
from pipeline.smoothing import clopper_pearson_interval
from pipeline.smoothing.certification import certified_accuracy
from pipeline.tabular.ape import configurations as ape_configurations

META, TRAIN, APE, BOUNDARY = ("data/processed/meta.json", "metrics/train.json", "metrics/ape.json",
                              "metrics/boundary.json")
TABLE_MD, TABLE_JSON, APE_MD, CURVE = ("reports/table1.md", "reports/table1.json", "reports/ape.md",
                                       "plots/certified_accuracy.png")


def run() -> None:
    params = load_params()
    meta, train, ape = read_json(META), read_metrics(TRAIN, "train"), read_metrics(APE, "ape")
    sm, unit = params["smoothing"], meta["sensitive"]
    certified = [m for s in sm["sigmas"] for m in read_metrics(f"metrics/certify/sigma_{s}.json", "certify").values()]
    n = meta["n_test"]
    low, high = clopper_pearson_interval(round(train["test_accuracy"] * n), n)
    table = tables.table1({"accuracy": train["test_accuracy"], "accuracy_low": float(low), "accuracy_high": float(high)},
                          certified, unit)
    tree = write_metrics(TABLE_JSON, "table1", table)
    found = configurations(ape, "expansion")
    order = ["base"] + [c.name for c in ape_configurations(sm, params["ape"]["ablation"])]
    records = {name: found[name] for name in order}
    write_text(TABLE_MD, f"## Table 1 (test set, N = {sm['n']}, alpha = {sm['alpha']:g})\n\n"
                         f"{tables.table1_markdown(table, unit)}")
    write_text(APE_MD, f"## APE (B = {meta['threshold']:g}, {ape['records']} records in D_t,1, "
                       f"noise: {params['ape']['noise']})\n\n{tables.ape_markdown(records, unit)}\n"
                       f"{tables.boundary_markdown(read_metrics(BOUNDARY, 'boundary'), unit)}")
    radii = np.linspace(0, 3, 121)
    curves = {label(token("sigma", s)): (radii, certified_accuracy(pd.read_csv(f"results/certify/sigma_{s}.tsv",
                                                                                sep="\t"), radii))
              for s in sm["sigmas"]}
    certified_accuracy_curves(CURVE, curves, "standardised units")
    log_stage(params, "report", {"smoothing": sm, "ape": params["ape"]}, tree,
              artifacts=[TABLE_MD, TABLE_JSON, APE_MD, CURVE, "plots/ape_figure1.png", "plots/ape_figure4.png"])
    print(open(TABLE_MD).read())
    print(open(APE_MD).read())


if __name__ == "__main__":
    execute(run)
