"""DVC stage ``inversion_report``: Figure 3 and the Section 6 table beside the paper's numbers."""
from pipeline.io import read_json, write_text
from pipeline.params import load_params
from pipeline.plots import figure3
from pipeline.tracking import main, stage_run

METRICS, META, FIGURE, REPORT = "metrics/inversion.json", "data/images/meta.json", "plots/figure3.png", "reports/inversion.md"
PAPER = {"base": "73% / 100%", "sigma=0.03,N=100": "44% / 100%", "sigma=0.1,N=100": "4% / 59%",
         "sigma=0.1,N=10": "6% / -"}


def run() -> None:
    params = load_params()
    grid, m, meta = params["inversion"], read_json(METRICS), read_json(META)
    target, evaluator = read_json("metrics/target.json"), read_json("metrics/evaluator.json")
    sigmas, ns = grid["sigmas"], grid["ns"]
    key = lambda s, n: f"sigma={s:g},N={n}"  # noqa: E731 (inversion.name without torch)
    figure3(FIGURE, sigmas, ns, {n: [m[key(s, n)]["asr"] for s in sigmas] for n in ns},
            {n: [m[key(s, n)]["accuracy"] for s in sigmas] for n in ns}, m["base"]["asr"], m["base"]["accuracy"],
            "one most-confident image per class")
    lines = [f"## Model inversion (BREP-MI, {meta['source']}, {len(meta['classes'])} private classes)\n",
             f"Target test accuracy {target['test_accuracy']:.2%}, evaluator test accuracy "
             f"{evaluator['test_accuracy']:.2%}.\n",
             "| Model | ASR | Accuracy (most confident per class) | Accuracy (private test) | Queries / attack | Paper: ASR / accuracy |",
             "|---|---|---|---|---|---|"]
    for config, r in m.items():
        lines.append(f"| {config} | {r['asr']:.0%} | {r['accuracy']:.0%} | {r['accuracy_test']:.2%} | "
                     f"{r['queries_mean']:.0f} | {PAPER.get(config, '')} |")
    write_text(REPORT, "\n".join(lines) + "\n")
    with stage_run(params, "inversion_report", {"inversion": grid}) as mlflow:
        mlflow.log_artifact(FIGURE)
        mlflow.log_artifact(REPORT)
    print("\n".join(lines))


if __name__ == "__main__":
    main(run)
