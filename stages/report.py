"""DVC stage ``report``: Table 1, the APE summary and the certified-accuracy figure."""
import numpy as np
import pandas as pd

from pipeline import report
from pipeline.ape import configurations
from pipeline.certification import certified_accuracy
from pipeline.io import read_json, write_json, write_text
from pipeline.params import load_params
from pipeline.plots import certified_accuracy as plot_certified_accuracy
from pipeline.tracking import main, stage_run

META, TRAIN, APE = "data/processed/meta.json", "metrics/train.json", "metrics/ape.json"
TABLE_MD, TABLE_JSON, APE_MD, CURVE = ("reports/table1.md", "reports/table1.json", "reports/ape.md",
                                       "plots/certified_accuracy.png")


def run() -> None:
    params = load_params()
    meta, train, ape = read_json(META), read_json(TRAIN), read_json(APE)
    unit, sigmas = meta["sensitive"], params["smoothing"]["sigmas"]
    rows = [read_json(f"metrics/certify/sigma_{s}.json") for s in sigmas]
    table = report.table1(train["test_accuracy"], rows)
    names = ["base"] + [c[0] for c in configurations(params["smoothing"], params["ape"]["ablation"])]
    write_json(TABLE_JSON, table)
    write_text(TABLE_MD, f"## Table 1 (test set, N = {params['smoothing']['n']}, "
                         f"alpha = {params['smoothing']['alpha']:g})\n\n{report.table1_markdown(table, unit)}")
    write_text(APE_MD, f"## APE (B = {meta['threshold']:g}, {ape['records']} records in D_t,1, "
                       f"noise: {params['ape']['noise']})\n\n{report.ape_markdown(ape, names, unit)}")
    radii = np.linspace(0, 3, 121)
    curves = {f"sigma={s}": (radii, certified_accuracy(pd.read_csv(f"results/certify/sigma_{s}.tsv", sep="\t"), radii))
              for s in sigmas}
    plot_certified_accuracy(CURVE, curves, "standardised units")
    with stage_run(params, "report", {"smoothing": params["smoothing"], "ape": params["ape"]}) as mlflow:
        for path in (TABLE_MD, TABLE_JSON, APE_MD, CURVE, "plots/ape_figure1.png", "plots/ape_figure4.png"):
            mlflow.log_artifact(path)
    print(open(TABLE_MD).read())
    print(open(APE_MD).read())


if __name__ == "__main__":
    main(run)
