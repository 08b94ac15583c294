"""BREP-MI on a problem with a known answer (the latent space is the plane and the 'model' a disc),
exact query counts and the official growth rule."""
import numpy as np
import pytest
import torch

from pipeline.attacks import brepmi

CENTER, DISC = torch.tensor([0.6, -0.3]), 1.0


def identity(z):
    return torch.as_tensor(z, dtype=torch.float32)


def disc_labels(x):
    """Class 0 inside the disc, 1 outside (the 'generator' is the identity, so images = latents)."""
    return ((x - CENTER).norm(dim=1) >= DISC).long().numpy()


CFG = brepmi.Config(radius=0.05, clamp=5.0, max_iters_at_radius=40, max_queries=20000)


def run_disc(start, cfg=CFG, seed=0):
    calls = []

    def labels(x):
        calls.append(x.clone())
        return disc_labels(x)

    oracle = brepmi.Oracle(labels)
    result = brepmi.attack(identity, oracle, np.asarray(start, dtype=np.float32), 0, cfg,
                           torch.Generator().manual_seed(seed))
    return result, oracle, calls


def test_attack_on_a_disc_stays_in_class_grows_and_ends_inside():
    start = CENTER + torch.tensor([0.9, 0.0])  # in class, near the boundary
    r, oracle, calls = run_disc(start)
    path = torch.from_numpy(np.stack(r.path))
    assert disc_labels(path[:1])[0] == 0
    assert (disc_labels(path) == 0).all()  # no accepted point ever leaves the class
    assert r.growths > 0 and r.radius == pytest.approx(CFG.radius * CFG.expansion ** r.growths)
    assert r.reconstruction is not None and disc_labels(torch.from_numpy(r.reconstruction)[None])[0] == 0
    # repulsion from the boundary: the reconstruction is deeper inside than the start
    assert (torch.from_numpy(r.reconstruction) - CENTER).norm() < (start - CENTER).norm() - 0.3
    assert r.stop == "converged" and r.iterations >= CFG.max_iters_at_radius
    # every single-point query that was out of class was rejected (and counted)
    singles = [c for c in calls if len(c) == 1]
    assert r.rejected == sum(int(disc_labels(c)[0] == 1) for c in singles)
    assert len(singles) == len(r.path) - 1 + r.rejected


def test_query_count_is_exact_and_the_budget_is_respected():
    r, oracle, calls = run_disc(CENTER + torch.tensor([0.5, 0.5]))
    assert r.queries == oracle.queries == sum(len(c) for c in calls)
    assert r.queries == (CFG.points + 1) * sum(len(c) == CFG.points for c in calls)
    budget = brepmi.Config(radius=0.05, clamp=5.0, max_iters_at_radius=10 ** 6, max_queries=33 * 7 + 32)
    r, oracle, calls = run_disc(CENTER, budget)
    assert r.stop == "budget" and r.queries == 33 * 7 == oracle.queries


def test_growth_threshold_and_radius_step_follow_the_official_rule():
    # everything in class: every iteration grows (>= 29 of 32), steps have zero length
    cfg = brepmi.Config(radius=2.0, max_iters_at_radius=3, max_queries=33 * 5)
    r = brepmi.attack(identity, brepmi.Oracle(lambda x: np.zeros(len(x), dtype=int)), np.zeros(2, np.float32),
                      0, cfg, torch.Generator().manual_seed(0))
    assert r.growths == 5 and r.iterations == 0 and r.stop == "budget"
    assert r.radius == pytest.approx(2.0 * 1.3 ** 5) and np.array_equal(r.reconstruction, np.zeros(2))
    # exactly 28 of 32 in class: never grows; all out of class: no start label -> rejected steps only
    labels = lambda x: (np.arange(len(x)) >= 28).astype(int) if len(x) == 32 else np.zeros(len(x), int)  # noqa: E731
    r = brepmi.attack(identity, brepmi.Oracle(labels), np.zeros(2, np.float32), 0,
                      brepmi.Config(max_iters_at_radius=4), torch.Generator().manual_seed(0))
    assert r.growths == 0 and r.reconstruction is None and r.iterations == 4 and r.radius == 2.0
    # step = min(r / 3, 3) times mean(-1[out] u_i) / r with 4 of 32 |u_i| = r out: at most (2 / 3) * 4 / 32
    steps = np.linalg.norm(np.diff(np.stack(r.path), axis=0), axis=1)
    assert len(steps) == 4 and (steps > 0).all() and (steps <= 2 / 3 * 4 / 32 + 1e-6).all()


def test_initial_latents_are_the_first_in_class_draws():
    oracle = brepmi.Oracle(lambda x: (x[:, 0] > 0).long().numpy())
    cfg = brepmi.Config(init_batch=8)
    found = brepmi.initial_latents(identity, oracle, [0, 1], 3, 2, cfg, torch.Generator().manual_seed(1))
    gen = torch.Generator().manual_seed(1)
    z = torch.cat([torch.randn(8, 2, generator=gen) for _ in range(oracle.queries // 8)]).clamp(-1.5, 1.5).numpy()
    assert np.array_equal(np.stack(found[1]), z[z[:, 0] > 0][:3])
    assert np.array_equal(np.stack(found[0]), z[z[:, 0] <= 0][:3])
    assert (z[:-8, 0] > 0).sum() < 3 or (z[:-8, 0] <= 0).sum() < 3  # it stopped at the first batch that sufficed
    assert all(np.abs(v).max() <= 1.5 for vs in found.values() for v in vs)


def test_attacks_in_lockstep_take_the_steps_each_takes_alone():
    starts = [CENTER + torch.tensor([0.9, 0.0]), CENTER + torch.tensor([0.0, -0.8]), CENTER + torch.tensor([3.0, 0.0])]
    targets = [0, 0, 1]  # the third attacks the outside of the disc
    cfg = brepmi.Config(radius=0.05, clamp=5.0, max_iters_at_radius=15, max_queries=33 * 60)
    oracle = brepmi.Oracle(disc_labels)
    together = brepmi.attacks(identity, oracle, [s.numpy() for s in starts], targets, cfg,
                              [torch.Generator().manual_seed(k) for k in range(3)])
    for k, (start, c) in enumerate(zip(starts, targets)):
        alone = brepmi.attack(identity, brepmi.Oracle(disc_labels), start.numpy(), c, cfg,
                              torch.Generator().manual_seed(k))
        mine = together[k]
        assert (mine.growths, mine.iterations, mine.rejected, mine.queries, mine.stop) == \
               (alone.growths, alone.iterations, alone.rejected, alone.queries, alone.stop)
        assert np.array_equal(np.stack(mine.path), np.stack(alone.path))
    assert oracle.queries == sum(r.queries for r in together)
    assert len({r.queries for r in together}) > 1  # they stopped at different rounds
