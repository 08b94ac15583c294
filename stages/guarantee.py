"""DVC stage ``guarantee``: what Robust Privacy's guarantee covers, measured on the interface a
service exposes (docs/guarantee.md): the price and the effect of N on the tabular task."""
from pipeline.core.cli import execute
from pipeline.core.io import read_json, read_npz, write_text
from pipeline.core.metrics import token, write_metrics
from pipeline.core.params import load_params
from pipeline.core.tracking import log_stage
from pipeline.experiments.n_effect import run_n_effect
from pipeline.reporting.plots import n_effect
from pipeline.reporting.tables import n_effect_markdown
from pipeline.tabular.mlp import load_mlp

DATASET, META, MODEL = "data/processed/dataset.npz", "data/processed/meta.json", "models/mlp.pt"
METRICS, REPORT, N_FIGURE = "metrics/guarantee.json", "reports/guarantee.md", "plots/n_effect_tabular.png"


def run() -> None:
    params = load_params()
    meta = read_json(META)
    model = load_mlp(MODEL, len(meta["feature_names"]), params["train"]["hidden"])
    cfg, unit = params["n_effect"]["tabular"], meta["sensitive"]
    effect, seconds = run_n_effect(model, read_npz(DATASET), meta, params)
    rows = [effect[token("n", n)] for n in cfg["ns"]]
    point = lambda r, k: (r[k], r[f"{k}_low"], r[f"{k}_high"])  # noqa: E731
    n_effect(N_FIGURE, cfg["ns"],
             [("Utility", "test accuracy (abstention = wrong)",
               {kind: [point(r[kind], "test_accuracy") for r in rows] for kind in ("predict", "vote")}),
              ("Scenario I attribute inference", f"median width of the attacker's {unit} interval",
               {kind: [point(r[kind], "width_median") for r in rows] for kind in ("predict", "vote")})],
             f"Tabular task: the effect of N at σ = {cfg['sigma']:g}")
    tree = write_metrics(METRICS, "guarantee", {"n_effect": effect})
    write_text(REPORT, n_effect_markdown(effect, unit))
    log_stage(params, "guarantee", {"n_effect": cfg, "seed": params["seed"]},
              {**tree, "seconds_per_query": seconds}, [N_FIGURE, REPORT])
    print(open(REPORT).read())
    print("seconds per answered query: " + ", ".join(f"{k}: {v * 1e6:.1f} µs" for k, v in seconds.items()))


if __name__ == "__main__":
    execute(run)
