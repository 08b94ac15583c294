"""DVC stage ``invert``: BREP-MI against the base target, the smoothed target over the sigma x N
grid (paper Section 6), the MID targets and the baselines (DP-SGD models, randomized response on
the target's label): ASR, accuracy, queries and the reconstructions.
One attack per task on ``compute``'s backend (local or Ray)."""
from functools import partial

from pipeline.core.cli import execute
from pipeline.core.io import atomic_path, read_json, read_npz
from pipeline.core.metrics import label, write_metrics
from pipeline.core.params import load_params
from pipeline.core.tracking import log_stage
from pipeline.defenses import dpsgd
from pipeline.defenses.mid import checkpoint, load_mid
from pipeline.experiments.inversion import run_grid
from pipeline.reporting.plots import inversion_comparison
from pipeline.vision import nets
from pipeline.vision.nets import load_network

DATASET, META = "data/images/dataset.npz", "data/images/meta.json"
ATTACKS, METRICS, FIGURE = "results/inversion/attacks.tsv", "metrics/inversion.json", "plots/inversion.png"


def run() -> None:
    params = load_params()
    a, meta = read_npz(DATASET), read_json(META)
    classes, shape = len(meta["classes"]), meta["shape"]
    arch = params["target"]["arch"]
    target = load_network("target", "models/target.pt", shape, classes, arch)
    evaluator = load_network("evaluator", "models/evaluator.pt", shape, classes, params["evaluator"]["arch"])
    G = load_network("generator", "models/generator.pt", shape, params["gan"]["z_dim"])
    mids = {b: load_mid(checkpoint(b), shape, classes, params["mid"]["k"], arch) for b in params["mid"]["betas"]}
    build = partial(nets.build, "target", arch, shape[0], shape[1], classes)
    private = {e: dpsgd.load_private("images", e, build) for e in params["dpsgd"]["epsilons"]}
    metrics, attacks, figure = run_grid(G, target, mids, evaluator, a, meta["classes"], params, private=private)
    inversion_comparison(FIGURE, **figure)
    with atomic_path(ATTACKS) as tmp:
        attacks.to_csv(tmp, sep="\t", index=False, float_format="%.4f")
    tree = write_metrics(METRICS, "inversion", metrics)
    log_stage(params, "invert", {k: params[k] for k in ("brepmi", "inversion", "mid", "dpsgd", "randomized_response",
                                                        "seed", "compute")}, tree,
              [FIGURE, ATTACKS])
    for config, m in ((c, m) for c, m in metrics.items() if "asr" in m):
        print(f"{label(config):22s} ASR {m['asr']:.0%} (no attack {m['asr_no_attack']:.0%}, lift {m['lift']:+.0%})  "
              f"nearer private {m['nearer_private']:.0%}  KNN {m['knn_distance']:.2f}  test accuracy "
              f"{m['accuracy_test']:.1%}{' (at chance)' if m['at_chance'] else ''}")
    h = metrics["held_out"]
    print(f"held-out private images: evaluator accuracy {h['accuracy']:.1%}, nearer private {h['nearer_private']:.0%}, "
          f"KNN {h['knn_distance']:.2f}")


if __name__ == "__main__":
    execute(run)
