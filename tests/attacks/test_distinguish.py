"""The distinguishing game: the TV estimator and its intervals against analytic answer laws, the
keyed adversary on the real engine, the partners' distances, and the game on a linear classifier
whose answers are known."""
from itertools import product

import numpy as np
import pytest
import torch
from scipy.stats import binom
from torch import nn

from pipeline.attacks.distinguish import (disagreement, partners, product_tv, repeated_tv, total_variation,
                                          tv_interval)
from pipeline.experiments.guarantee import distinguishing_game
from pipeline.smoothing import VOTE, Smooth

LAWS = {"equal": ([0.5, 0.3, 0.2], [0.5, 0.3, 0.2]), "apart": ([1.0, 0.0, 0.0], [0.0, 0.6, 0.4]),
        "between": ([0.5, 0.3, 0.2], [0.3, 0.3, 0.4]), "point": ([0.0, 1.0, 0.0], [0.0, 1.0, 0.0])}


def samples(p, q, n, sims, seed):
    rng = np.random.default_rng(seed)
    return rng.multinomial(n, p, size=sims), rng.multinomial(n, q, size=sims)


def test_total_variation_of_counts_and_the_plug_in_converges():
    assert total_variation([2, 0, 2], [1, 1, 0]) == pytest.approx(0.5)
    cx, cy = samples(*LAWS["between"], 200_000, 1, 0)
    est, lo, hi = tv_interval(cx[0], cy[0])
    assert est == pytest.approx(0.2, abs=0.005) and lo < 0.2 < hi and hi - lo < 0.02


@pytest.mark.parametrize("case", sorted(LAWS))
def test_tv_interval_covers_the_true_tv(case):
    p, q = LAWS[case]
    truth, sims = total_variation(p, q), 400
    cx, cy = samples(p, q, 200, sims, 2)
    found = np.array([tv_interval(a, b) for a, b in zip(cx, cy)])
    covered = (found[:, 1] <= truth + 1e-12) & (truth <= found[:, 2] + 1e-12)
    assert covered.mean() >= 0.95
    assert np.mean(found[:, 2] - found[:, 1]) < 0.3  # not the trivial [0, 1]


def test_identical_point_masses_give_a_small_interval_at_zero():
    est, lo, hi = tv_interval([300, 0, 0], [300, 0, 0])
    z2 = 1.959964 ** 2
    assert est == 0.0 and lo == 0.0 and 0.0 < hi <= z2 / (300 + z2) + 1e-9


def test_product_tv_matches_enumeration_and_the_binomial():
    p, q = np.array([0.5, 0.3, 0.2]), np.array([0.2, 0.3, 0.5])
    k = 3
    sequences = list(product(range(3), repeat=k))
    by_hand = 0.5 * sum(abs(np.prod(p[list(s)]) - np.prod(q[list(s)])) for s in sequences)
    assert product_tv(p, q, k) == pytest.approx(by_hand, abs=1e-12)
    j = np.arange(41)
    assert product_tv([0.7, 0.3], [0.6, 0.4], 40) == pytest.approx(
        0.5 * np.abs(binom.pmf(j, 40, 0.3) - binom.pmf(j, 40, 0.4)).sum(), abs=1e-12)


@pytest.mark.parametrize("case", ["equal", "between", "apart"])
def test_repeated_tv_interval_covers_the_product_tv(case):
    p, q = LAWS[case]
    truth = product_tv(p, q, 10)
    cx, cy = samples(p, q, 200, 300, 3)
    found = np.array([repeated_tv(a, b, 10) for a, b in zip(cx, cy)])
    covered = (found[:, 1] <= truth + 1e-12) & (truth <= found[:, 2] + 1e-12)
    assert covered.mean() >= 0.95
    assert np.all(found[:, 0] >= found[:, 1] - 1e-12)


def linear(margin_weight=1.0):
    """logits (0, w * x_0): class 1 iff x_0 > 0, p_A(x) = Phi(|x_0| / sigma)."""
    model = nn.Sequential(nn.Linear(2, 2))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[0.0, 0.0], [margin_weight, 0.0]]))
        model[0].bias.zero_()
    return model


