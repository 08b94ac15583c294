"""Section 5 set-up: one-hot categoricals, standardised numerics, a seeded 60/40 split, and the
label "BMI above the training set's 90th percentile B" (the insulin recommendation)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..core.errors import PipelineError
from .insurance import CATEGORIES


def train_test_split(rows: int, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded random partition of ``range(rows)`` into (train, test) index arrays."""
    order = np.random.default_rng(seed).permutation(rows)
    n_test = int(round(rows * test_fraction))
    return np.sort(order[n_test:]), np.sort(order[:n_test])


def preprocess(df: pd.DataFrame, params: dict, seed: int) -> dict:
    """Return train/test features, labels, raw sensitive values and the metadata later stages
    need (feature names, sensitive column index, its mean and std, threshold B)."""
    p = params["preprocess"]
    sensitive = p["sensitive"]
    df = df.drop(columns=["person_id"])
    numeric = [c for c in df.columns if c not in CATEGORIES]
    if sensitive not in numeric:
        raise PipelineError(f"params.yaml: preprocess.sensitive = {sensitive!r} is not a numeric column; "
                            f"fix: use one of {', '.join(numeric)}")
    train_idx, test_idx = train_test_split(len(df), p["test_fraction"], seed)
    raw = df[numeric].to_numpy(np.float64)
    mean, std = raw[train_idx].mean(axis=0), raw[train_idx].std(axis=0)
    std[std == 0] = 1.0
    onehot = [(df[c].to_numpy()[:, None] == np.array(CATEGORIES[c])[None, :]).astype(np.float64)
              for c in CATEGORIES]
    features = np.hstack([(raw - mean) / std] + onehot).astype(np.float32)
    names = numeric + [f"{c}={v}" for c in CATEGORIES for v in CATEGORIES[c]]
    s = numeric.index(sensitive)
    values = raw[:, s]
    threshold = float(np.quantile(values[train_idx], p["quantile"]))
    labels = (values > threshold).astype(np.int64)
    meta = {"feature_names": names, "sensitive": sensitive, "sensitive_index": s,
            "sensitive_mean": float(mean[s]), "sensitive_std": float(std[s]), "threshold": threshold,
            "n_train": int(len(train_idx)), "n_test": int(len(test_idx)),
            "positive_rate_train": float(labels[train_idx].mean())}
    arrays = {f"{part}_{k}": v[idx] for part, idx in (("train", train_idx), ("test", test_idx))
              for k, v in (("x", features), ("y", labels), ("raw", values), ("row", np.arange(len(df))))}
    return {"arrays": arrays, "meta": meta}


def to_units(z, meta: dict):
    """Standardised sensitive value(s) -> raw units (e.g. BMI)."""
    return np.asarray(z) * meta["sensitive_std"] + meta["sensitive_mean"]


def to_standard(v, meta: dict):
    """Raw sensitive value(s) -> standardised units."""
    return (np.asarray(v) - meta["sensitive_mean"]) / meta["sensitive_std"]
