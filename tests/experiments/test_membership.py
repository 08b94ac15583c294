"""The membership experiment: the attacker's and defender's shadow draws, and the table's null
cells for a label-only release."""
import numpy as np
import pytest
import torch
from torch import nn

from pipeline.attacks.membership import AttackScores
from pipeline.core.errors import PipelineError
from pipeline.defenses.release import Smoothed
from pipeline.experiments import membership as de
from pipeline.vision.images import split_private


def test_shadow_draws_match_the_targets_counts_and_are_disjoint_from_each_other_and_the_target():
    """Images are their own ids, so overlap with the target's train or test split is visible."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 7, 3000)
    x = np.arange(len(y))[:, None, None, None]
    parts = split_private(x, y, np.array([6, 2, 4, 0, 5]), test_fraction=0.2, train_fraction=0.05, seed=1)
    members = np.bincount(parts["train_y"], minlength=5)
    nonmembers = np.bincount(parts["test_y"], minlength=5)
    draws = de.stratified_draws(parts["shadow_y"], members, nonmembers, 2, seed=3)
    ids = []
    for ins, outs in draws:
        assert np.array_equal(np.bincount(parts["shadow_y"][ins], minlength=5), members)
        assert np.array_equal(np.bincount(parts["shadow_y"][outs], minlength=5), nonmembers)
        ids += [parts["shadow_x"][ins].ravel(), parts["shadow_x"][outs].ravel()]
    drawn = np.concatenate(ids)
    assert len(np.unique(drawn)) == len(drawn) == 2 * (members.sum() + nonmembers.sum())
    target = np.concatenate([parts["train_x"].ravel(), parts["test_x"].ravel()])
    assert not np.isin(drawn, target).any()
    again = de.stratified_draws(parts["shadow_y"], members, nonmembers, 2, seed=3)
    assert all(np.array_equal(a, b) for d, e in zip(draws, again) for a, b in zip(d, e))
    other = de.stratified_draws(parts["shadow_y"], members, nonmembers, 2, seed=4)
    assert not np.array_equal(draws[0][0], other[0][0])


def test_shadow_draws_refuse_a_class_too_small_for_both_parties():
    y = np.r_[np.zeros(10, int), np.ones(30, int)]
    with pytest.raises(PipelineError, match="class 0 has 10 images.*need 12"):
        de.stratified_draws(y, np.array([2, 2]), np.array([4, 4]), 2, seed=0)


def test_label_only_release_gives_null_output_attacks_one_hot_outputs_and_vote_utility():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 3)).eval()
    x = torch.randn(20, 1, 2, 2).numpy()
    y = np.arange(20) % 3
    rp = Smoothed(model, 3, sigma=0.5, n=15, seed=0, chunk=64)
    released = de.outputs(rp, de.Split(x[:8], y[:8], x[8:], y[8:]), 3)
    assert set(np.unique(released.probs_in)) <= {0.0, 1.0} and (released.probs_in.sum(1) == 1).all()
    scores = {"correctness": AttackScores("correctness", np.array([1.0, 0.0]), np.array([0.0, 0.0]), 0.5),
              "label_only_noise": AttackScores("label_only_noise", np.array([0.9, 0.8]), np.array([0.1, 0.95]), 0.5)}
    entry = de.row(scores, released)
    assert [k for k, v in entry["attacks"].items() if v is None] == ["confidence", "entropy", "modified_entropy",
                                                                     "neural"]
    assert entry["note"] == de.NOT_APPLICABLE and entry["best_auc"] == 0.75  # correctness: 0.75, noise: 0.5
    assert entry["test_accuracy"] == (released.probs_out.argmax(1) == y[8:]).mean()
