"""DVC stage ``defenses``: the defense x attack table with utility (``pipeline.reporting.defense_table``)
and the privacy-utility trade-off figure, from the inversion and membership metrics."""
from pipeline.core.cli import execute
from pipeline.core.io import write_text
from pipeline.core.metrics import read_metrics, write_metrics
from pipeline.core.params import load_params
from pipeline.core.tracking import log_stage
from pipeline.reporting import defense_table
from pipeline.reporting.plots import tradeoff

INVERSION, MEMBERSHIP, TARGET = "metrics/inversion.json", "metrics/membership.json", "metrics/target.json"
REPORT, TABLE, FIGURE = "reports/defenses.md", "reports/defenses.json", "plots/tradeoff.png"


def run() -> None:
    params = load_params()
    rows = defense_table.table(read_metrics(INVERSION, "inversion"), read_metrics(MEMBERSHIP, "membership"))
    text = defense_table.markdown(rows, read_metrics(TARGET, "target"))
    tradeoff(FIGURE, rows)
    tree = write_metrics(TABLE, "defenses", rows)
    write_text(REPORT, text)
    log_stage(params, "defenses", {}, tree, [REPORT, TABLE, FIGURE])
    print(text)


if __name__ == "__main__":
    execute(run)
