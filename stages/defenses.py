"""DVC stage ``defenses``: the defense x attack table with utility (``pipeline.reporting.defense_table``)
and the privacy-utility trade-off figure, from the inversion and membership metrics."""
from pipeline.core.cli import execute
from pipeline.core.io import read_json, write_json, write_text
from pipeline.core.params import load_params
from pipeline.core.tracking import log_stage
from pipeline.reporting import defense_table
from pipeline.reporting.plots import tradeoff

INVERSION, MEMBERSHIP, TARGET = "metrics/inversion.json", "metrics/membership.json", "metrics/target.json"
REPORT, TABLE, FIGURE = "reports/defenses.md", "reports/defenses.json", "plots/tradeoff.png"


def run() -> None:
    params = load_params()
    rows = defense_table.table(read_json(INVERSION), read_json(MEMBERSHIP))
    text = defense_table.markdown(rows, read_json(TARGET))
    tradeoff(FIGURE, rows)
    write_json(TABLE, rows)
    write_text(REPORT, text)
    log_stage(params, "defenses", {}, rows, [REPORT, TABLE, FIGURE])
    print(text)


if __name__ == "__main__":
    execute(run)
