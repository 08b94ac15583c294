"""DVC stage ``certify@<sigma>``: certify the test set at one noise level (Table 1 row)."""
import argparse

import torch

from pipeline import model as mlp
from pipeline.certification import certify_table, summary
from pipeline.errors import PipelineError
from pipeline.io import atomic_path, read_json, read_npz, write_json
from pipeline.params import load_params
from pipeline.tracking import main, stage_run

DATASET, META, MODEL = "data/processed/dataset.npz", "data/processed/meta.json", "models/mlp.pt"


def run() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sigma", required=True, help="noise level, as written in params.yaml")
    tag = parser.parse_args().sigma
    params = load_params()
    cfg = params["smoothing"]
    if float(tag) not in [float(s) for s in cfg["sigmas"]]:
        raise PipelineError(f"params.yaml: --sigma {tag} is not in smoothing.sigmas {cfg['sigmas']}; "
                            f"fix: add it there (the DVC matrix stage passes only those)")
    a, meta = read_npz(DATASET), read_json(META)
    model = mlp.load(MODEL, len(meta["feature_names"]), params["train"]["hidden"])
    table = certify_table(model, torch.from_numpy(a["test_x"]), a["test_y"], float(tag), cfg,
                          params["seed"], meta["sensitive_std"], params["compute"])
    metrics = {"sigma": float(tag), **summary(table)}
    tsv, out = f"results/certify/sigma_{tag}.tsv", f"metrics/certify/sigma_{tag}.json"
    with atomic_path(tsv) as tmp:
        table.to_csv(tmp, sep="\t", index=False, float_format="%.6f")
    write_json(out, metrics)
    logged = {"smoothing": {k: cfg[k] for k in ("n0", "n", "alpha", "noise", "chunk")}, "sigma": float(tag),
              "seed": params["seed"], "compute": params["compute"]}
    with stage_run(params, f"certify@{tag}", logged) as mlflow:
        mlflow.log_metrics(metrics)
        mlflow.log_artifact(tsv)
    print(f"sigma={tag}: accuracy {metrics['accuracy']:.2%}, abstention {metrics['abstention_rate']:.2%}, "
          f"avg radius {metrics['avg_radius']:.3f} ({metrics['avg_radius_units']:.2f} {meta['sensitive']})")


if __name__ == "__main__":
    main(run)
