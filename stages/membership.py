"""DVC stage ``membership``: the defenses (none, output perturbation against three attackers, MID
per beta, RP per sigma and N, DP-SGD per epsilon, randomized response per epsilon) against the membership attacks on the image target, LiRA and RMIA
included (``pipeline.experiments.membership``)."""
from functools import partial

import pandas as pd
import torch

from pipeline.attacks.membership_metrics import roc_summary
from pipeline.core.cli import execute
from pipeline.core.io import atomic_path, read_json, read_npz, write_text
from pipeline.core.metrics import write_metrics
from pipeline.core.params import load_params
from pipeline.core.tracking import log_stage
from pipeline.defenses import dpsgd
from pipeline.defenses.mid import checkpoint, load_mid
from pipeline.experiments.membership import evaluate_defenses, score_rows
from pipeline.reporting import plot_data
from pipeline.reporting.plots import roc_grid
from pipeline.reporting.tables import membership_markdown
from pipeline.vision import nets
from pipeline.vision.nets import load_network

DATASET, META = "data/images/dataset.npz", "data/images/meta.json"
METRICS, SCORES, FIGURE, REPORT = ("metrics/membership.json", "results/membership/scores.tsv",
                                   "plots/membership_roc.png", "reports/membership.md")
ROC = "plots/membership_roc.csv"
FIGURE_ATTACKS = ("confidence", "lira_online", "lira_offline", "rmia", "label_only_noise", "label_only_lira_offline")


def run() -> None:
    params = load_params()
    torch.set_num_threads(1)  # small convolutions: one thread is about as fast, and never spins against other processes
    a, meta = read_npz(DATASET), read_json(META)
    classes, shape, k = len(meta["classes"]), meta["shape"], params["mid"]["k"]
    arch = params["target"]["arch"]
    target = load_network("target", "models/target.pt", shape, classes, arch)
    mids = {b: load_mid(checkpoint(b), shape, classes, k, arch) for b in params["mid"]["betas"]}
    build = partial(nets.build, "target", arch, shape[0], shape[1], classes)
    private = {e: dpsgd.load_private("images", e, build) for e in params["dpsgd"]["epsilons"]}
    table, scores, setup = evaluate_defenses(target, mids, a, classes, params, private)
    with atomic_path(SCORES) as tmp:
        rows = pd.DataFrame(score_rows(scores), columns=["defense", "attack", "member", "score"])
        rows.to_csv(tmp, sep="\t", index=False, float_format="%.9g")
    tree = write_metrics(METRICS, "membership", {**table, "setup": setup})
    write_text(REPORT, membership_markdown(table, setup))
    strongest = {d: row["strongest"] for d, row in table.items()}
    curves = {d: {k: roc_summary(s.member, s.nonmember) for k, s in per.items()
                  if k in FIGURE_ATTACKS or k == strongest[d]} for d, per in scores.items()}
    roc_grid(FIGURE, {d: c for d, c in curves.items() if not d.startswith(("dpsgd.", "rr."))}, f"Membership inference on the image target: {setup['members']} members, "
             f"{setup['nonmembers']} non-members, {setup['reference_models']} reference models",
             setup["members"], setup["nonmembers"], strongest)
    with atomic_path(ROC) as tmp:
        plot_data.roc(curves, strongest).to_csv(tmp, index=False, float_format="%.6g")
    log_stage(params, "membership", {k: params[k] for k in ("membership", "target", "mid", "dpsgd", "randomized_response",
                                                            "seed", "bootstrap")}, tree,
              [SCORES, FIGURE, REPORT, ROC])
    print(open(REPORT).read())


if __name__ == "__main__":
    execute(run)
