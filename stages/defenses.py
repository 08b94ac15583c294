"""DVC stage ``defenses``: every defense family on one privacy-utility footing, per task
(``pipeline.reporting.defense_table``): the image task's defense x attack table (BREP-MI and the
membership attacker) and the tabular task's (the attribute attacker), each with its Pareto
front, and both frontier figures."""
from pathlib import Path

from pipeline.core.cli import execute
from pipeline.core.io import atomic_path, read_json, write_text
from pipeline.core.metrics import configurations, read_metrics, token, write_metrics
from pipeline.core.params import load_params
from pipeline.core.tracking import log_stage
from pipeline.reporting import defense_table, plot_data
from pipeline.reporting.plots import frontier, n_effect

INVERSION, MEMBERSHIP, TARGET = "metrics/inversion.json", "metrics/membership.json", "metrics/target.json"
ATTRIBUTE, CERTIFY, TABULAR_META = "metrics/attribute_attack.json", "metrics/certify", "data/processed/meta.json"
REPORT, TABLE = "reports/defenses.md", "reports/defenses.json"
IMAGES, TABULAR = "plots/frontier_images.png", "plots/frontier_tabular.png"
IMAGES_DATA, TABULAR_DATA = "plots/frontier_images.csv", "plots/frontier_tabular.csv"
N_EFFECT = "plots/n_effect_images.png"


def n_effect_images(params: dict, inversion: dict, membership: dict) -> None:
    """The image task's N grid at ``n_effect.images.sigma``: utility, BREP-MI's ASR beside its
    chance baseline, and the strongest membership attack's AUC where the membership stage ran
    that N (``membership.rp``)."""
    cfg = params["n_effect"]["images"]
    name = lambda n: f"rp.{token('sigma', cfg['sigma'])}.{token('n', n)}"  # noqa: E731
    point = lambda r, k: (r[k], r[f"{k}_low"], r[f"{k}_high"])  # noqa: E731
    inv, mem = configurations(inversion, "asr"), configurations(membership, "attacks")
    rows = [inv[name(n)] for n in cfg["ns"]]
    panels = [("Utility", "test accuracy, private test split", {"majority vote of N": [point(r, "accuracy_test") for r in rows]}),
              ("Model inversion (BREP-MI)", "attack success rate",
               {"ASR": [point(r, "asr") for r in rows], "ASR with no attack (the starts)":
                [point(r, "asr_no_attack") for r in rows]})]
    measured = [n for n in cfg["ns"] if name(n) in mem]
    if measured == cfg["ns"]:
        panels.append(("Membership inference", "AUC of the strongest attack",
                       {"strongest attack": [point(mem[name(n)], "strongest_auc") for n in cfg["ns"]]}))
    n_effect(N_EFFECT, cfg["ns"], panels, f"Image task: the effect of N at σ = {cfg['sigma']:g}",
             {1: (f"chance: {rows[0]['chance']:.0%}", rows[0]["chance"]), 2: ("chance: 0.5", 0.5)})


def run() -> None:
    params = load_params()
    inversion, membership = read_metrics(INVERSION, "inversion"), read_metrics(MEMBERSHIP, "membership")
    images = defense_table.table(inversion, membership)
    n_effect_images(params, inversion, membership)
    certify = {k: v for f in sorted(Path(CERTIFY).glob("*.json")) for k, v in read_metrics(f, "certify").items()}
    tabular = defense_table.tabular_table(read_metrics(ATTRIBUTE, "attribute_attack"), certify)
    unit = read_json(TABULAR_META)["sensitive"]
    text = (defense_table.markdown(images, read_metrics(TARGET, "target")) + "\n"
            + defense_table.tabular_markdown(tabular, unit))
    image_panels = [("brepmi_asr", "BREP-MI attack success rate", None, True, "Model inversion (BREP-MI, label-only)"),
                    ("membership_auc", "membership AUC, strongest attack", 0.5, True, "Membership inference")]
    tabular_panels = [("attribute_width_median", f"median width of the attacker's {unit} interval", None, False,
                       "Attribute inference (Scenario I, repeated queries)")]
    frontier(IMAGES, images, image_panels, "Image task: privacy-utility frontier per defense family")
    frontier(TABULAR, tabular, tabular_panels, "Tabular task: privacy-utility frontier per defense family")
    for path, task, rows, panels in ((IMAGES_DATA, "images", images, image_panels),
                                     (TABULAR_DATA, "tabular", tabular, tabular_panels)):
        with atomic_path(path) as tmp:
            plot_data.frontier(task, rows, [(p[0], p[4]) for p in panels]).to_csv(tmp, index=False, float_format="%.6g")
    tree = write_metrics(TABLE, "defenses", {f"{task}.{name}": row for task, rows in (("images", images),
                                                                                     ("tabular", tabular))
                                             for name, row in rows.items()})
    write_text(REPORT, text)
    log_stage(params, "defenses", {"n_effect": params["n_effect"]["images"]}, tree,
              [REPORT, TABLE, IMAGES, TABULAR, IMAGES_DATA, TABULAR_DATA, N_EFFECT])
    print(text)


if __name__ == "__main__":
    execute(run)
