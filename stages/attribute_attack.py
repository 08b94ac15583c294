"""DVC stage ``attribute_attack``: Scenario I against the base and the served smoothed classifiers,
compared with Definition 2's certified sets, and the repeated-query averaging attacker."""
import os

import numpy as np
import pandas as pd

from pipeline import ape
from pipeline import attribute_attack as attack
from pipeline import model as mlp
from pipeline.io import atomic_path, read_json, read_npz, write_json
from pipeline.params import load_params
from pipeline.plots import repeat_widths
from pipeline.smoothing import ABSTAIN, Smooth
from pipeline.tracking import main, stage_run

DATASET, META, MODEL, APE = ("data/processed/dataset.npz", "data/processed/meta.json", "models/mlp.pt",
                             "results/ape/records.tsv")
RESULTS, METRICS, FIGURE = ("results/attribute_attack.tsv", "metrics/attribute_attack.json",
                            "plots/attribute_attack_repeats.png")


def run() -> None:
    params = load_params()
    cfg, sm, seed = params["attribute_attack"], params["smoothing"], params["seed"]
    a, meta = read_npz(DATASET), read_json(META)
    model = mlp.load(MODEL, len(meta["feature_names"]), params["train"]["hidden"])
    B, unit, s = meta["threshold"], meta["sensitive"], meta["sensitive_index"]
    idx = attack.victims(a["test_raw"], B, cfg["near"], cfg["records"], seed)
    truth, records = a["test_raw"][idx], a["test_x"][idx]
    grid = attack.sweep(a["train_raw"].min(), a["train_raw"].max(), cfg["step"], B)
    sweep = ape.Augmented(records, np.hstack([truth[:, None], np.broadcast_to(grid, (len(idx), len(grid)))]), s, meta)
    on_grid = ape.Augmented(records, np.broadcast_to(grid, (len(idx), len(grid))), s, meta)
    own = ape.Augmented(records, truth[:, None], s, meta)[0:len(idx)]
    secret = os.environ.get(cfg["secret_env"], "").encode() or f"robust-privacy demo secret {seed}".encode()
    certified = pd.read_csv(APE, sep="\t").set_index(["config", "test_index"])

    metrics, rows, widths = {}, [], {}
    for sigma in [None] + [float(x) for x in sm["sigmas"]]:
        name = "base" if sigma is None else f"sigma={sigma:g}"
        if sigma is None:
            answers, cost = ape.base_predictions(model, sweep), 1
        else:
            served = Smooth(model, 2, sigma, noise=cfg["noise"], seed=seed, chunk=sm["chunk"], progress=True,
                            secret=secret)
            answers, cost = served.predict(sweep, sm["n"], sm["alpha"]).reshape(sweep.values.shape), sm["n"]
        released, answers = answers[:, 0], answers[:, 1:]
        lo, hi = attack.hull(grid, answers == released[:, None])
        m = {**attack.interval_summary(lo, hi, truth), "queries": int(sweep.values.size),
             "noisy_evaluations": int(sweep.values.size * cost), "released_abstain_rate": float(np.mean(released == ABSTAIN))}
        if sigma is not None:
            sets = certified.loc[name].reindex(idx)
            m.update(attack.certified_differences(grid, answers, released, sets["ir_lo"].to_numpy(),
                                                  sets["i_lo"].to_numpy()))
            repeated = attack.repeated_queries(model, sigma, own, on_grid, grid, truth, sm["n"], sm["alpha"],
                                               cfg["repeats"], cfg["calibration"], seed, sm["chunk"], secret)
            for mode, by_k in repeated.items():
                widths[f"{name} {mode}"] = [by_k[k]["width_median"] for k in cfg["repeats"]]
                for k, summary in by_k.items():
                    m.update({f"repeat_{mode}_k{k}_width": summary["width_median"],
                              f"repeat_{mode}_k{k}_coverage": summary["coverage"]})
        metrics[name] = m
        rows.append(pd.DataFrame({"config": name, "test_index": idx, "value": truth, "released": released,
                                  "lo": lo, "hi": hi}))

    with atomic_path(RESULTS) as tmp:
        pd.concat(rows).to_csv(tmp, sep="\t", index=False, float_format="%.4f")
    repeat_widths(FIGURE, cfg["repeats"], widths, unit)
    write_json(METRICS, {"threshold": B, "victims": int(len(idx)), "grid_values": int(len(grid)), **metrics})
    logged = {"attribute_attack": {k: v for k, v in cfg.items() if k != "secret_env"},
              "secret_source": "env" if os.environ.get(cfg["secret_env"]) else "default",
              "smoothing": {k: sm[k] for k in ("sigmas", "n", "alpha", "chunk")}, "seed": seed}
    with stage_run(params, "attribute_attack", logged) as mlflow:
        for name, m in metrics.items():
            mlflow.log_metrics({f"{name.replace('=', '_')}.{k}": v for k, v in m.items()})
        mlflow.log_artifact(RESULTS)
        mlflow.log_artifact(FIGURE)
    for name, m in metrics.items():
        print(f"{name:10s} interval width {m['width_median']:.2f} {unit}, coverage {m['coverage']:.2%}, "
              f"midpoint error {m['midpoint_error_median']:.2f}")


if __name__ == "__main__":
    main(run)
