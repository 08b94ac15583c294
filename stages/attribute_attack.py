"""DVC stage ``attribute_attack``: Scenario I against the base and the served smoothed classifiers,
compared with Definition 2's certified sets, and the repeated-query averaging attacker; the
baselines (DP-SGD per epsilon, randomized response per epsilon, fresh and keyed) against the same."""
from functools import partial

import pandas as pd

from pipeline.core.cli import execute
from pipeline.core.io import atomic_path, read_json, read_npz, write_text
from pipeline.core.metrics import token, write_metrics
from pipeline.core.params import load_params
from pipeline.core.tracking import log_stage
from pipeline.defenses import dpsgd
from pipeline.experiments.attribute import run_attribute_attack, service_secret
from pipeline.reporting.plots import repeat_widths
from pipeline.reporting.tables import attribute_markdown
from pipeline.tabular.mlp import load_mlp, mlp

DATASET, META, MODEL, APE = ("data/processed/dataset.npz", "data/processed/meta.json", "models/mlp.pt",
                             "results/ape/records.tsv")
RESULTS, METRICS, REPORT = "results/attribute_attack.tsv", "metrics/attribute_attack.json", "reports/attribute_attack.md"
FIGURE = "plots/attribute_attack_repeats.png"


def run() -> None:
    params = load_params()
    cfg, meta = params["attribute_attack"], read_json(META)
    model = load_mlp(MODEL, len(meta["feature_names"]), params["train"]["hidden"])
    secret, source = service_secret(cfg, params["seed"])
    certified = pd.read_csv(APE, sep="\t").set_index(["config", "test_index"])
    build = partial(mlp, len(meta["feature_names"]), params["train"]["hidden"])
    private = {e: dpsgd.load_private("tabular", e, build) for e in params["dpsgd"]["epsilons"]}
    metrics, rows, widths = run_attribute_attack(model, read_npz(DATASET), meta, certified, params, secret, private)
    with atomic_path(RESULTS) as tmp:
        rows.to_csv(tmp, sep="\t", index=False, float_format="%.4f")
    first_rr = f"rr.{token('epsilon', params['randomized_response']['epsilons'][0])}."
    repeat_widths(FIGURE, cfg["repeats"], {(name, mode): w for (name, mode), w in widths.items()
                                           if name.startswith("sigma_") or (name.startswith(first_rr) and
                                                                           mode != "keyed_naive")},
                  meta["sensitive"])
    tree = write_metrics(METRICS, "attribute_attack", metrics)
    write_text(REPORT, attribute_markdown(metrics, meta["sensitive"], cfg["repeats"]))
    sm = params["smoothing"]
    log_stage(params, "attribute_attack", {"attribute_attack": {k: v for k, v in cfg.items() if k != "secret_env"},
                                           "dpsgd": params["dpsgd"], "randomized_response": params["randomized_response"],
                                           "secret_source": source, "seed": params["seed"],
                                           "smoothing": {k: sm[k] for k in ("sigmas", "n", "alpha", "chunk")}},
              tree, [RESULTS, FIGURE, REPORT])
    print(open(REPORT).read())


if __name__ == "__main__":
    execute(run)
