"""Preprocessing (threshold, split, scaler, one-hot) and the l1 penalty of the Section 5 model."""
import numpy as np
import pytest
import torch

from pipeline.tabular.insurance import CATEGORIES, synthesize
from pipeline.core.errors import PipelineError
from pipeline.tabular.mlp import l1_penalty, mlp, train_mlp
from pipeline.core.params import load_params
from pipeline.core.training import predict
from pipeline.tabular.preprocess import preprocess, train_test_split, to_standard, to_units


@pytest.fixture(scope="module")
def prepared():
    params = load_params()
    df = synthesize(3000, seed=7)
    return df, preprocess(df, params, seed=7)


def test_split_is_seeded_disjoint_and_60_40():
    train, test = train_test_split(1000, 0.4, seed=1)
    assert len(train) == 600 and len(test) == 400
    assert not set(train) & set(test) and set(train) | set(test) == set(range(1000))
    assert np.array_equal(train_test_split(1000, 0.4, seed=1)[1], test)
    assert not np.array_equal(train_test_split(1000, 0.4, seed=2)[1], test)


def test_threshold_is_the_training_quantile_and_labels_follow_it(prepared):
    df, out = prepared
    a, meta = out["arrays"], out["meta"]
    train_bmi = df["bmi"].to_numpy()[a["train_row"]]
    assert meta["threshold"] == pytest.approx(np.quantile(train_bmi, 0.9))
    assert np.array_equal(a["train_y"], (train_bmi > meta["threshold"]).astype(int))
    assert np.array_equal(a["test_y"], (a["test_raw"] > meta["threshold"]).astype(int))
    assert np.array_equal(a["test_raw"], df["bmi"].to_numpy()[a["test_row"]])


def test_scaler_uses_training_statistics_only(prepared):
    _, out = prepared
    a, meta = out["arrays"], out["meta"]
    s = meta["sensitive_index"]
    assert abs(a["train_x"][:, s].mean()) < 1e-5 and a["train_x"][:, s].std() == pytest.approx(1, abs=1e-4)
    assert np.allclose(to_units(a["test_x"][:, s], meta), a["test_raw"], atol=1e-4)
    assert np.allclose(to_standard(to_units(0.5, meta), meta), 0.5)
    assert abs(a["test_x"][:, s].mean()) > 1e-6  # test data is not re-centred on itself


def test_one_hot_blocks_and_feature_names(prepared):
    df, out = prepared
    a, meta = out["arrays"], out["meta"]
    names = meta["feature_names"]
    assert "person_id" not in names and "alcohol_freq=None" in names
    x = np.vstack([a["train_x"], a["test_x"]])
    for col, values in CATEGORIES.items():
        block = [names.index(f"{col}={v}") for v in values]
        assert np.all(x[:, block].sum(axis=1) == 1)
    rows = np.concatenate([a["train_row"], a["test_row"]])
    none = df["alcohol_freq"].to_numpy()[rows] == "None"
    assert np.array_equal(x[:, names.index("alcohol_freq=None")] == 1, none)


def test_unknown_sensitive_column_is_refused():
    params = load_params()
    params["preprocess"]["sensitive"] = "sex"
    with pytest.raises(PipelineError, match="preprocess.sensitive"):
        preprocess(synthesize(200, 0), params, 0)


def test_l1_penalty_touches_only_non_sensitive_columns():
    torch.manual_seed(0)
    model = mlp(6, 4)
    penalty = l1_penalty(model, sensitive_index=2)
    w = model[0].weight.detach()
    assert penalty.item() == pytest.approx(w.abs().sum().item() - w[:, 2].abs().sum().item(), rel=1e-6)
    penalty.backward()
    grad = model[0].weight.grad
    assert torch.all(grad[:, 2] == 0) and torch.all(grad[:, [0, 1, 3, 4, 5]].abs() == 1)


def test_test_accuracy_per_epoch_leaves_the_training_unchanged():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(300, 4)).astype(np.float32), rng.integers(0, 2, 300)
    cfg = {"hidden": 8, "epochs": 3, "batch_size": 32, "lr": 0.01, "l1": 0.001}
    plain, history = train_mlp(x, y, 0, cfg, seed=1, progress=False)
    traced, traced_history = train_mlp(x, y, 0, cfg, seed=1, progress=False, test=(x[:50], y[:50]))
    assert all(torch.equal(a, b) for a, b in zip(plain.state_dict().values(), traced.state_dict().values()))
    assert [h["loss"] for h in history] == [h["loss"] for h in traced_history]
    assert traced_history[-1]["test_accuracy"] == float((predict(traced, x[:50], batch=None) == y[:50]).mean())
    assert "test_accuracy" not in history[0]
