"""DVC stage ``defenses``: the defense x attack table with utility (``pipeline.defenses``) and
the privacy-utility trade-off figure, from the inversion and membership metrics."""
from pipeline import defenses
from pipeline.io import read_json, write_json, write_text
from pipeline.params import load_params
from pipeline.plots import tradeoff
from pipeline.tracking import main, stage_run

INVERSION, MEMBERSHIP, TARGET = "metrics/inversion.json", "metrics/membership.json", "metrics/target.json"
REPORT, TABLE, FIGURE = "reports/defenses.md", "reports/defenses.json", "plots/tradeoff.png"


def run() -> None:
    params = load_params()
    rows = defenses.table(read_json(INVERSION), read_json(MEMBERSHIP))
    text = defenses.markdown(rows, read_json(TARGET))
    tradeoff(FIGURE, rows)
    write_json(TABLE, rows)
    write_text(REPORT, text)
    with stage_run(params, "defenses", {}) as mlflow:
        for name, row in rows.items():
            key = name.replace("=", "_").replace(",", "_")
            flat = {k: v for k, v in row.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
            flat.update({f"auc_{a}": v for a, v in row.get("membership_auc", {}).items() if v is not None})
            mlflow.log_metrics({f"{key}.{k}": v for k, v in flat.items()})
        for path in (REPORT, TABLE, FIGURE):
            mlflow.log_artifact(path)
    print(text)


if __name__ == "__main__":
    main(run)
