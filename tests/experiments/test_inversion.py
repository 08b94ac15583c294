"""The Section 6 experiment: the defended models' labels (the smoothed vote, MID's sampled labels)
and the grid of attacks, reproducible whatever the chunk size and the order of the tasks."""
import numpy as np
import pandas as pd
import pytest
import torch
from scipy.stats import binom, norm
from torch import nn

from pipeline.attacks import brepmi
from pipeline.defenses.mid import build_mid
from pipeline.experiments import inversion
from pipeline.vision import nets


class Threshold(nn.Module):
    """Class 1 iff the mean pixel exceeds 0.5: the smoothed vote has a closed form."""

    def forward(self, x):
        m = x.flatten(1).mean(dim=1)
        return torch.stack([0.5 - m, m - 0.5], dim=1)


def test_majority_vote_defense_matches_the_smoothed_probability_and_uses_fresh_noise():
    d, sigma, n = 16, 0.4, 100
    base = Threshold()
    labels = inversion.labeller({"target": base}, {"sigma": sigma, "n": n}, 2, seed=3, chunk=500)

    def vote_is_one(offset):  # the mean pixel's noise is N(0, sigma^2 / d); class 1 needs > n / 2 votes
        return binom.sf(n // 2, n, norm.cdf(offset / (sigma / np.sqrt(d))))

    x = torch.full((400, 1, 4, 4), 0.55)
    assert labels(x).mean() == pytest.approx(vote_is_one(0.05), abs=0.01)  # ~0.9999
    near = torch.full((2000, 1, 4, 4), 0.505)  # P(vote 1) = P(Bin(100, Phi(0.05)) > 50) ~= 0.62
    first, second = labels(near), labels(near)
    se = np.sqrt(vote_is_one(0.005) * (1 - vote_is_one(0.005)) / len(near))
    assert abs(first.mean() - vote_is_one(0.005)) < 4 * se and abs(second.mean() - vote_is_one(0.005)) < 4 * se
    assert not np.array_equal(first, second)  # fresh noise per query
    assert np.array_equal(inversion.labeller({"target": base}, {"name": "base"}, 2, 0, 1)(x), np.ones(400))


def test_mid_labels_are_sampled_per_query_and_reproducible_from_the_seed():
    torch.manual_seed(0)
    model = build_mid(1, 8, 3, k=16)
    with torch.no_grad():
        model.statistics.bias[16:] = 8.0  # std = softplus(8 - 5) ~= 3: labels vary between samples
    x = torch.rand(300, 1, 8, 8)
    models, config = {"mid": {0.01: model}}, {"beta": 0.01}
    first = inversion.labeller(models, config, 3, seed=5, chunk=1)
    a, b = first(x), first(x)
    assert not np.array_equal(a, b)  # a new sample for every query
    again = inversion.labeller(models, config, 3, seed=5, chunk=1)
    assert np.array_equal(again(x), a) and np.array_equal(again(x), b)


def _grid(compute):
    torch.manual_seed(0)
    G, target = nets.generator(1, 8, 100).eval(), nets.target(1, 8, 3)
    models = {"target": target, "mid": {0.01: build_mid(1, 8, 3, k=8).eval()}}
    cfg = brepmi.Config(max_queries=33 * 3, init_batch=16, max_init_batches=2)
    configs = inversion.configs([0.3], [5], [0.01])
    return [inversion.run_attacks(G, models, configs, cfg, 3, 2, 100, 3, seed=1, chunk=chunk, compute=compute,
                                  progress=False) for chunk in (7, 5000)]


def test_the_grid_is_reproducible_and_independent_of_chunk_size_and_task_order(monkeypatch):
    local = {"backend": "local", "chunk": 1}
    (a, b) = _grid(local)
    same = lambda p, q: all(np.array_equal(x[k], y[k], equal_nan=True) for x, y in zip(p, q) for k in (1, 2))  # noqa: E731
    assert [c[0] for c in a] == [c[0] for c in b] and same(a, b)
    records = [r for c in a for r in c[0]]
    assert len(a) == 3 and any(r["found_start"] for r in records) and all(r["queries"] <= 99 for r in records)
    # tasks run in reverse order (as on a cluster, in any order): the same records and images
    from pipeline.core import compute

    def reverse(fn, chunks, compute, shared, bar, spread):
        results = {i: fn(start, stop, **shared) for i, (start, stop) in reversed(list(enumerate(chunks)))}
        yield from (results[i] for i in range(len(chunks)))
    monkeypatch.setattr(compute, "_local_map", reverse)
    (c, _) = _grid(local)
    assert [x[0] for x in c] == [x[0] for x in a] and same(a, c)
    assert [x[3] for x in c] == [x[3] for x in a]


def _judged(success, has_image=None):
    n = len(success)
    has = np.ones(n, bool) if has_image is None else np.asarray(has_image)
    return pd.DataFrame({"label": np.where(has, 0, -1), "success": np.asarray(success, bool) & has,
                         "top5": has, "knn": np.where(has, 1.0, np.nan), "centroid": np.where(has, 2.0, np.nan),
                         "nearer_private": np.asarray(success, bool) & has})


def test_summary_gives_wilson_rates_a_paired_lift_and_how_the_attacks_ended():
    n = 40
    records = pd.DataFrame({"found_start": [False, False] + [True] * 38, "queries": 100, "growths": 1,
                            "stop": ["no start"] * 2 + ["budget"] * 30 + ["converged"] * 8})
    start_ok = np.arange(n) % 4 == 0  # 10 of 40 starts already look like the class
    end_has = np.arange(n) >= 5  # 3 attacks with a start but no reconstruction (and the 2 without a start)
    end_ok = start_ok | (np.arange(n) % 2 == 1)
    m = inversion.summarise(records, _judged(start_ok, np.arange(n) >= 2), _judged(end_ok, end_has), 12, 0, 400)
    k = int((end_ok & end_has).sum())
    z = norm.ppf(0.975)
    centre = (k + z * z / 2) / (n + z * z)
    half = z * np.sqrt(k * (n - k) / n + z * z / 4) / (n + z * z)
    assert m["asr"] == k / n and m["asr_low"] == pytest.approx(centre - half) and m["asr_high"] == pytest.approx(centre + half)
    starts = int((start_ok & (np.arange(n) >= 2)).sum())
    assert m["asr_no_attack"] == starts / n and m["lift"] == pytest.approx((k - starts) / n)
    assert 0 < m["lift_low"] < m["lift"] < m["lift_high"]
    assert (m["no_start"], m["no_reconstruction"], m["stopped_by_budget"], m["reconstructions"]) == (2, 3, 30, 35)
    assert m["knn_distance"] == m["knn_distance_low"] == 1.0 and m["feature_distance"] == 2.0
    assert "asr_top5" in m and "asr_top5" not in inversion.summarise(records, _judged(start_ok), _judged(end_ok), 9, 0, 50)
    # the same hits before and after: a paired lift is exactly 0, and so is its interval
    same = inversion.summarise(records, _judged(end_ok), _judged(end_ok), 12, 0, 200)
    assert same["lift"] == same["lift_low"] == same["lift_high"] == 0


def test_utility_flags_a_model_whose_test_accuracy_reaches_chance():
    classes, rng = 5, np.random.default_rng(0)
    data = {"train_x": np.zeros((5, 1)), "test_x": np.zeros((200, 1)), "test_y": np.arange(200) % classes}
    top = np.arange(5)
    perfect = {"train_x": data["train_x"], "test_x": data["test_y"].astype(float)[:, None], "test_y": data["test_y"]}
    good = inversion.utility(lambda x: x[:, 0].astype(int) if len(x) == 200 else np.arange(5), perfect, top, classes)
    assert good["accuracy_test"] == 1 and good["accuracy"] == 1 and good["at_chance"] == 0 and good["chance"] == 0.2
    noise = inversion.utility(lambda x: rng.integers(0, classes, len(x)), data, top, classes)
    assert noise["accuracy_test_low"] <= 0.2 and noise["at_chance"] == 1
