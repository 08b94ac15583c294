"""Load and validate ``params.yaml``: unknown keys and out-of-range values are refused.

Each rule is ``(type, check, fix)``; a failing rule raises one ``PipelineError`` that names
the file, the dotted key, the bad value and what to put there instead.
"""
from __future__ import annotations

import re
from pathlib import Path

import yaml

from .errors import PipelineError

_num = (int, float)


def _pos(v):
    return v > 0


def _prob(v):
    return 0 < v < 1


def _pos_list(v):
    return len(v) > 0 and all(isinstance(x, _num) and not isinstance(x, bool) and x > 0 for x in v)


def _prob_list(v):
    return len(v) > 0 and all(isinstance(x, _num) and not isinstance(x, bool) and 0 < x < 1 for x in v)


def _int_list(v):
    return len(v) > 0 and all(isinstance(x, int) and not isinstance(x, bool) and x >= 1 for x in v)


def _any(v):
    return True


_classifier_spec = {
    "epochs": (int, lambda v: v >= 1, "an integer >= 1"),
    "batch_size": (int, lambda v: v >= 1, "an integer >= 1"),
    "lr": (_num, _pos, "a number > 0"),
}

ARCHITECTURES = ("small", "facenet64", "irse50")  # pipeline.vision.nets.ARCHS (a test keeps them equal)
_arch_spec = {**_classifier_spec, "arch": (str, lambda v: v in ARCHITECTURES,
                                           "one of small, facenet64, irse50 (pipeline/vision/nets.py)")}

_dp_spec = {**_classifier_spec, "max_grad_norm": (_num, _pos, "a number > 0 (per-sample clipping norm), e.g. 1.0")}