def test_keyed_noise_answers_the_same_input_identically():
    x = torch.tensor([[0.05, 0.3], [0.05, 0.3], [0.06, 0.3]])  # a copy of x, and a distinct neighbour
    served = Smooth(linear(), 2, 1.0, noise="keyed", secret=b"first")
    answers = []
    for r in range(60):
        served.secret = b"release %d" % r
        answers.append(served.vote(x, 5, key=0))
    a = np.array(answers)
    assert set(a[:, 0]) == {0, 1}  # the answer does depend on the secret
    assert disagreement(a[:, 0], a[:, 1])[:2] == (0.0, 0.0)
    est, lo, hi = disagreement(a[:, 0], a[:, 2])
    assert est > 0 and lo < est < hi


def test_fresh_vote_laws_are_those_of_independent_releases():
    """Repeating a row gives each copy its own draws: the vote's answers are i.i.d. Bernoulli."""
    served = Smooth(linear(), 2, 1.0, noise="fresh", seed=3)
    counts = served.counts(torch.tensor([[0.0, 0.0]]).repeat(4000, 1), 1, VOTE, key=0)
    assert counts[:, 1].mean() == pytest.approx(0.5, abs=0.03)


def test_partners_have_the_requested_distance():
    rng = np.random.default_rng(0)
    x = rng.random((5, 1, 4, 4)).astype(np.float32)
    r = rng.random(5) + 0.1
    for kind, scale in (("sphere", 1.0), ("inside", 0.5)):
        xp = partners(x, r, kind, rng)
        assert xp.shape == x.shape and xp.dtype == x.dtype
        dist = np.linalg.norm((xp.astype(np.float64) - x).reshape(5, -1), axis=1)
        assert dist == pytest.approx(scale * r, rel=1e-5)
    flat = x.reshape(5, -1)
    both = partners(flat, r, "axis", rng, axis=3)
    assert both.shape == (10, 16)
    step = both.astype(np.float64) - np.vstack([flat, flat])
    assert step[:, 3] == pytest.approx(np.concatenate([r, -r]), rel=1e-5)
    assert np.all(np.delete(step, 3, axis=1) == 0)
    toward = partners(flat, r, "axis", rng, axis=3, sign=np.array([1, -1, 1, -1, 1]))
    assert (toward[:, 3] - flat[:, 3]) * np.array([1, -1, 1, -1, 1]) == pytest.approx(r, rel=1e-4)


CFG = {"n0": 50, "n": 200, "alpha": 0.01, "kinds": ["sphere", "inside", "axis"],
       "protocols": ["certify", "predict", "vote"], "releases": 100, "vote_n": 10, "exact_n": 20000,
       "repeats": [10], "margin": 0.1, "chunk": 4096, "bootstrap": 200}
RECORDS = np.array([[8.0, 0.0], [-9.0, 1.0], [0.6, 0.0], [-0.7, 2.0]], dtype=np.float32)  # far, far, near, near


def test_the_game_on_a_linear_classifier():
    metrics, table = distinguishing_game(linear(), 2, RECORDS, 1.0, CFG, 0, b"secret", axis=(0, 0.0))
    assert metrics["certified"] == 4
    far, near = table["record"] < 2, table["record"] >= 2
    assert np.all(table.loc[far, "advantage"] == 0.0)  # point masses at x and x', g constant
    assert np.all(table.loc[table["protocol"] == "exact", "advantage"] == 0.0)  # the certificates hold
    assert metrics["axis"]["exact"]["differ"] == 0.0
    crossing = table[near & (table["kind"] == "axis") & (table["protocol"] == "certify") & (table["noise"] == "fresh")]
    assert np.all(crossing["pa_partner"] < 0.7) and np.all(crossing["abstain_partner"] > 0.2)
    assert np.all(crossing["advantage_low"] > CFG["alpha"] / 2)  # far more than alpha / 2
    assert metrics["axis"]["certify"]["fresh"]["lower_above_half_alpha"] == 0.5
    assert set(metrics["axis"]["vote"]) == {"fresh", "keyed", "repeat"}


def test_the_game_depends_only_on_the_seed():
    small = {**CFG, "kinds": ["sphere", "axis"], "releases": 20, "exact_n": 2000}
    first = distinguishing_game(linear(), 2, RECORDS, 1.0, small, 5, b"secret", axis=(0, 0.0))
    again = distinguishing_game(linear(), 2, RECORDS, 1.0, {**small, "chunk": 100}, 5, b"secret", axis=(0, 0.0))
    assert first[0] == again[0]
    assert first[1].equals(again[1])
