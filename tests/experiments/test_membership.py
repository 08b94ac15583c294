"""The membership experiment: the defender's shadow draws, the attack choice on the attacker's
pseudo-target, and the reference models' training routine."""
import numpy as np
import pytest
import torch

from pipeline.attacks.membership import AttackScores
from pipeline.core.errors import PipelineError
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


def test_the_attack_is_chosen_on_the_pseudo_target_and_thresholds_come_from_it():
    """Attack a is best on the attacker's pseudo-target, b on the target: the choice is a. An
    attack without a fitted threshold gets the pseudo-target's best one."""
    pseudo = {"a": AttackScores("a", np.array([3.0, 4.0]), np.array([1.0, 2.0]), np.inf),
              "b": AttackScores("b", np.array([1.0, 4.0]), np.array([2.0, 3.0]), 0.5), "c": None}
    target = {"a": AttackScores("a", np.array([1.0, 2.0]), np.array([1.5, 2.5]), np.inf),
              "b": AttackScores("b", np.array([5.0, 6.0]), np.array([1.0, 2.0]), 0.5), "c": None}
    strongest, auc = de.choose(pseudo, target)
    assert strongest == "a" and auc == {"a": 1.0, "b": 0.5}
    assert target["a"].threshold == 3.0 and target["b"].threshold == 0.5
    assert list(target["a"].guess_member) == [False, False]


def test_reference_models_come_from_the_targets_training_routine():
    """One routine: reference model m is ``train_classifier`` on its half with seed derive(seed, m)."""
    from pipeline.core.seeds import derive_seed
    from pipeline.vision.nets import train_classifier

    rng = np.random.default_rng(0)
    x = rng.random((40, 1, 8, 8), dtype=np.float32)
    y = np.arange(40) % 4
    keep = np.stack([np.arange(40) < 20, np.arange(40) >= 20])
    cfg = {"epochs": 2, "batch_size": 8, "lr": 0.01}
    states = de.train_references(0, 2, x, y, keep, 4, cfg, seed=7)
    alone = train_classifier("target", x[20:], y[20:], 4, cfg, derive_seed(7, 1), progress=False)[0].state_dict()
    assert all(torch.equal(states[1][k], alone[k]) for k in alone)
    assert not torch.equal(states[0]["0.weight"], alone["0.weight"])
    models = de.reference_models(x, y, keep, 4, {"compute": {"backend": "local", "chunk": 99}, "target": cfg}, 7)
    assert all(torch.equal(models[1].state_dict()[k], alone[k]) for k in alone)
    # the local pool (two spawned processes, one torch thread each) trains the same bytes
    pooled = de.reference_models(x, y, keep, 4, {"compute": {"backend": "local", "chunk": 1, "workers": 2},
                                                 "target": cfg}, 7)
    assert all(torch.equal(p.state_dict()[k], m.state_dict()[k]) for p, m in zip(pooled, models) for k in alone)