SPEC = {
    "seed": (int, lambda v: v >= 0, "a non-negative integer"),
    "bootstrap": (int, lambda v: v >= 100, "an integer >= 100 (bootstrap resamples), e.g. 1000"),
    "data": {
        "source": (str, lambda v: v in ("synthetic", "csv", "kaggle"), "one of synthetic, csv, kaggle"),
        "rows": (int, lambda v: v >= 100, "an integer >= 100"),
        "csv_path": (str, _any, "a path to medical_insurance.csv"),
        "kaggle_slug": (str, lambda v: "/" in v, "owner/dataset"),
        "kaggle_file": (str, lambda v: bool(v), "the CSV file name inside the data set"),
        "sha256": (str, lambda v: v == "" or (len(v) == 64 and all(c in "0123456789abcdef" for c in v)),
                   "64 lowercase hex digits, or \"\" to skip the check"),
    },
    "preprocess": {
        "test_fraction": (_num, _prob, "a number in (0, 1), e.g. 0.4"),
        "quantile": (_num, _prob, "a number in (0, 1), e.g. 0.9"),
        "sensitive": (str, lambda v: bool(v), "a numeric column name, e.g. bmi"),
    },
    "train": {
        "hidden": (int, lambda v: v >= 1, "an integer >= 1, e.g. 64"),
        "epochs": (int, lambda v: v >= 1, "an integer >= 1"),
        "batch_size": (int, lambda v: v >= 1, "an integer >= 1"),
        "lr": (_num, _pos, "a number > 0"),
        "l1": (_num, lambda v: v >= 0, "a number >= 0"),
    },
    "smoothing": {
        "sigmas": (list, _pos_list, "a non-empty list of numbers > 0, e.g. [1.0, 2.0, 3.0]"),
        "n0": (int, lambda v: v >= 1, "an integer >= 1, e.g. 100"),
        "n": (int, lambda v: v >= 1, "an integer >= 1, e.g. 1000"),
        "alpha": (_num, _prob, "a number in (0, 1), e.g. 0.01"),
        "noise": (str, lambda v: v in ("fresh", "shared"), "fresh or shared"),
        "chunk": (int, lambda v: v >= 1, "an integer >= 1 (noisy evaluations per chunk), e.g. 32768"),
    },
    "ape": {
        "step": (_num, _pos, "a number > 0 (BMI units), e.g. 0.01"),
        "points": (int, lambda v: v >= 1, "an integer >= 1, e.g. 500"),
        "bin_width": (_num, _pos, "a number > 0, e.g. 0.2"),
        "robust_quantile": (_num, _prob, "a number in (0, 1), e.g. 0.99"),
        "noise": (str, lambda v: v in ("record", "fresh"), "record (one noise bank per record) or fresh"),
        "boundary": {
            "records": (int, lambda v: v >= 1, "an integer >= 1, e.g. 200"),
            "level": (_num, _prob, "a number in (0, 1), e.g. 0.95"),
            "halfwidth": (_num, _pos, "a number > 0 (BMI units), e.g. 0.02"),
            "block": (int, lambda v: v >= 100, "an integer >= 100, e.g. 20000"),
            "max_draws": (int, lambda v: v >= 100, "an integer >= block, e.g. 6000000"),
            "coarse_step": (_num, _pos, "a number > 0 (BMI units), e.g. 0.25"),
            "below": (_num, _pos, "a number > 0 (BMI units), e.g. 6.0"),
            "above": (_num, _pos, "a number > 0 (BMI units), e.g. 4.0"),
        },
        "ablation": {
            "sigma": (_num, _pos, "a number > 0, e.g. 3.0"),
            "ns": (list, _int_list, "a non-empty list of integers >= 1, e.g. [100, 1000]"),
            "alphas": (list, _prob_list, "a non-empty list of numbers in (0, 1), e.g. [0.01, 0.99]"),
        },
    },
    "images": {
        "source": (str, lambda v: v in ("synthetic", "digits", "folder", "celeba"),
                   "one of synthetic, digits, folder, celeba"),
        "identities": (int, lambda v: v >= 3, "an integer >= 3 (synthetic: identities in all, private ones included)"),
        "per_identity": (int, lambda v: v >= 5, "an integer >= 5 (synthetic: images per identity)"),
        "root": (str, _any, "folder: root/<identity>/<images>; celeba: the folder holding img_align_celeba/"),
        "size": (int, lambda v: v >= 8 and v & (v - 1) == 0, "a power of two >= 8, e.g. 32 (CelebA: 64)"),
        "channels": (int, lambda v: v in (1, 3), "1 (grey) or 3 (RGB)"),
        "private": (int, lambda v: v >= 2, "an integer >= 2 (synthetic: 10; digits: 5; CelebA: 1000)"),
        "test_fraction": (_num, _prob, "a number in (0, 1), e.g. 0.2"),
        "train_fraction": (_num, _prob, "a number in (0, 1), with test_fraction + train_fraction <= 1, e.g. 0.05"),
    },
    "target": _arch_spec,
    "evaluator": _arch_spec,
    "mid": {
        "betas": (list, lambda v: bool(v) and all(isinstance(b, (int, float)) and not isinstance(b, bool) and b >= 0
                                                  for b in v), "a non-empty list of numbers >= 0, e.g. [0.001, 0.01]"),
        "k": (int, lambda v: v >= 1, "an integer >= 1 (bottleneck size), e.g. 256"),
        "epochs": (int, lambda v: v >= 1, "an integer >= 1, e.g. 200"),
        "batch_size": (int, lambda v: v >= 1, "an integer >= 1, e.g. 16"),
        "lr": (_num, _pos, "a number > 0, e.g. 0.01"),
    },
    "membership": {
        "label_only_sigmas": (list, _pos_list, "a non-empty list of numbers > 0 (pixel units), e.g. [0.05, 0.1, 0.2, 0.4]"),
        "label_only_queries": (int, lambda v: v >= 1, "an integer >= 1 (noisy copies per record), e.g. 100"),
        "reference_models": (int, lambda v: v >= 4, "an integer >= 4 (LiRA/RMIA reference models), e.g. 16"),
        "label_only_models": (int, lambda v: v >= 3, "an integer >= 3, at most reference_models, e.g. 6"),
        "lira_variance": (str, lambda v: v in ("global", "per_record"), "global or per_record"),
        "rmia": {
            "a": (_num, lambda v: 0 <= v <= 1, "a number in [0, 1], e.g. 0.3"),
            "gamma": (_num, _pos, "a number > 0, e.g. 1"),
        },
        "rp": {
            "sigmas": (list, _pos_list, "a non-empty list of numbers > 0 (pixel units), e.g. [0.1, 0.5]"),
            "ns": (list, _int_list, "a non-empty list of integers >= 1, e.g. [10]"),
        },
        "perturbation": {
            "tau": (_num, _prob, "a number in (0, 1), e.g. 0.5"),
            "reach": (_num, lambda v: 0 < v <= 1, "a number in (0, 1], e.g. 0.95"),
            "steps": (int, lambda v: v >= 1, "an integer >= 1, e.g. 10"),
        },
        "chunk": (int, lambda v: v >= 1, "an integer >= 1 (noisy evaluations per chunk), e.g. 1024"),
    },
    "dpsgd": {
        "epsilons": (list, _pos_list, "a non-empty list of numbers > 0 (privacy budgets), e.g. [1, 2, 4, 8, 16]"),
        "delta": (_num, _prob, "a number in (0, 1), below 1 / training records, e.g. 1.0e-5"),
        "images": _dp_spec,
        "tabular": _dp_spec,
    },
    "randomized_response": {
        "epsilons": (list, _pos_list, "a non-empty list of numbers > 0, e.g. [1, 2, 4, 8]"),
    },
    "gan": {
        "steps": (int, lambda v: v >= 1, "an integer >= 1 (generator steps)"),
        "batch_size": (int, lambda v: v >= 2, "an integer >= 2, e.g. 64"),
        "lr": (_num, _pos, "a number > 0, e.g. 0.0001"),
        "critic_iters": (int, lambda v: v >= 1, "an integer >= 1, e.g. 5"),
        "gp_weight": (_num, lambda v: v >= 0, "a number >= 0, e.g. 10"),
        "z_dim": (int, lambda v: v >= 1, "an integer >= 1, e.g. 100"),
    },
    "brepmi": {
        "points": (int, lambda v: v >= 1, "an integer >= 1, e.g. 32"),
        "radius": (_num, _pos, "a number > 0, e.g. 2"),
        "expansion": (_num, lambda v: v > 1, "a number > 1, e.g. 1.3"),
        "grow_at": (int, lambda v: v >= 1, "an integer in [1, points], e.g. 29"),
        "clamp": (_num, _pos, "a number > 0, e.g. 1.5"),
        "step_divisor": (_num, _pos, "a number > 0, e.g. 3"),
        "max_step": (_num, _pos, "a number > 0, e.g. 3"),
        "max_iters_at_radius": (int, lambda v: v >= 1, "an integer >= 1, e.g. 1000"),
        "max_queries": (int, lambda v: v >= 1, "an integer >= 1 (queries per attack)"),
        "init_batch": (int, lambda v: v >= 1, "an integer >= 1, e.g. 256"),
        "max_init_batches": (int, lambda v: v >= 1, "an integer >= 1"),
        "targets": (int, lambda v: v >= 1, "an integer >= 1: attack private classes 0..targets-1"),
        "restarts": (int, lambda v: v >= 1, "an integer >= 1 (attacks per class)"),
    },
    "inversion": {
        "sigmas": (list, _pos_list, "a non-empty list of numbers > 0 (pixel units), e.g. [0.01, 0.1]"),
        "ns": (list, _int_list, "a non-empty list of integers >= 1, e.g. [10, 100]"),
        "chunk": (int, lambda v: v >= 1, "an integer >= 1 (noisy evaluations per chunk), e.g. 32768"),
    },
    "guarantee": {
        task: {"sigma": (_num, _pos, "a number > 0 (the task's input units), e.g. 1.0"),
               "records": (int, lambda v: v >= 1, "an integer >= 1, e.g. 40"),
               **({"near": (_num, lambda v: v >= 0, "a number >= 0 (BMI units), e.g. 3.0")} if task == "tabular" else {}),
               "kinds": (list, lambda v, kinds=kinds: bool(v) and set(v) <= set(kinds), f"a non-empty list of {', '.join(kinds)}"),
               "protocols": (list, lambda v: set(v) <= {"certify", "predict", "vote"},
                             "a list of certify, predict, vote (the exact g always runs)"),
               "releases": (int, lambda v: v >= 2, "an integer >= 2 (releases per input), e.g. 100"),
               "vote_n": (int, lambda v: v >= 1, "an integer >= 1, e.g. 10"),
               "exact_n": (int, lambda v: v >= 100, "an integer >= 100 (draws behind g), e.g. 50000"),
               "repeats": (list, lambda v: all(isinstance(k, int) and k >= 2 for k in v),
                           "a list of integers >= 2 (K fresh answers), e.g. [10, 100]"),
               "margin": (_num, lambda v: 0 < v < 0.5, "a number in (0, 0.5), e.g. 0.1"),
               "chunk": (int, lambda v: v >= 1, "an integer >= 1 (noisy evaluations per chunk), e.g. 4096")}
        for task, kinds in (("tabular", ("sphere", "inside", "axis")), ("images", ("sphere", "inside")))
    },
    "extraction": {
        "tabular": {"sigmas": (list, _pos_list, "a non-empty list of numbers > 0 (standardised units), e.g. [1.0, 3.0]"),
                    "n": (int, lambda v: v >= 1, "an integer >= 1 (noisy copies per vote), e.g. 10"),
                    "budgets": (list, _int_list, "a non-empty list of query budgets, e.g. [1000, 10000]"),
                    "chunk": (int, lambda v: v >= 1, "an integer >= 1 (noisy evaluations per chunk), e.g. 131072")},
        "images": {"sigmas": (list, _pos_list, "a non-empty list of numbers > 0 (pixel units), e.g. [0.1, 0.3]"),
                   "n": (int, lambda v: v >= 1, "an integer >= 1 (noisy copies per vote), e.g. 10"),
                   "beta": (_num, lambda v: v >= 0, "one of mid.betas, e.g. 0.01"),
                   "budgets": (list, _int_list, "a non-empty list of query budgets, e.g. [1000, 5000]"),
                   "student": _classifier_spec,
                   "targets": (int, lambda v: v >= 1, "an integer >= 1, at most images.private, e.g. 5"),
                   "restarts": (int, lambda v: v >= 1, "an integer >= 1 (attacks per class), e.g. 1"),
                   "whitebox": {"steps": (int, lambda v: v >= 1, "an integer >= 1 (Adam steps on the latent), e.g. 100"),
                                "lr": (_num, _pos, "a number > 0, e.g. 0.05")},
                   "chunk": (int, lambda v: v >= 1, "an integer >= 1 (noisy evaluations per chunk), e.g. 1024")},
    },
    "n_effect": {
        "tabular": {"sigma": (_num, _pos, "a number > 0 (standardised units), e.g. 1.0"),
                    "ns": (list, _int_list, "a non-empty list of integers >= 1, e.g. [10, 30, 100]"),
                    "victims": (int, lambda v: v >= 1, "an integer >= 1 (Scenario I victims), e.g. 50"),
                    "test_records": (int, lambda v: v >= 1, "an integer >= 1 (test records for utility), e.g. 5000")},
        "images": {"sigma": (_num, _pos, "one of inversion.sigmas (pixel units), e.g. 0.3"),
                   "ns": (list, _int_list, "a non-empty list of integers >= 1, e.g. [10, 30, 100]")},
    },
    "attribute_attack": {
        "records": (int, lambda v: v >= 1, "an integer >= 1, e.g. 200"),
        "near": (_num, lambda v: v >= 0, "a number >= 0 (sensitive-attribute units), e.g. 3.0"),
        "step": (_num, _pos, "a number > 0 (sensitive-attribute units), e.g. 0.1"),
        "noise": (str, lambda v: v in ("fresh", "keyed"), "fresh or keyed"),
        "secret_env": (str, lambda v: bool(v), "the name of an environment variable, e.g. RP_NOISE_SECRET"),
        "repeats": (list, _int_list, "a non-empty list of integers >= 1, e.g. [1, 10, 100]"),
        "serve_n": (int, lambda v: v >= 1, "an integer >= 1 (noisy copies per majority-vote answer), e.g. 10"),
        "calibration": (int, lambda v: v >= 1, "an integer >= 1, e.g. 20000"),
    },
    "compute": {
        "backend": (str, lambda v: v in ("local", "ray"), "local or ray"),
        "chunk": (int, lambda v: v >= 1, "an integer >= 1 (rows per chunk, one Ray task each), e.g. 10000"),
        "workers": (int, lambda v: v >= 0, "an integer >= 0 (local processes; 0 = one per core, 1 = this process)"),
        "device": (str, lambda v: v in ("auto", "cpu", "cuda"), "auto (a CUDA device when torch sees one), cpu or cuda"),
        "ray": {
            "address": (str, lambda v: re.fullmatch(r"|auto|(ray://)?[\w.\-]+:\d{1,5}", v) is not None,
                        "\"\" (a local instance), auto (the cluster this machine joined), host:port "
                        "(the head's GCS port) or ray://host:port (Ray Client)"),
            "local_cpus": (int, lambda v: v >= 0, "an integer >= 0 (CPUs of a local instance; 0 = every core)"),
            "cpus": (_num, _pos, "a number > 0 (CPUs per task), e.g. 1"),
            "gpus": (_num, lambda v: v >= 0, "a number >= 0 (GPUs per task), e.g. 0"),
            "max_retries": (int, lambda v: v >= 0, "an integer >= 0 (retries of a chunk whose worker died), e.g. 3"),
        },
    },
    "mlflow": {
        "experiment": (str, lambda v: bool(v), "a non-empty experiment name"),
        "tracking_uri": (str, _any, "an MLflow tracking URI, or \"\" for the local sqlite store"),
    },
}


