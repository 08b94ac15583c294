"""DVC stage ``inversion_report``: Figure 3 and the Section 6 table beside the paper's numbers."""
from pipeline.core.cli import execute
from pipeline.core.io import atomic_path, read_json, write_text
from pipeline.core.metrics import configurations, read_metrics, token
from pipeline.core.params import load_params
from pipeline.core.tracking import log_stage
from pipeline.reporting.plot_data import interval_curve, rate
from pipeline.reporting.plots import figure3
from pipeline.reporting.tables import inversion_markdown

METRICS, META = "metrics/inversion.json", "data/images/meta.json"
FIGURE, REPORT = "plots/figure3.png", "reports/inversion.md"
CURVE = "plots/inversion_asr.csv"
MEASURES = {"asr": ("attacks", "ASR"), "accuracy": ("accuracy_images", "accuracy, most confident image per class"),
            "accuracy_test": ("accuracy_test_images", "accuracy, private test split")}  # rate -> (its count, its name)


def run() -> None:
    params = load_params()
    sigmas, ns = params["inversion"]["sigmas"], params["inversion"]["ns"]
    m = configurations(read_metrics(METRICS, "inversion"), "asr")
    key = lambda s, n: f"rp.{token('sigma', s)}.{token('n', n)}"  # noqa: E731 (the inversion configuration's path)
    points = {k: {n: [rate(m[key(s, n)], k, count) for s in sigmas] for n in ns} for k, (count, _) in MEASURES.items()}
    base = {k: rate(m["base"], k, count) for k, (count, _) in MEASURES.items()}
    figure3(FIGURE, sigmas, ns, {k: {n: list(zip(*p)) for n, p in per.items()} for k, per in points.items()}, base,
            {k: name for k, (_, name) in MEASURES.items()})
    with atomic_path(CURVE) as tmp:
        interval_curve("sigma", sigmas, "asr", {f"RP, N={n}": p for n, p in points["asr"].items()}).to_csv(
            tmp, index=False, float_format="%.6g")
    order = ["base"] + [key(s, n) for s in sigmas for n in ns]
    m = {**{k: m[k] for k in order}, **m}  # the grid's order, then MID
    write_text(REPORT, inversion_markdown(m, read_json(META), read_metrics("metrics/target.json", "target"),
                                          read_metrics("metrics/evaluator.json", "evaluator")))
    log_stage(params, "inversion_report", {"inversion": params["inversion"]}, artifacts=[FIGURE, REPORT, CURVE])
    print(open(REPORT).read())


if __name__ == "__main__":
    execute(run)
