"""End to end: ``dvc repro`` in a temporary git repository on a small config, then the metrics
through ``dvc metrics show``, the MLflow store queried back, ``dvc exp run -S``, and bad input.
The repository (fixture ``repo``, built once per session) is in ``conftest.py``, shared with
``tests/core/test_cluster_stages.py``."""
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.core.metrics import configurations, read_metrics
from tests.helpers import STAGES, edit_params, sh


def shown(repo) -> dict:
    """``dvc metrics show``: each file's one namespace (``pipeline.core.metrics``) by file."""
    metrics = json.loads(sh(repo, "dvc", "metrics", "show", "--json").stdout)
    files = next(iter(metrics.values()))["data"]
    assert all(len(f["data"]) == 1 for f in files.values())
    return {path: next(iter(f["data"].values())) for path, f in files.items()}


def test_metrics_show_holds_table_1_and_ape(repo):
    data = shown(repo)
    certify = data["metrics/certify/sigma_1.0.json"]["sigma_1"]
    assert 0.5 < certify["accuracy"] <= 1 and 0 <= certify["abstention_rate"] < 0.5 and certify["avg_radius"] > 0
    assert certify["accuracy"] + certify["abstention_rate"] <= 1 + 1e-9
    assert data["metrics/train.json"]["test_accuracy"] > 0.9
    ape = data["metrics/ape.json"]
    assert set(ape) == {"threshold", "records", "base", "sigma_1", "ablation"}
    assert set(ape["ablation"]["sigma_3"]) == {"n_50", "n_100"}
    assert set(ape["ablation"]["sigma_3"]["n_50"]) == {"alpha_0_01", "alpha_0_99"}
    assert all("expansion" in ape[k] and "expansion_robust" in ape[k] for k in ("base", "sigma_1"))
    table = data["reports/table1.json"]
    assert set(table) == {"base", "sigma_1"} and table["sigma_1"]["accuracy"] == certify["accuracy"]
    assert table["sigma_1"]["avg_radius_bmi"] == certify["avg_radius_bmi"] > 0
    tsv = (repo / "results/certify/sigma_1.0.tsv").read_text().splitlines()
    assert tsv[0].split("\t") == ["idx", "label", "predict", "radius", "correct", "pA_lower", "radius_units"]
    assert len(tsv) == 1 + 1200
    attack = data["metrics/attribute_attack.json"]
    assert attack["victims"] == 30 and {"base", "sigma_1"} <= set(attack)
    assert attack["base"]["coverage"] > 0.9 and attack["sigma_1"]["queries"] == 30 * (1 + attack["grid_values"])
    keyed = attack["sigma_1"]["repeat"]["keyed"]
    assert keyed["k_10"]["width_median"] == keyed["k_1"]["width_median"]
    assert set(attack["dpsgd"]) == {"epsilon_1", "epsilon_8"} and set(attack["rr"]["epsilon_1"]) == {"fresh", "keyed"}
    assert set(attack["rr"]["epsilon_1"]["fresh"]["repeat"]) == {"fresh"}
    assert set(attack["rr"]["epsilon_1"]["keyed"]["repeat"]) == {"keyed", "keyed_naive"}
    for name in ("tabular", "images"):
        dp = data[f"metrics/dpsgd_{name}.json"]
        assert set(dp) == {"epsilon_1", "epsilon_8"}
        assert all(m["epsilon"] <= m["epsilon_requested"] * 1.001 and m["noise_multiplier"] > 0 for m in dp.values())
    for png in ("plots/ape_figure1.png", "plots/ape_figure4.png", "plots/certified_accuracy.png",
                "plots/attribute_attack_repeats.png"):
        assert (repo / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_inversion_chain_reports_asr_accuracy_and_figure_3(repo):
    data = shown(repo)
    inv = data["metrics/inversion.json"]
    assert set(inv) == {"base", "rp", "mid", "dpsgd", "rr", "held_out"} and inv["held_out"]["images"] > 0
    assert set(inv["dpsgd"]) == {"epsilon_1", "epsilon_8"} and set(inv["rr"]["epsilon_1"]) == {"fresh", "keyed"}
    inv = {"base": inv["base"], "rp": inv["rp"]["sigma_0_1"]["n_10"], "mid": inv["mid"]["beta_0_01"]}
    for m in inv.values():
        assert 0 <= m["asr_low"] <= m["asr"] <= m["asr_high"] <= 1 and 0 <= m["asr_no_attack"] <= 1
        assert m["lift_low"] <= m["lift"] <= m["lift_high"] and m["at_chance"] in (0, 1)
        assert 0 <= m["accuracy"] <= 1 and 0 <= m["accuracy_test_low"] <= m["accuracy_test"] <= 1
        assert 0 <= m["queries_mean"] <= 33 * 4 and m["init_queries"] % 64 == 0
        assert m["no_start"] + m["no_reconstruction"] + m["reconstructions"] == m["attacks"]
    assert "asr_change_low" in inv["rp"] and "asr_change" not in inv["base"]
    assert inv["base"]["no_start"] < inv["base"]["attacks"] and inv["base"]["queries_mean"] > 0
    assert data["metrics/target.json"]["test_accuracy"] > 0.5
    attacks = (repo / "results/inversion/attacks.tsv").read_text().splitlines()
    assert len(attacks) == 1 + 8 * 2 * 2 and attacks[0].startswith("config\ttarget\trestart")
    for m in inv.values():
        assert m["attacks"] == 2 * 2 and m["accuracy_images"] == 10 and m["accuracy_test_images"] > 0
    for png in ("plots/figure3.png", "plots/gan_samples.png", "plots/inversion.png"):
        assert (repo / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = (repo / "reports/inversion.md").read_text()
    assert "| RP, σ=0.1, N=10 |" in report and "Held-out private images" in report
    assert set(data["metrics/mid.json"]) == {"beta_0_01"}


OP_ROWS = {"output_perturbation", "output_perturbation_aware", "output_perturbation_wrong_label"}
BASELINES = {"dpsgd.epsilon_1", "dpsgd.epsilon_8", "rr.epsilon_1.fresh", "rr.epsilon_1.keyed"}


def test_membership_table_has_every_defense_the_strongest_attack_with_intervals_and_unchanged_labels(repo):
    from pipeline.attacks.membership import ATTACKS, LABEL_ONLY_ATTACKS

    table = configurations(shown(repo)["metrics/membership.json"], "attacks")
    assert set(table) == {"none", "mid.beta_0_01", "rp.sigma_0_1.n_10"} | OP_ROWS | BASELINES
    on_disk = read_metrics(repo / "metrics/membership.json", "membership")
    assert on_disk["setup"]["reference_models"] == 4 and on_disk["setup"]["members"] == 150
    for name, entry in configurations(on_disk, "attacks").items():
        attacks = entry["attacks"]
        label_only = name.startswith(("rp.", "rr."))
        assert set(attacks) == set(ATTACKS)
        assert {k for k, a in attacks.items() if a is None} == (set(ATTACKS) - set(LABEL_ONLY_ATTACKS) if label_only
                                                                else set())
        applicable = {k: a for k, a in attacks.items() if a is not None}
        for a in applicable.values():
            for k in ("accuracy", "auc", "tpr_at_0_1pct_fpr", "tpr_at_1pct_fpr"):
                assert 0 <= a[f"{k}_low"] <= a[k] <= a[f"{k}_high"] <= 1, (name, k, a)
        assert entry["strongest"] in applicable and set(entry["selection_auc"]) == set(applicable)
        assert entry["strongest"] == max(entry["selection_auc"], key=entry["selection_auc"].get)
        assert entry["strongest_auc"] == applicable[entry["strongest"]]["auc"]
        if name != "none":
            assert entry["auc_change_low"] <= entry["auc_change"] <= entry["auc_change_high"]
    assert table["rp.sigma_0_1.n_10"]["note"] == "label-only release: not applicable by construction"
    op, none = table["output_perturbation"], table["none"]
    assert op["labels_changed"] == 0 and 0 <= op["fraction_perturbed"] <= 1 and op["mean_delta_l2"] >= 0
    assert 0 <= table["output_perturbation_wrong_label"]["fraction_raw"] <= 1
    # labels unchanged: the label-only attacks and the utility see exactly what the undefended target releases
    for key in LABEL_ONLY_ATTACKS:
        assert op["attacks"][key] == none["attacks"][key]
    assert (op["test_accuracy"], op["train_accuracy"]) == (none["test_accuracy"], none["train_accuracy"])
    data = np.load(repo / "data/images/dataset.npz")
    scores = pd.read_csv(repo / "results/membership/scores.tsv", sep="\t")
    assert list(scores.columns) == ["defense", "attack", "member", "score"]
    counts = scores.groupby(["defense", "attack"])["member"].agg(["sum", "size"])
    assert len(counts) == 7 * len(ATTACKS) + 3 * len(LABEL_ONLY_ATTACKS)  # RP, randomized response: label-only
    assert (counts["sum"] == len(data["train_y"])).all()
    assert (counts["size"] == len(data["train_y"]) + len(data["test_y"])).all()
    assert (repo / "plots/membership_roc.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| Defense | Train accuracy | Test accuracy | Strongest attack |" in (repo / "reports/membership.md").read_text()


def test_guarantee_stage_reports_the_game_the_n_grid_and_the_students(repo):
    g = shown(repo)["metrics/guarantee.json"]
    assert set(g) == {"distinguish", "n_effect", "extraction"} and set(g["distinguish"]) == {"tabular", "images"}
    game = g["distinguish"]["tabular"]
    assert game["half_alpha"] == 0.005 and 0 < game["certified"] <= game["records"] == 10
    for kind in ("sphere", "inside", "axis"):
        assert game[kind]["exact"]["differ_low"] <= game[kind]["exact"]["differ"] <= game[kind]["exact"]["differ_high"]
        r = game[kind]["certify"]["fresh"]
        assert 0 <= r["advantage_median_low"] <= r["advantage_median"] <= r["advantage_median_high"] <= 1
        assert r["lower_above_half_alpha"] <= r["above_half_alpha"]  # a lower bound above alpha/2 has its estimate above
    assert set(g["distinguish"]["images"]) >= {"sphere", "inside"} and "axis" not in g["distinguish"]["images"]
    assert [g["n_effect"][k]["noisy_evaluations_per_query"] for k in ("n_10", "n_30")] == [10, 30]
    students = g["extraction"]["tabular"]["rp"]["sigma_1"]["n_10"]
    assert set(students) == {"served", "q_200", "q_500"} and 0 <= students["q_500"]["agreement"] <= 1
    assert set(g["extraction"]["images"]) == {"base", "rp", "mid"}
    assert "asr" in g["extraction"]["images"]["base"]["q_300"]["brepmi"]
    for figure in ("distinguishing_game", "n_effect_tabular", "extraction", "n_effect_images"):
        assert (repo / f"plots/{figure}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = (repo / "reports/guarantee.md").read_text()
    assert "## The distinguishing game" in report and "## The distillation boundary" in report


def test_defenses_summary_joins_both_attacks_in_dvc_metrics_and_mlflow(repo):
    data = shown(repo)
    rows = configurations(data["reports/defenses.json"]["images"], "family")
    inv, membership = data["metrics/inversion.json"], data["metrics/membership.json"]
    assert set(rows) == {"none", "mid.beta_0_01", "rp.sigma_0_1.n_10", "rp.sigma_0_1.n_20"} | OP_ROWS | BASELINES
    assert rows["dpsgd.epsilon_1"]["brepmi_asr"] == inv["dpsgd"]["epsilon_1"]["asr"]
    assert rows["rr.epsilon_1.keyed"]["membership_auc"] == membership["rr"]["epsilon_1"]["keyed"]["strongest_auc"]
    assert any(r["pareto_brepmi"] for r in rows.values()) and any(r["pareto_membership"] for r in rows.values())
    tabular = configurations(data["reports/defenses.json"]["tabular"], "family")
    assert set(tabular) == {"none", "rp.sigma_1.fresh", "rp.sigma_1.keyed", "dpsgd.epsilon_1", "dpsgd.epsilon_8",
                            "rr.epsilon_1.fresh", "rr.epsilon_1.keyed"}
    certified = data["metrics/certify/sigma_1.0.json"]["sigma_1"]["accuracy"]
    assert tabular["rp.sigma_1.keyed"]["test_accuracy"] == certified
    assert rows["none"]["brepmi_asr"] == rows["output_perturbation"]["brepmi_asr"] == inv["base"]["asr"]
    assert rows["rp.sigma_0_1.n_10"]["brepmi_asr"] == inv["rp"]["sigma_0_1"]["n_10"]["asr"]
    assert rows["mid.beta_0_01"]["membership_auc"] == membership["mid"]["beta_0_01"]["strongest_auc"]
    assert rows["mid.beta_0_01"]["membership_attack"] == membership["mid"]["beta_0_01"]["strongest"]
    assert rows["output_perturbation"]["labels_changed"] == 0
    text = (repo / "reports/defenses.md").read_text()
    assert "| RP, σ=0.1, N=10 |" in text and "AUC change vs none" in text
    for png in ("plots/frontier_images.png", "plots/frontier_tabular.png"):
        assert (repo / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{repo / 'mlflow.db'}")
    run = client.search_runs([client.get_experiment_by_name("robust-privacy").experiment_id],
                             "tags.`dvc.stage` = 'defenses'")[0]
    assert run.data.metrics["defenses.images.none.membership_auc"] == rows["none"]["membership_auc"]
    assert {a.path for a in client.list_artifacts(run.info.run_id)} >= {"defenses.md", "defenses.json",
                                                                         "frontier_images.png", "frontier_tabular.png"}


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
    assert certify.data.params["smoothing.alpha"] == "0.01"
    assert 0.5 < certify.data.metrics["certify.sigma_1.accuracy"] <= 1
    assert certify.data.params["train.hidden"] == "64"  # declared in dvc.yaml, not passed by the stage
    assert by_name["defenses"].data.params["brepmi.points"] == "32"  # from the stages it reads
    assert "ape.sigma_1.expansion" in by_name["ape"].data.metrics
    ape_files = {Path(a.path).name for a in client.list_artifacts(by_name["ape"].info.run_id)}
    assert {"ape_figure1.png", "ape_figure4.png", "records.tsv"} <= ape_files
    invert = by_name["invert"]
    assert "inversion.rp.sigma_0_1.n_10.asr" in invert.data.metrics and invert.data.params["brepmi.points"] == "32"
    assert {Path(a.path).name for a in client.list_artifacts(invert.info.run_id)} == {"inversion.png", "attacks.tsv"}


def test_exp_run_with_a_new_sigma_reruns_only_what_depends_on_it(repo):
    out = sh(repo, "dvc", "exp", "run", "-S", "smoothing.sigmas=[0.5]")
    assert "Running stage 'certify@0.5'" in out.stdout and "Running stage 'train'" not in out.stdout
    _, families = mlflow_runs(repo)
    parent = next(p for p, kids in families.items() if "certify@0.5" in {k.info.run_name for k in kids})
    assert parent.info.run_name == parent.data.tags["dvc.exp.name"]  # named after the experiment
    assert parent.data.params["smoothing.sigmas"] == "[0.5]"
    exps = sh(repo, "dvc", "exp", "show", "--json").stdout
    assert "metrics/certify/sigma_0.5.json" in exps and "sigma_0_5" in exps
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
