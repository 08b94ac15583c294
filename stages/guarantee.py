"""DVC stage ``guarantee``: what Robust Privacy's guarantee covers, measured on the interface a
service exposes (docs/guarantee.md): the distinguishing game of (R, alpha)-Robust Privacy on both
tasks, the price and the effect of N on the tabular task, and the distillation boundary on both."""
import pandas as pd
import torch

from pipeline.core.cli import execute
from pipeline.core.device import select
from pipeline.core.io import atomic_path, read_json, read_npz, write_text
from pipeline.core.metrics import configurations, token, write_metrics
from pipeline.core.params import load_params
from pipeline.core.tracking import log_stage
from pipeline.defenses.mid import checkpoint, load_mid
from pipeline.experiments.attribute import service_secret
from pipeline.experiments.extraction import extraction_images, extraction_tabular
from pipeline.experiments.guarantee import distinguishing_game, pick_records, tabular_records
from pipeline.experiments.n_effect import run_n_effect
from pipeline.reporting.plots import advantages, extraction, n_effect
from pipeline.reporting.tables import distinguish_markdown, extraction_markdown, n_effect_markdown
from pipeline.tabular.mlp import load_mlp
from pipeline.vision.nets import load_network

DATASET, META, MODEL = "data/processed/dataset.npz", "data/processed/meta.json", "models/mlp.pt"
IMAGES, IMAGES_META, TARGET = "data/images/dataset.npz", "data/images/meta.json", "models/target.pt"
GENERATOR, EVALUATOR = "models/generator.pt", "models/evaluator.pt"
METRICS, REPORT, N_FIGURE = "metrics/guarantee.json", "reports/guarantee.md", "plots/n_effect_tabular.png"
PAIRS, GAME_FIGURE = "results/guarantee/pairs.tsv", "plots/distinguishing_game.png"
STUDENTS, EXTRACTION_FIGURE = "results/guarantee/extraction.tsv", "plots/extraction.png"
ANSWERS = {"predict": "PREDICT (abstentions visible)", "vote": "majority vote of the N draws"}


def game(params: dict, data: dict, meta: dict, mlp, images: dict, target, secret: bytes) -> tuple[dict, dict]:
    """The distinguishing game on the tabular MLP and on the image ``target``: metrics and pair rows per task."""
    seed, device, sm = params["seed"], select(params["compute"]["device"]), params["smoothing"]
    common = {**{k: sm[k] for k in ("n0", "n", "alpha")}, "bootstrap": params["bootstrap"]}
    cfg = {**params["guarantee"]["tabular"], **common}
    idx, axis = tabular_records(data, meta, cfg, seed)
    found = {"tabular": distinguishing_game(mlp, 2, data["test_x"][idx], cfg["sigma"], cfg, seed, secret, device,
                                            axis=axis)}
    cfg = {**params["guarantee"]["images"], **common}
    idx = pick_records(len(images["test_x"]), cfg["records"], seed)
    found["images"] = distinguishing_game(target, int(target[-1].out_features), images["test_x"][idx], cfg["sigma"],
                                          cfg, seed, secret, device)
    return {task: m for task, (m, _) in found.items()}, {task: t for task, (_, t) in found.items()}


def distillation(params: dict, data: dict, meta: dict, mlp, images: dict, images_meta: dict, target,
                 secret: bytes) -> tuple[dict, pd.DataFrame]:
    """The distillation boundary on both tasks (one torch thread: small models, as in the training stages)."""
    seed, device = params["seed"], select(params["compute"]["device"])
    shape, classes = images_meta["shape"], len(images_meta["classes"])
    G = load_network("generator", GENERATOR, shape, params["gan"]["z_dim"])
    evaluator = load_network("evaluator", EVALUATOR, shape, classes, params["evaluator"]["arch"])
    beta = params["extraction"]["images"]["beta"]
    mids = {beta: load_mid(checkpoint(beta), shape, classes, params["mid"]["k"], params["target"]["arch"])}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        tabular, rows = extraction_tabular(mlp, data, meta, params, seed, secret, device)
        vision, image_rows = extraction_images(target, mids, G, evaluator, images, params, seed, secret, device)
    finally:
        torch.set_num_threads(threads)
    return {"tabular": tabular, "images": vision}, pd.concat([rows.assign(task="tabular"),
                                                             image_rows.assign(task="images")])


