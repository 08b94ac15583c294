"""Shared test helpers.

* The end-to-end repository: ``ROOT``, ``PROJECT`` (what is copied into the temporary git
  repository of the ``repo`` fixture), ``sh`` (a command in it), ``edit_params`` and ``small``
  (the small configuration every end-to-end test runs).
* The import graph of the project's own modules, read from the source (``module_file``,
  ``imported``, ``closure``): what ``dvc.yaml``'s deps and the package layering are checked against.
* A deliberately overfit toy target for the membership-inference tests: 5 overlapping Gaussian
  classes with label noise, exactly 50 records per class in every split, and MLPs trained to
  memorise their 250 training records (train accuracy 1, test accuracy far lower). Built once
  per test session (``toy()`` is cached).
"""
import ast
import contextlib
import os
import subprocess
import sys
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import yaml
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
PROJECT = ["pipeline", "stages", "dvc.yaml", "params.yaml", "pyproject.toml", ".dvc/config", ".dvc/plots",
           ".dvcignore", ".gitignore"]
STAGES = {"download", "preprocess", "train", "certify@1.0", "augment", "boundary", "ape", "attribute_attack", "report",
          "images", "train_target", "train_evaluator", "train_mid", "train_gan", "invert", "inversion_report", "membership", "defenses",
          "train_dpsgd_tabular", "train_dpsgd_images", "guarantee"}


def sh(repo, *cmd, check=True):
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    env.pop("MLFLOW_TRACKING_URI", None)
    out = subprocess.run(cmd, cwd=repo, env=env, capture_output=True, text=True)
    if check and out.returncode != 0:
        raise AssertionError(f"{cmd} failed ({out.returncode}):\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}")
    return out


def edit_params(repo, edit):
    path = repo / "params.yaml"
    params = yaml.safe_load(path.read_text())
    edit(params)
    path.write_text(yaml.safe_dump(params, sort_keys=False))


def small(p):
    p["data"]["rows"] = 3000
    p["train"]["epochs"] = 40  # 7 batches an epoch: enough for the model to find the BMI threshold
    p["bootstrap"] = 200
    p["smoothing"].update(sigmas=[1.0], n0=50, n=100)
    p["ape"].update(points=50)
    p["ape"]["boundary"].update(records=10, block=2000, max_draws=40000)
    p["ape"]["ablation"].update(ns=[50, 100])
    p["images"].update(size=8, identities=20, per_identity=60)  # 150 members, 150 non-members, 300 shadow images
    p["target"].update(epochs=80)
    p["mid"].update(betas=[0.01], epochs=30)
    p["evaluator"].update(epochs=2)
    p["membership"].update(label_only_sigmas=[0.1, 0.4], label_only_queries=10, rp={"sigmas": [0.1], "ns": [10]},
                           reference_models=4, label_only_models=3)
    p["gan"].update(steps=5, batch_size=16, critic_iters=2)
    p["brepmi"].update(max_queries=33 * 4, init_batch=64, max_init_batches=3, targets=2, restarts=2)
    p["inversion"].update(sigmas=[0.1], ns=[10])
    p["attribute_attack"].update(records=30, step=0.5, repeats=[1, 10], calibration=500)
    p["dpsgd"].update(epsilons=[1, 8])
    p["dpsgd"]["images"].update(epochs=5)
    p["dpsgd"]["tabular"].update(epochs=2, batch_size=256)
    p["randomized_response"].update(epsilons=[1])
    p["n_effect"]["tabular"].update(ns=[10, 30], victims=10, test_records=500)
    p["n_effect"]["images"].update(sigma=0.1, ns=[10, 20])
    p["guarantee"]["tabular"].update(records=10, releases=20, exact_n=2000, repeats=[10])
    p["guarantee"]["images"].update(sigma=0.05, records=4, releases=20, exact_n=1000, repeats=[10])
    p["extraction"]["tabular"].update(sigmas=[1.0], budgets=[200, 500])
    p["extraction"]["images"].update(sigmas=[0.1], budgets=[100, 300], targets=2, whitebox={"steps": 5, "lr": 0.05})
    p["extraction"]["images"]["student"].update(epochs=2)


OWN = ("pipeline", "stages")  # the project's packages; everything else is an installed library


def module_file(name: str):
    """The file of the project module ``name`` (a package's ``__init__.py``), or None."""
    path = ROOT.joinpath(*name.split("."))
    for candidate in (path.with_suffix(".py"), path / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def imported(name: str) -> set[str]:
    """The project modules that module ``name`` imports anywhere in its source (lazy imports too)."""
    path = module_file(name)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[:len(package.split(".")) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)  # submodules imported by name
    return {m for m in found if m.split(".")[0] in OWN and module_file(m) is not None}


def closure(entry: str) -> set[str]:
    """Files (relative to the repository) executed when ``python -m entry`` imports its modules,
    parent packages' ``__init__.py`` included."""
    seen, todo = set(), [entry]
    while todo:
        name = todo.pop()
        parts = name.split(".")
        for i in range(1, len(parts) + 1):  # importing a.b.c runs a/__init__.py and a/b/__init__.py
            parent = ".".join(parts[:i])
            if parent not in seen and module_file(parent) is not None:
                seen.add(parent)
                todo.append(parent)
        todo += [m for m in imported(name) if m not in seen]
    return {str(module_file(m).relative_to(ROOT)) for m in seen}


CLASSES, DIM, PER_CLASS = 5, 10, 50
SPLITS = ("target_in", "target_out", "shadow_in", "shadow_out", "defender_in", "defender_out")


def sample(rng, centres):
    y = np.repeat(np.arange(CLASSES), 2 * PER_CLASS)
    x = centres[y] + rng.normal(size=(len(y), DIM))
    flip = rng.random(len(y)) < 0.2  # label noise: features alone cannot explain these labels
    y_obs = np.where(flip, rng.integers(0, CLASSES, len(y)), y)
    # exactly PER_CLASS records per observed label (of the 2 * PER_CLASS drawn per class)
    keep = np.concatenate([rng.permutation(np.flatnonzero(y_obs == c))[:PER_CLASS] for c in range(CLASSES)])
    return x[keep].astype(np.float32), y_obs[keep].astype(np.int64)


def overfit_mlp(x, y, seed, epochs=400):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(DIM, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, CLASSES))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    for _ in range(epochs):
        loss = nn.functional.cross_entropy(model(xt), yt)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


@torch.no_grad()
def logits_of(model, x):
    return model(torch.from_numpy(x)).double().numpy()


def softmax(z):
    z = z - z.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)


@contextlib.contextmanager
def one_thread():
    """Tiny models run far faster on one torch thread (no OpenMP spinning on 2 shared cores)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@lru_cache(maxsize=1)
def toy():
    rng = np.random.default_rng(0)
    centres = rng.normal(scale=1.2, size=(CLASSES, DIM))
    data = {name: sample(rng, centres) for name in SPLITS}
    with one_thread():
        models = {role: overfit_mlp(*data[f"{role}_in"], seed=i)
                  for i, role in enumerate(("target", "shadow", "defender"))}
    return data, models


def outputs(data, model, split):
    """What the model releases (probabilities) for the members and non-members of ``split``."""
    from pipeline.attacks.membership import Outputs

    (x_in, y_in), (x_out, y_out) = data[f"{split}_in"], data[f"{split}_out"]
    return Outputs(softmax(logits_of(model, x_in)), y_in, softmax(logits_of(model, x_out)), y_out)
