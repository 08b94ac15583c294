"""DVC stage ``inversion_report``: Figure 3 and the Section 6 table beside the paper's numbers."""
from pipeline.core.cli import execute
from pipeline.core.io import atomic_path, read_json, write_text
from pipeline.core.metrics import configurations, read_metrics, token
from pipeline.core.params import load_params
from pipeline.core.tracking import log_stage
from pipeline.reporting.plot_data import interval, interval_curve
from pipeline.reporting.plots import figure3
from pipeline.reporting.tables import inversion_markdown

METRICS, META = "metrics/inversion.json", "data/images/meta.json"
FIGURE, REPORT = "plots/figure3.png", "reports/inversion.md"
CURVE = "plots/inversion_asr.csv"
MEASURES = {"asr": "ASR", "asr_no_attack": "ASR with no attack (the starts)", "lift": "lift",
            "accuracy_test": "accuracy, private test split", "accuracy": "accuracy, most confident image per class"}


def run() -> None:
    params = load_params()
    sigmas, ns = params["inversion"]["sigmas"], params["inversion"]["ns"]
    tree = read_metrics(METRICS, "inversion")
    m = configurations(tree, "asr")
    key = lambda s, n: f"rp.{token('sigma', s)}.{token('n', n)}"  # noqa: E731 (the inversion configuration's path)
    points = {k: {n: [interval(m[key(s, n)], k) for s in sigmas] for n in ns} for k in MEASURES}
    figure3(FIGURE, sigmas, ns, {k: {n: list(zip(*p)) for n, p in per.items()} for k, per in points.items()},
            {k: interval(m["base"], k) for k in MEASURES}, MEASURES,
            {n: [bool(m[key(s, n)]["at_chance"]) for s in sigmas] for n in ns}, m["base"]["chance"])
    with atomic_path(CURVE) as tmp:
        interval_curve("sigma", sigmas, "asr", {f"RP, N={n}{suffix}": points[k][n] for n in ns for k, suffix in
                                                (("asr", ""), ("asr_no_attack", ", no attack"))}).to_csv(
            tmp, index=False, float_format="%.6g")
    extra = params["n_effect"]["images"]  # invert's N grid at one sigma, in N order after that sigma's grid N
    order = ["base"] + [key(s, n) for s in sigmas
                        for n in sorted(set(ns) | (set(extra["ns"]) if s == extra["sigma"] else set()))]
    m = {**{k: m[k] for k in order}, **m}  # the grid's order, then MID
    write_text(REPORT, inversion_markdown(m, tree["held_out"], read_json(META), read_metrics("metrics/target.json", "target"),
                                          read_metrics("metrics/evaluator.json", "evaluator")))
    log_stage(params, "inversion_report", {"inversion": params["inversion"], "n_effect": extra}, artifacts=[FIGURE, REPORT, CURVE])
    print(open(REPORT).read())


if __name__ == "__main__":
    execute(run)
