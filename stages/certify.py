"""DVC stage ``certify@<sigma>``: Cohen et al.'s CERTIFY for every test input at one noise
level (one row of Table 1)."""
import argparse

import torch

from pipeline.core.cli import execute, make_parser, number
from pipeline.core.errors import PipelineError
from pipeline.core.io import atomic_path, read_json, read_npz
from pipeline.core.metrics import token, write_metrics
from pipeline.core.params import load_params
from pipeline.core.tracking import log_stage
from pipeline.smoothing.certification import certification_summary, certify_table
from pipeline.tabular.mlp import load_mlp

DATASET, META, MODEL = "data/processed/dataset.npz", "data/processed/meta.json", "models/mlp.pt"


def sigma_tag(text: str) -> str:
    """The noise level as written in params.yaml (it names the output files), checked to be a number."""
    number(text)
    return text


def run(args: argparse.Namespace) -> None:
    params, tag = load_params(), args.sigma
    cfg = params["smoothing"]
    if float(tag) not in [float(s) for s in cfg["sigmas"]]:
        raise PipelineError(f"params.yaml: --sigma {tag} is not in smoothing.sigmas {cfg['sigmas']}; "
                            f"fix: add it there (the DVC matrix stage passes only those)")
    a, meta = read_npz(DATASET), read_json(META)
    model = load_mlp(MODEL, len(meta["feature_names"]), params["train"]["hidden"])
    table = certify_table(model, torch.from_numpy(a["test_x"]), a["test_y"], float(tag), cfg,
                          params["seed"], meta["sensitive_std"], params["compute"])
    unit = meta["sensitive"]
    metrics = {"sigma": float(tag), **certification_summary(table, unit, cfg, float(tag),
                                                            params["seed"], params["bootstrap"])}
    tsv, out = f"results/certify/sigma_{tag}.tsv", f"metrics/certify/sigma_{tag}.json"
    with atomic_path(tsv) as tmp:
        table.to_csv(tmp, sep="\t", index=False, float_format="%.6f")
    tree = write_metrics(out, "certify", {token("sigma", float(tag)): metrics})
    log_stage(params, f"certify@{tag}", {"smoothing": {k: cfg[k] for k in ("n0", "n", "alpha", "noise", "chunk")},
                                          "sigma": float(tag), "seed": params["seed"], "compute": params["compute"]},
              tree, [tsv])
    print(f"sigma={tag}: accuracy {metrics['accuracy']:.2%}, abstention {metrics['abstention_rate']:.2%}, "
          f"avg radius {metrics['avg_radius']:.3f} ({metrics[f'avg_radius_{unit}']:.2f} {unit})")


if __name__ == "__main__":
    parser = make_parser(__doc__)
    parser.add_argument("--sigma", required=True, type=sigma_tag, help="noise level, one of smoothing.sigmas as written")
    execute(run, parser)
