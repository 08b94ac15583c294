"""The committed reference results, read through DVC as the README says: they match the code
and params that made them, every key follows the metrics schema, the README's `dvc exp show`
commands print the headline tables in at most 12 columns, `dvc plots show` needs no network,
and the reproduction check of `make repro` counts what changed."""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pipeline.core.metrics import check
from pipeline.reporting.summary import reproduction
from tests.helpers import ROOT, sh

BIN = Path(sys.executable).parent


def readme_commands() -> list[str]:
    """The `dvc ...` lines of the README's "Reading the results" code block."""
    section = ROOT.joinpath("README.md").read_text().split("## Reading the results", 1)[1]
    block = section.split("```bash", 1)[1].split("```", 1)[0]
    return [line.split("    #")[0].strip() for line in block.strip().splitlines()]


def md_tables(text: str) -> list[list[list[str]]]:
    tables, rows = [], []
    for line in text.splitlines() + [""]:
        if line.startswith("|"):
            rows.append([c.strip() for c in line.strip("|").split("|")])
        elif rows:
            tables.append([r for r in rows if not set(r[0]) <= {"-"}])
            rows = []
    return tables


def metrics_files() -> list[str]:
    stages = yaml.safe_load(ROOT.joinpath("dvc.yaml").read_text())["stages"]
    sigmas = yaml.safe_load(ROOT.joinpath("params.yaml").read_text())["smoothing"]["sigmas"]
    paths = [next(iter(m)) for s in stages.values() for m in s.get("metrics", [])]
    return [p.replace("${item.sigma}", str(s)) for p in paths for s in (sigmas if "${" in p else [None])]


def test_the_reference_was_made_by_the_committed_code_and_params():
    """`dvc status`: no stage has a changed dep, param or committed output; only outputs kept in
    DVC's cache (absent from a fresh clone) may be missing."""
    status = json.loads(sh(ROOT, "dvc", "status", "--json").stdout or "{}")
    cached = {p for s in yaml.safe_load(ROOT.joinpath("dvc.lock").read_text())["stages"].values()
              for p in (o["path"] for o in s.get("outs", []))}
    committed = set(subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True).stdout.split())
    stale = []
    for stage, changes in status.items():
        for change in changes:
            if not isinstance(change, dict):
                stale.append((stage, change))
                continue
            for kind, files in change.items():
                for path, state in (files.items() if isinstance(files, dict) else [(files, kind)]):
                    missing = state in ("deleted", "not in cache") and path in cached and path not in committed
                    folder = state == "modified" and any(c.startswith(path + "/") for c in cached)  # of such outs
                    if not (missing or folder):
                        stale.append((stage, kind, path, state))
    assert not stale, f"stale reference results (run `make repro`, commit dvc.lock and the outputs): {stale}"


@pytest.mark.parametrize("path", metrics_files())
def test_every_committed_metrics_file_follows_the_schema(path):
    tree = json.loads(ROOT.joinpath(path).read_text())
    assert len(tree) == 1, f"{path}: one namespace per metrics file"
    check(tree, path)


@pytest.mark.parametrize("command", [c for c in readme_commands() if "dvc exp show" in c])
def test_readme_exp_show_commands_print_the_headline_tables_in_at_most_12_columns(command):
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    out = subprocess.run(["bash", "-c", command], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    tables = md_tables(out.stdout)
    loop = re.match(r"for \w+ in ([^;]+);", command)
    assert len(tables) == (len(loop.group(1).split()) if loop else 1), out.stdout
    for table in tables:
        header, rows = table[0], table[1:]
        assert header[0] == "Experiment" and 6 <= len(header) <= 12, header
        assert rows and all(re.fullmatch(r"-?[0-9.e+-]+", cell) for row in rows for cell in row[1:]), rows


def test_dvc_plots_show_renders_every_data_plot_without_network(tmp_path):
    sh(ROOT, "dvc", "plots", "show", "-o", str(tmp_path), "--json")
    page = sh(ROOT, "dvc", "plots", "show", "-o", str(tmp_path)).stdout
    html = (tmp_path / "index.html").read_text()
    assert "index.html" in page and not re.search(r"<script[^>]+src=", html)
    assert "vegaEmbed" in html and html.count('"$schema"') >= 2
    for data in ("ape_histogram_csv", "membership_roc_csv", "inversion_asr_csv"):
        assert f'id = "plots_{data}"' in html


def test_reproduction_check_counts_identical_metrics_and_names_the_ones_that_moved(tmp_path, monkeypatch):
    repo = tmp_path / "r"
    (repo / "metrics").mkdir(parents=True)
    (repo / "dvc.yaml").write_text("stages:\n  s:\n    cmd: 'true'\n    metrics:\n      - metrics/m.json:\n"
                                   "          cache: false\n")
    metrics = {"table1": {"base": {"accuracy": 1.0, "width": float("nan")}, "sigma_1": {"accuracy": 0.96, "avg_radius": 0.5}}}
    (repo / "metrics/m.json").write_text(json.dumps(metrics))
    for cmd in (["git", "init", "-q"], ["dvc", "init", "-q"], ["git", "add", "-A"],
                ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "reference"]):
        sh(repo, *cmd)
    monkeypatch.chdir(repo)
    monkeypatch.setenv("PATH", f"{BIN}{os.pathsep}{os.environ['PATH']}")
    lines = reproduction()
    assert "metrics: 4 of 4 identical" in lines[1] and "git status clean" in lines[-1]  # NaN stays NaN: identical
    metrics["table1"]["sigma_1"]["accuracy"] = 0.95
    (repo / "metrics/m.json").write_text(json.dumps(metrics))
    lines = reproduction()
    assert "metrics: 3 of 4 identical" in lines[1]
    assert "table1.sigma_1.accuracy" in lines[2] and "0.96" in lines[2] and "0.95" in lines[2]
    assert "1 differ" in lines[-1] and "metrics/m.json" in lines[-1]
