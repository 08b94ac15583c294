"""DVC stage ``download``: write the insurance table to data/insurance.csv (``data.source``)."""
from pathlib import Path

from pipeline.core.cli import execute
from pipeline.core.params import load_params
from pipeline.core.tracking import stage_run
from pipeline.tabular import insurance

OUT = "data/insurance.csv"


def run() -> None:
    params = load_params()  # validates every key before any work
    info = insurance.acquire(params["data"], params["seed"], Path(OUT))
    with stage_run(params, "download", {"data": params["data"], "seed": params["seed"]}) as tracked:
        tracked.log_metrics({"rows": info["rows"]})
        tracked.set_tags({"data.source": info["source"], "data.sha256": info["sha256"]})


if __name__ == "__main__":
    execute(run)
