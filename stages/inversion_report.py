"""DVC stage ``inversion_report``: Figure 3 and the Section 6 table beside the paper's numbers."""
from pipeline.core.cli import execute
from pipeline.core.io import read_json, write_text
from pipeline.core.metrics import configurations, read_metrics, token
from pipeline.core.params import load_params
from pipeline.core.tracking import log_stage
from pipeline.reporting.plots import figure3
from pipeline.reporting.tables import inversion_markdown

METRICS, META, FIGURE, REPORT = "metrics/inversion.json", "data/images/meta.json", "plots/figure3.png", "reports/inversion.md"


def run() -> None:
    params = load_params()
    sigmas, ns = params["inversion"]["sigmas"], params["inversion"]["ns"]
    m = configurations(read_metrics(METRICS, "inversion"), "asr")
    key = lambda s, n: f"rp.{token('sigma', s)}.{token('n', n)}"  # noqa: E731 (the inversion configuration's path)
    figure3(FIGURE, sigmas, ns, {n: [m[key(s, n)]["asr"] for s in sigmas] for n in ns},
            {n: [m[key(s, n)]["accuracy"] for s in sigmas] for n in ns}, m["base"]["asr"], m["base"]["accuracy"],
            "one most-confident image per class")
    order = ["base"] + [key(s, n) for s in sigmas for n in ns]
    m = {**{k: m[k] for k in order}, **m}  # the grid's order, then MID
    write_text(REPORT, inversion_markdown(m, read_json(META), read_metrics("metrics/target.json", "target"),
                                          read_metrics("metrics/evaluator.json", "evaluator")))
    log_stage(params, "inversion_report", {"inversion": params["inversion"]}, artifacts=[FIGURE, REPORT])
    print(open(REPORT).read())


if __name__ == "__main__":
    execute(run)