def _check(node: dict, spec: dict, prefix: str, where: str) -> None:
    for key in node:
        if key not in spec:
            known = ", ".join(sorted(spec))
            raise PipelineError(f"{where}: unknown key '{prefix}{key}'; fix: remove it or use one of: {known}")
    for key, rule in spec.items():
        name = f"{prefix}{key}"
        if key not in node:
            raise PipelineError(f"{where}: missing key '{name}'; fix: add it "
                                "(the committed params.yaml lists every key)")
        value = node[key]
        if isinstance(rule, dict):
            if not isinstance(value, dict):
                raise PipelineError(f"{where}: '{name}' must be a mapping; "
                                    "fix: restore the section from the committed params.yaml")
            _check(value, rule, name + ".", where)
            continue
        typ, ok, fix = rule
        bad_type = not isinstance(value, typ) or isinstance(value, bool)
        if bad_type or not ok(value):
            raise PipelineError(f"{where}: invalid '{name}' = {value!r}; fix: set it to {fix}")


def load_params(path: str | Path = "params.yaml") -> dict:
    """Read ``path`` with ``yaml.safe_load`` and validate every key against ``SPEC``."""
    path = Path(path)
    if not path.is_file():
        raise PipelineError(f"{path}: not found; fix: run from the repository root, which holds params.yaml")
    try:
        params = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise PipelineError(f"{path}: not valid YAML ({exc}); fix: correct the syntax") from None
    if not isinstance(params, dict):
        raise PipelineError(f"{path}: must hold a mapping of sections; fix: restore it from git")
    _check(params, SPEC, "", str(path))
    im = params["images"]
    if im["test_fraction"] + im["train_fraction"] > 1:
        raise PipelineError(f"{path}: invalid 'images.train_fraction' = {im['train_fraction']}: with "
                            f"images.test_fraction = {im['test_fraction']} it exceeds 1; fix: lower one of them")
    arch = params["target"]["arch"]
    if arch != "small" and params["evaluator"]["arch"] == arch:
        raise PipelineError(f"{path}: invalid 'evaluator.arch' = {arch!r}: the same as target.arch; fix: set it to "
                            "another of small, facenet64, irse50 (the judge of model inversion must be a different "
                            "architecture than the target, Zhang et al. 2020)")
    mem = params["membership"]
    if mem["label_only_models"] > mem["reference_models"]:
        raise PipelineError(f"{path}: invalid 'membership.label_only_models' = {mem['label_only_models']}; fix: set "
                            f"it to at most membership.reference_models = {mem['reference_models']}")
    b = params["brepmi"]
    if b["grow_at"] > b["points"]:
        raise PipelineError(f"{path}: invalid 'brepmi.grow_at' = {b['grow_at']}; fix: set it to at most "
                            f"brepmi.points = {b['points']}")
    if b["targets"] > params["images"]["private"]:
        raise PipelineError(f"{path}: invalid 'brepmi.targets' = {b['targets']}; fix: set it to at most "
                            f"images.private = {params['images']['private']}")
    ex = params["extraction"]["images"]
    if ex["beta"] not in params["mid"]["betas"]:
        raise PipelineError(f"{path}: invalid 'extraction.images.beta' = {ex['beta']}; fix: set it to one of "
                            f"mid.betas = {params['mid']['betas']} (the MID model the stage serves)")
    if ex["targets"] > params["images"]["private"]:
        raise PipelineError(f"{path}: invalid 'extraction.images.targets' = {ex['targets']}; fix: set it to at most "
                            f"images.private = {params['images']['private']}")
    if params["n_effect"]["images"]["sigma"] not in params["inversion"]["sigmas"]:
        raise PipelineError(f"{path}: invalid 'n_effect.images.sigma' = {params['n_effect']['images']['sigma']}; fix: "
                            f"set it to one of inversion.sigmas = {params['inversion']['sigmas']}")
    return params
