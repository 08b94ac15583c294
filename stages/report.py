"""DVC stage ``report``: Table 1, the APE summary and the certified-accuracy figure."""
import numpy as np
import pandas as pd

from pipeline.core.cli import execute
from pipeline.core.io import read_json, write_json, write_text
from pipeline.core.params import load_params
from pipeline.core.tracking import log_stage
from pipeline.reporting import tables
from pipeline.reporting.plots import certified_accuracy_curves
from pipeline.smoothing.certification import certified_accuracy
from pipeline.tabular.ape import configurations

META, TRAIN, APE = "data/processed/meta.json", "metrics/train.json", "metrics/ape.json"
TABLE_MD, TABLE_JSON, APE_MD, CURVE = ("reports/table1.md", "reports/table1.json", "reports/ape.md",
                                       "plots/certified_accuracy.png")


def run() -> None:
    params = load_params()
    meta, train, ape = read_json(META), read_json(TRAIN), read_json(APE)
    sm, unit = params["smoothing"], meta["sensitive"]
    table = tables.table1(train["test_accuracy"], [read_json(f"metrics/certify/sigma_{s}.json") for s in sm["sigmas"]])
    names = ["base"] + [c.name for c in configurations(sm, params["ape"]["ablation"])]
    write_json(TABLE_JSON, table)
    write_text(TABLE_MD, f"## Table 1 (test set, N = {sm['n']}, alpha = {sm['alpha']:g})\n\n"
                         f"{tables.table1_markdown(table, unit)}")
    write_text(APE_MD, f"## APE (B = {meta['threshold']:g}, {ape['records']} records in D_t,1, "
                       f"noise: {params['ape']['noise']})\n\n{tables.ape_markdown(ape, names, unit)}")
    radii = np.linspace(0, 3, 121)
    curves = {f"sigma={s}": (radii, certified_accuracy(pd.read_csv(f"results/certify/sigma_{s}.tsv", sep="\t"), radii))
              for s in sm["sigmas"]}
    certified_accuracy_curves(CURVE, curves, "standardised units")
    log_stage(params, "report", {"smoothing": sm, "ape": params["ape"]},
              artifacts=[TABLE_MD, TABLE_JSON, APE_MD, CURVE, "plots/ape_figure1.png", "plots/ape_figure4.png"])
    print(open(TABLE_MD).read())
    print(open(APE_MD).read())


if __name__ == "__main__":
    execute(run)
