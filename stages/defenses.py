"""DVC stage ``defenses``: every defense family on one privacy-utility footing, per task
(``pipeline.reporting.defense_table``): the image task's defense x attack table (BREP-MI and the
membership attacker) and the tabular task's (the attribute attacker), each with its Pareto
front, and both frontier figures."""
from pathlib import Path

from pipeline.core.cli import execute
from pipeline.core.io import atomic_path, read_json, write_text
from pipeline.core.metrics import read_metrics, write_metrics
from pipeline.core.params import load_params
from pipeline.core.tracking import log_stage
from pipeline.reporting import defense_table, plot_data
from pipeline.reporting.plots import frontier

INVERSION, MEMBERSHIP, TARGET = "metrics/inversion.json", "metrics/membership.json", "metrics/target.json"
ATTRIBUTE, CERTIFY, TABULAR_META = "metrics/attribute_attack.json", "metrics/certify", "data/processed/meta.json"
REPORT, TABLE = "reports/defenses.md", "reports/defenses.json"
IMAGES, TABULAR = "plots/frontier_images.png", "plots/frontier_tabular.png"
IMAGES_DATA, TABULAR_DATA = "plots/frontier_images.csv", "plots/frontier_tabular.csv"


def run() -> None:
    params = load_params()
    images = defense_table.table(read_metrics(INVERSION, "inversion"), read_metrics(MEMBERSHIP, "membership"))
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
    log_stage(params, "defenses", {}, tree, [REPORT, TABLE, IMAGES, TABULAR, IMAGES_DATA, TABULAR_DATA])
    print(text)


if __name__ == "__main__":
    execute(run)
