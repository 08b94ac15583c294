"""End to end: ``dvc repro`` in a temporary git repository on a small config, then the metrics
through ``dvc metrics show``, the MLflow store queried back, ``dvc exp run -S``, and bad input.
The repository (fixture ``repo``, built once per session) is in ``conftest.py``, shared with
``tests/core/test_cluster.py``."""
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from tests.helpers import STAGES, edit_params, sh


def test_metrics_show_holds_table_1_and_ape(repo):
    metrics = json.loads(sh(repo, "dvc", "metrics", "show", "--json").stdout)
    data = next(iter(metrics.values()))["data"]
    certify = data["metrics/certify/sigma_1.0.json"]["data"]
    assert 0.5 < certify["accuracy"] <= 1 and 0 <= certify["abstention_rate"] < 0.5 and certify["avg_radius"] > 0
    assert certify["accuracy"] + certify["abstention_rate"] <= 1 + 1e-9
    assert data["metrics/train.json"]["data"]["test_accuracy"] > 0.9
    ape = data["metrics/ape.json"]["data"]
    assert set(ape) - {"threshold", "records"} == {"base", "sigma=1", "sigma=3,N=50,alpha=0.01", "sigma=3,N=50,alpha=0.99",
                        "sigma=3,N=100,alpha=0.01", "sigma=3,N=100,alpha=0.99"}
    assert all("expansion" in ape[k] and "expansion_robust" in ape[k] for k in ape if k.startswith(("base", "sigma")))
    table = data["reports/table1.json"]["data"]
    assert list(table) == ["Base", "sigma=1"] and table["sigma=1"]["accuracy"] == certify["accuracy"]
    tsv = (repo / "results/certify/sigma_1.0.tsv").read_text().splitlines()
    assert tsv[0].split("\t") == ["idx", "label", "predict", "radius", "correct", "pA_lower", "radius_units"]
    assert len(tsv) == 1 + 1200
    attack = data["metrics/attribute_attack.json"]["data"]
    assert attack["victims"] == 30 and {"base", "sigma=1"} <= set(attack)
    assert attack["base"]["coverage"] > 0.9 and attack["sigma=1"]["queries"] == 30 * (1 + attack["grid_values"])
    assert attack["sigma=1"]["repeat_keyed_k10_width"] == attack["sigma=1"]["repeat_keyed_k1_width"]
    for png in ("plots/ape_figure1.png", "plots/ape_figure4.png", "plots/certified_accuracy.png",
                "plots/attribute_attack_repeats.png"):
        assert (repo / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_inversion_chain_reports_asr_accuracy_and_figure_3(repo):
    metrics = json.loads(sh(repo, "dvc", "metrics", "show", "--json").stdout)
    data = next(iter(metrics.values()))["data"]
    inv = data["metrics/inversion.json"]["data"]
    assert set(inv) == {"base", "sigma=0.1,N=10", "mid,beta=0.01"}
    for m in inv.values():
        assert 0 <= m["asr"] <= 1 and 0 <= m["accuracy"] <= 1 and 0 <= m["accuracy_test"] <= 1
        assert 0 < m["queries_mean"] <= 33 * 4 and m["init_queries"] % 64 == 0
    assert data["metrics/target.json"]["data"]["test_accuracy"] > 0.5
    attacks = (repo / "results/inversion/attacks.tsv").read_text().splitlines()
    assert len(attacks) == 1 + 3 * 2 * 2 and attacks[0].startswith("config\ttarget\trestart")
    for png in ("plots/figure3.png", "plots/gan_samples.png", "plots/inversion/base.png",
                "plots/inversion/sigma_0.1_N_10.png"):
        assert (repo / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| sigma=0.1,N=10 |" in (repo / "reports/inversion.md").read_text()
    assert set(data["metrics/mid.json"]["data"]) == {"beta=0.01"}


def test_membership_table_has_every_defense_null_output_attacks_under_rp_and_unchanged_labels(repo):
    metrics = json.loads(sh(repo, "dvc", "metrics", "show", "--json").stdout)
    table = next(iter(metrics.values()))["data"]["metrics/membership.json"]["data"]
    assert set(table) == {"none", "output_perturbation", "mid,beta=0.01", "rp,sigma=0.1,N=10"}
    output_attacks = {"confidence", "entropy", "modified_entropy", "neural"}
    on_disk = json.loads((repo / "metrics/membership.json").read_text())
    for name, entry in table.items():
        # `dvc metrics show` leaves null cells out; the file holds them
        label_only = name.startswith("rp,")
        assert set(entry["attacks"]) == {"correctness", "label_only_noise"} | (set() if label_only else output_attacks)
        attacks = on_disk[name]["attacks"]
        assert {k for k, a in attacks.items() if a is None} == (output_attacks if label_only else set())
        applicable = [a for a in attacks.values() if a is not None]
        assert all(0 <= a[k] <= 1 for a in applicable for k in ("accuracy", "auc", "tpr_at_1pct_fpr"))
        assert entry["best_auc"] == max(a["auc"] for a in applicable)
        assert 0 <= entry["test_accuracy"] <= 1 and 0 <= entry["train_accuracy"] <= 1
    assert table["rp,sigma=0.1,N=10"]["note"] == "label-only release: not applicable by construction"
    op, none = table["output_perturbation"], table["none"]
    assert op["labels_changed"] == 0 and 0 <= op["fraction_perturbed"] <= 1 and op["mean_delta_l2"] >= 0
    # labels unchanged: the label-only attacks and the utility see exactly what the undefended target releases
    for key in ("correctness", "label_only_noise"):
        assert op["attacks"][key] == none["attacks"][key]
    assert (op["test_accuracy"], op["train_accuracy"]) == (none["test_accuracy"], none["train_accuracy"])
    data = np.load(repo / "data/images/dataset.npz")
    scores = pd.read_csv(repo / "results/membership/scores.tsv", sep="\t")
    assert list(scores.columns) == ["defense", "attack", "member", "score"]
    counts = scores.groupby(["defense", "attack"])["member"].agg(["sum", "size"])
    assert len(counts) == 6 * 3 + 2  # every attack on three defenses, correctness and label-only under RP
    assert (counts["sum"] == len(data["train_y"])).all()
    assert (counts["size"] == len(data["train_y"]) + len(data["test_y"])).all()
    assert (repo / "plots/membership_roc.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_defenses_summary_joins_both_attacks_in_dvc_metrics_and_mlflow(repo):
    metrics = json.loads(sh(repo, "dvc", "metrics", "show", "--json").stdout)
    data = next(iter(metrics.values()))["data"]
    rows, inv = data["reports/defenses.json"]["data"], data["metrics/inversion.json"]["data"]
    membership = data["metrics/membership.json"]["data"]
    assert set(rows) == {"none", "output_perturbation", "mid,beta=0.01", "rp,sigma=0.1,N=10"}
    assert rows["none"]["brepmi_asr"] == rows["output_perturbation"]["brepmi_asr"] == inv["base"]["asr"]
    assert rows["rp,sigma=0.1,N=10"]["brepmi_asr"] == inv["sigma=0.1,N=10"]["asr"]
    assert rows["mid,beta=0.01"]["best_auc"] == membership["mid,beta=0.01"]["best_auc"]
    assert rows["output_perturbation"]["labels_changed"] == 0
    text = (repo / "reports/defenses.md").read_text()
    assert "| rp,sigma=0.1,N=10 |" in text and text.count("n/a") >= 4
    assert (repo / "plots/tradeoff.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{repo / 'mlflow.db'}")
    run = client.search_runs([client.get_experiment_by_name("robust-privacy").experiment_id],
                             "tags.`dvc.stage` = 'defenses'")[0]
    assert run.data.metrics["none.best_auc"] == rows["none"]["best_auc"]
    assert {a.path for a in client.list_artifacts(run.info.run_id)} >= {"defenses.md", "defenses.json", "tradeoff.png"}


def test_the_same_params_give_byte_identical_metrics_results_and_models(repo):
    files = sorted(p for d in ("metrics", "reports", "results", "models") for p in (repo / d).rglob("*") if p.is_file())
    before = {p: p.read_bytes() for p in files}
    sh(repo, "dvc", "repro", "--force")
    assert len(files) > 8 and {p: p.read_bytes() for p in files} == before


def mlflow_runs(repo):
    """(client, {parent run: its stage runs}) of the repository's store."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{repo / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("robust-privacy")
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"  # the UI's runs view
    runs = client.search_runs([experiment.experiment_id])
    parents = {r.info.run_id: r for r in runs if "mlflow.parentRunId" not in r.data.tags}
    families = {p: [] for p in parents.values()}
    for r in runs:
        if r.info.run_id not in parents:
            families[parents[r.data.tags["mlflow.parentRunId"]]].append(r)
    return client, families


def test_mlflow_store_has_a_parent_run_per_repro_holding_a_run_per_stage(repo):
    client, families = mlflow_runs(repo)
    # the first `dvc repro` (and every `dvc repro --force` since): one parent, one nested run per stage
    parent, runs = next((p, kids) for p, kids in families.items() if {k.info.run_name for k in kids} == STAGES)
    assert len(runs) == len(STAGES) and parent.info.run_name.startswith("repro ")
    assert parent.data.tags["rp.execution"].startswith("dvc:") and parent.info.status == "FINISHED"
    assert parent.info.start_time <= min(r.info.start_time for r in runs)
    assert parent.info.end_time >= max(r.info.end_time for r in runs)
    assert parent.data.params["smoothing.sigmas"] == "[1.0]" and len(parent.data.tags["params.sha256"]) == 64
    by_name = {r.info.run_name: r for r in runs}
    certify = by_name["certify@1.0"]
    assert certify.data.tags["dvc.stage"] == "certify@1.0" and len(certify.data.tags["git.commit"]) == 40
    assert certify.data.params["smoothing.alpha"] == "0.01" and 0.5 < certify.data.metrics["accuracy"] <= 1
    assert certify.data.params["train.hidden"] == "64"  # declared in dvc.yaml, not passed by the stage
    assert by_name["defenses"].data.params["brepmi.points"] == "32"  # from the stages it reads
    assert "sigma_1.expansion" in by_name["ape"].data.metrics
    ape_files = {Path(a.path).name for a in client.list_artifacts(by_name["ape"].info.run_id)}
    assert {"ape_figure1.png", "ape_figure4.png", "records.tsv"} <= ape_files
    invert = by_name["invert"]
    assert "sigma_0.1_N_10.asr" in invert.data.metrics and invert.data.params["brepmi.points"] == "32"
    grids = {Path(a.path).name for a in client.list_artifacts(invert.info.run_id, "reconstructions")}
    assert grids == {"base.png", "sigma_0.1_N_10.png", "mid_beta_0.01.png"}


def test_exp_run_with_a_new_sigma_reruns_only_what_depends_on_it(repo):
    out = sh(repo, "dvc", "exp", "run", "-S", "smoothing.sigmas=[0.5]")
    assert "Running stage 'certify@0.5'" in out.stdout and "Running stage 'train'" not in out.stdout
    _, families = mlflow_runs(repo)
    parent = next(p for p, kids in families.items() if "certify@0.5" in {k.info.run_name for k in kids})
    assert parent.info.run_name == parent.data.tags["dvc.exp.name"]  # named after the experiment
    assert parent.data.params["smoothing.sigmas"] == "[0.5]"
    shown = sh(repo, "dvc", "exp", "show", "--json").stdout
    assert "metrics/certify/sigma_0.5.json" in shown and "abstention_rate" in shown
    sh(repo, "git", "checkout", "--", "params.yaml")
    sh(repo, "dvc", "checkout", "--force")


def test_bad_input_fails_cleanly_and_leaves_no_partial_outputs(repo):
    original = (repo / "params.yaml").read_text()
    csv = repo / "data/insurance.csv"
    before = csv.read_bytes()
    try:
        edit_params(repo, lambda p: p["smoothing"].update(sigmas=[-1.0]))
        out = sh(repo, "dvc", "repro", check=False)
        assert out.returncode != 0 and "smoothing.sigmas" in out.stderr + out.stdout
        assert not (repo / "results/certify/sigma_-1.0.tsv").exists()

        (repo / "params.yaml").write_text(original)
        edit_params(repo, lambda p: p["data"].update(source="csv", csv_path="nowhere.csv"))
        out = sh(repo, sys.executable, "-m", "stages.download", check=False)
        assert out.returncode == 2 and "data.csv_path" in out.stderr and len(out.stderr.strip().splitlines()) == 1

        broken = repo / "broken.csv"
        broken.write_text("\n".join(line.replace(",bmi,", ",bmx,") for line in before.decode().splitlines()[:50]))
        edit_params(repo, lambda p: p["data"].update(csv_path="broken.csv"))
        out = sh(repo, sys.executable, "-m", "stages.download", check=False)
        assert out.returncode == 2 and "sha256" in out.stderr

        edit_params(repo, lambda p: p["data"].update(sha256=""))
        out = sh(repo, sys.executable, "-m", "stages.download", check=False)
        assert out.returncode == 2 and "bmi" in out.stderr and "broken.csv" in out.stderr

        edit_params(repo, lambda p: p.update(unknown_knob=1))
        out = sh(repo, sys.executable, "-m", "stages.download", check=False)
        assert out.returncode == 2 and "unknown_knob" in out.stderr
        assert csv.read_bytes() == before  # never half-written or replaced
        assert not list(csv.parent.glob(".*.tmp"))
    finally:
        (repo / "params.yaml").write_text(original)
