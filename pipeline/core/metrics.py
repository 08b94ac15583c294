"""The metrics schema DVC and MLflow share.

A metrics file holds one namespace (``{"table1": {...}}``) of nested JSON whose keys are
lower-case identifiers, so a dotted path (``table1.sigma_1.accuracy``) names one number in
``dvc metrics``, ``dvc exp show --keep`` and MLflow alike. A configuration is named by such a
path (``rp.sigma_0_1.n_100``, ``mid.beta_0_001``, ``base``): its parts are ``token``s, and
``label`` turns it back into text for tables and figures. Units go into the name
(``avg_radius_bmi``).
"""
from __future__ import annotations

import re

from .errors import PipelineError
from .io import read_json, write_json

KEY = re.compile(r"[a-z][a-z0-9_]*\Z")
SYMBOLS = {"sigma": "σ", "beta": "β", "alpha": "α", "n": "N", "k": "K", "epsilon": "ε"}
WORDS = {"rp": "RP", "mid": "MID", "base": "base", "none": "none", "ablation": "ablation", "dpsgd": "DP-SGD",
         "rr": "randomized response",
         "output_perturbation": "output perturbation",
         "output_perturbation_aware": "output perturbation (mechanism-aware attacker)",
         "output_perturbation_wrong_label": "output perturbation (wrong-label attacker)"}


def token(name: str, value: float) -> str:
    """One parameter as a key part: ``token("sigma", 0.1) == "sigma_0_1"``, ``token("n", 100) == "n_100"``."""
    return f"{name}_{value:g}".replace(".", "_").replace("-", "m").replace("+", "")


def label(key: str) -> str:
    """A configuration path as text: ``"rp.sigma_0_1.n_100"`` -> ``"RP, σ=0.1, N=100"``."""
    parts = []
    for part in key.split("."):
        name, _, value = part.partition("_")
        if name in SYMBOLS and value and value[0].isdigit():
            parts.append(f"{SYMBOLS[name]}={value.replace('_', '.').replace('m', '-')}")
        else:
            parts.append(WORDS.get(part, part))
    return ", ".join(parts)


def check(tree: dict, where: str, path: str = "") -> None:
    """Raise a ``PipelineError`` naming the first key of ``tree`` (at any depth) that is not a
    lower-case identifier."""
    for key, value in tree.items():
        if not isinstance(key, str) or not KEY.match(key):
            raise PipelineError(f"{where}: metric key {path + str(key)!r} is not a lower-case identifier "
                                f"([a-z][a-z0-9_]*); fix: name it with metrics.token or snake_case")
        if isinstance(value, dict):
            check(value, where, f"{path}{key}.")


def nest(flat: dict) -> dict:
    """``{"rp.sigma_1.n_10": {...}}`` -> ``{"rp": {"sigma_1": {"n_10": {...}}}}``."""
    tree: dict = {}
    for key, value in flat.items():
        *parents, last = key.split(".")
        node = tree
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    return tree


def configurations(tree: dict, marker: str, prefix: str = "") -> dict[str, dict]:
    """The records of a nested metrics tree by configuration path: every node holding ``marker``."""
    out = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            if marker in value:
                out[prefix + key] = value
            out.update(configurations(value, marker, f"{prefix}{key}."))
    return out


def write_metrics(path: str, namespace: str, metrics: dict) -> dict:
    """Write ``{namespace: nest(metrics)}`` atomically, after ``check``-ing every key; return
    that tree (what MLflow logs, under the same dotted keys)."""
    tree = {namespace: nest(metrics)}
    check(tree, path)
    write_json(path, tree)
    return tree


def read_metrics(path: str, namespace: str) -> dict:
    """The ``namespace`` tree of a metrics file written by ``write_metrics``."""
    tree = read_json(path)
    if not isinstance(tree, dict) or namespace not in tree:
        raise PipelineError(f"{path}: no {namespace!r} metrics; fix: `dvc repro --force` the stage that writes it")
    return tree[namespace]