def extraction_panels(m: dict, params: dict, unit: str) -> list:
    """The two panels of ``plots/extraction.png``: Scenario I's interval width (tabular) and
    BREP-MI's ASR (images), against the students and the served models."""
    point = lambda r, k: (r[k], r[f"{k}_low"], r[f"{k}_high"])  # noqa: E731
    panels = []
    for task, key, title, ylabel in (("tabular", "width_median", "Tabular: Scenario I attribute inference",
                                      f"median width of the attacker's {unit} interval"),
                                     ("images", "asr", "Images: BREP-MI model inversion", "attack success rate")):
        budgets = params["extraction"][task]["budgets"]
        served = configurations(m[task], "served")
        get = (lambda r: point(r, key)) if task == "tabular" else (lambda r: point(r["brepmi"], key))
        panels.append((title, ylabel, budgets, {name: [get(node[token("q", q)]) for q in budgets]
                                                for name, node in served.items()},
                       {name: get(node["served"]) for name, node in served.items()},
                       None if task == "tabular" else m[task]["base"]["served"]["brepmi"]["chance"]))
    return panels


def run() -> None:
    params = load_params()
    meta = read_json(META)
    model = load_mlp(MODEL, len(meta["feature_names"]), params["train"]["hidden"])
    cfg, unit = params["n_effect"]["tabular"], meta["sensitive"]
    data = read_npz(DATASET)
    secret, source = service_secret(params["attribute_attack"], params["seed"])
    images, images_meta = read_npz(IMAGES), read_json(IMAGES_META)
    target = load_network("target", TARGET, images_meta["shape"], len(images_meta["classes"]), params["target"]["arch"])
    distinguish, pairs = game(params, data, meta, model, images, target, secret)
    with atomic_path(PAIRS) as tmp:
        pd.concat([t.assign(task=task) for task, t in pairs.items()]).to_csv(tmp, sep="\t", index=False,
                                                                            float_format="%.6g")
    advantages(GAME_FIGURE, pairs, params["smoothing"]["alpha"] / 2)
    effect, seconds = run_n_effect(model, data, meta, params)
    distilled, students = distillation(params, data, meta, model, images, images_meta, target, secret)
    with atomic_path(STUDENTS) as tmp:
        students.to_csv(tmp, sep="\t", index=False, float_format="%.6g")
    extraction(EXTRACTION_FIGURE, extraction_panels(distilled, params, unit))
    rows = [effect[token("n", n)] for n in cfg["ns"]]
    point = lambda r, k: (r[k], r[f"{k}_low"], r[f"{k}_high"])  # noqa: E731
    n_effect(N_FIGURE, cfg["ns"],
             [("Utility", "test accuracy (abstention = wrong)",
               {name: [point(r[kind], "test_accuracy") for r in rows] for kind, name in ANSWERS.items()}),
              ("Scenario I attribute inference", f"median width of the attacker's {unit} interval",
               {name: [point(r[kind], "width_median") for r in rows] for kind, name in ANSWERS.items()})],
             f"Tabular task: the effect of N at σ = {cfg['sigma']:g}")
    tree = write_metrics(METRICS, "guarantee", {"distinguish": distinguish, "n_effect": effect,
                                                "extraction": distilled})
    write_text(REPORT, distinguish_markdown(distinguish) + "\n" + n_effect_markdown(effect, unit) + "\n"
               + extraction_markdown(distilled, params, unit))
    log_stage(params, "guarantee", {"guarantee": params["guarantee"], "n_effect": cfg, "seed": params["seed"],
                                    "extraction": params["extraction"], "secret_source": source},
              {**tree, "seconds_per_query": seconds},
              [N_FIGURE, GAME_FIGURE, EXTRACTION_FIGURE, PAIRS, STUDENTS, REPORT])
    print(open(REPORT).read())
    print("seconds per answered query: " + ", ".join(f"{k}: {v * 1e6:.1f} µs" for k, v in seconds.items()))


if __name__ == "__main__":
    execute(run)
