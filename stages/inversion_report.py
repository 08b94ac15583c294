"""DVC stage ``inversion_report``: Figure 3 and the Section 6 table beside the paper's numbers."""
from pipeline.core.cli import execute
from pipeline.core.io import read_json, write_text
from pipeline.core.metrics import configurations, read_metrics, token
from pipeline.core.params import load_params
from pipeline.core.tracking import log_stage
from pipeline.reporting.plots import figure3
from pipeline.reporting.tables import inversion_markdown
from pipeline.smoothing.stats import clopper_pearson_interval

METRICS, META, FIGURE, REPORT = "metrics/inversion.json", "data/images/meta.json", "plots/figure3.png", "reports/inversion.md"
MEASURES = {"asr": ("attacks", "ASR"), "accuracy": ("accuracy_images", "accuracy, most confident image per class"),
            "accuracy_test": ("accuracy_test_images", "accuracy, private test split")}  # rate -> (its count, its name)


def rate(m: dict, measure: str) -> tuple[float, float, float]:
    """A rate of one configuration and its two-sided 95% Clopper-Pearson interval."""
    n = m[MEASURES[measure][0]]
    lo, hi = clopper_pearson_interval(round(m[measure] * n), n)
    return m[measure], float(lo), float(hi)


def run() -> None:
    params = load_params()
    sigmas, ns = params["inversion"]["sigmas"], params["inversion"]["ns"]
    m = configurations(read_metrics(METRICS, "inversion"), "asr")
    key = lambda s, n: f"rp.{token('sigma', s)}.{token('n', n)}"  # noqa: E731 (the inversion configuration's path)
    series = {k: {n: list(zip(*(rate(m[key(s, n)], k) for s in sigmas))) for n in ns} for k in MEASURES}
    figure3(FIGURE, sigmas, ns, series, {k: rate(m["base"], k) for k in MEASURES},
            {k: name for k, (_, name) in MEASURES.items()})
    order = ["base"] + [key(s, n) for s in sigmas for n in ns]
    m = {**{k: m[k] for k in order}, **m}  # the grid's order, then MID
    write_text(REPORT, inversion_markdown(m, read_json(META), read_metrics("metrics/target.json", "target"),
                                          read_metrics("metrics/evaluator.json", "evaluator")))
    log_stage(params, "inversion_report", {"inversion": params["inversion"]}, artifacts=[FIGURE, REPORT])
    print(open(REPORT).read())


if __name__ == "__main__":
    execute(run)
