"""The Section 6 experiment: the defended models' labels (the smoothed vote, MID's sampled labels)
and the grid of attacks, reproducible whatever the chunk size and the order of the tasks."""
import numpy as np
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
    G, target, evaluator = nets.generator(1, 8, 100).eval(), nets.target(1, 8, 3), nets.evaluator(1, 8, 3).eval()
    models = {"target": target, "mid": {0.01: build_mid(1, 8, 3, k=8).eval()}}
    cfg = brepmi.Config(max_queries=33 * 3, init_batch=16, max_init_batches=2)
    configs = inversion.configs([0.3], [5], [0.01])
    return [inversion.run_attacks(G, models, evaluator, configs, cfg, 3, 2, 100, 3, seed=1, chunk=chunk, compute=compute,
                          progress=False) for chunk in (7, 5000)]


def test_the_grid_is_reproducible_and_independent_of_chunk_size_and_task_order(monkeypatch):
    local = {"backend": "local", "chunk": 1}
    (a, b) = _grid(local)
    assert [c[0] for c in a] == [c[0] for c in b] and all(np.array_equal(x[1], y[1]) for x, y in zip(a, b))
    records = [r for c in a for r in c[0]]
    assert len(a) == 3 and any(r["found_start"] for r in records) and all(r["queries"] <= 99 for r in records)
    # tasks run in reverse order (as on a cluster, in any order): the same records and images
    from pipeline.core import compute

    def reverse(fn, chunks, compute, shared, bar):
        results = {i: fn(start, stop, **shared) for i, (start, stop) in reversed(list(enumerate(chunks)))}
        yield from (results[i] for i in range(len(chunks)))
    monkeypatch.setattr(compute, "_local_map", reverse)
    (c, _) = _grid(local)
    assert [x[0] for x in c] == [x[0] for x in a] and all(np.array_equal(x[1], y[1]) for x, y in zip(a, c))
    assert [x[2] for x in c] == [x[2] for x in a]
