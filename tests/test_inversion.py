"""BREP-MI on a problem with a known answer, exact query counts, the majority-vote defense, the
image loaders and the networks' shapes."""
import numpy as np
import pytest
import torch
from torch import nn

from pipeline import brepmi, images, inversion, nets
from pipeline.errors import PipelineError

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


class Threshold(nn.Module):
    """Class 1 iff the mean pixel exceeds 0.5: the smoothed vote has a closed form."""

    def forward(self, x):
        m = x.flatten(1).mean(dim=1)
        return torch.stack([0.5 - m, m - 0.5], dim=1)


def test_majority_vote_defense_matches_the_smoothed_probability_and_uses_fresh_noise():
    d, sigma, n = 16, 0.4, 100
    base = Threshold()
    labels = inversion.labeller({"target": base}, {"sigma": sigma, "n": n}, 2, seed=3, chunk=500)
    # the mean pixel's noise is N(0, sigma^2 / d): offset 0.05 -> P(class 1) = Phi(0.05 / 0.1) = 0.69
    x = torch.full((400, 1, 4, 4), 0.55)
    votes = labels(x)
    p1 = 0.6914625  # the vote of n = 100 draws is 1 w.p. P(Binomial(100, p1) > 50) ~= 0.9999
    assert votes.mean() > 0.99 and p1 > 0.5
    near = torch.full((2000, 1, 4, 4), 0.505)  # P(class 1) = Phi(0.05) = 0.52: vote is a coin close to
    first, second = labels(near), labels(near)  # P(Bin(100, .52) > 50) = 0.62
    assert 0.55 < first.mean() < 0.69 and not np.array_equal(first, second)  # fresh noise per query
    assert np.array_equal(inversion.labeller({"target": base}, {"name": "base"}, 2, 0, 1)(x), np.ones(400))


def test_mid_labels_are_sampled_per_query_and_reproducible_from_the_seed():
    torch.manual_seed(0)
    model = nets.mid(1, 8, 3, k=16)
    with torch.no_grad():
        model.statistics.bias[16:] = 8.0  # std = softplus(8 - 5) ~= 3: labels vary between samples
    x = torch.rand(300, 1, 8, 8)
    models, config = {"mid": {0.01: model}}, {"beta": 0.01}
    first = inversion.labeller(models, config, 3, seed=5, chunk=1)
    a, b = first(x), first(x)
    assert not np.array_equal(a, b)  # a new sample for every query
    again = inversion.labeller(models, config, 3, seed=5, chunk=1)
    assert np.array_equal(again(x), a) and np.array_equal(again(x), b)


def test_digits_split_is_private_public_and_in_unit_range():
    arrays, meta = images.load({"source": "digits", "size": 8, "private": 5, "channels": 1,
                                "test_fraction": 0.2, "train_fraction": 0.05, "root": ""}, 0)
    assert meta["classes"] == ["0", "1", "2", "3", "4"] and meta["shape"] == [1, 8, 8]
    assert set(np.unique(arrays["train_y"])) == set(range(5)) == set(np.unique(arrays["test_y"]))
    counts = {k: np.bincount(arrays[f"{k}_y"]) for k in ("train", "test", "shadow")}
    assert len(arrays["train_x"]) + len(arrays["test_x"]) + len(arrays["shadow_x"]) == 901
    assert len(arrays["public_x"]) == 896 and all(counts["train"] == 9)
    assert np.array_equal(counts["test"], np.round(0.2 * (counts["train"] + counts["test"] + counts["shadow"])))
    seen = {a.tobytes() for a in arrays["train_x"]}  # the three parts are disjoint
    assert not seen & {a.tobytes() for a in np.concatenate([arrays["test_x"], arrays["shadow_x"]])}
    assert all(0 <= a.min() and a.max() <= 1 for k, a in arrays.items() if k.endswith("_x"))
    assert images.resize(arrays["train_x"][:3], 16).shape == (3, 1, 16, 16)


def _write(path, value, size=(10, 12), mode="L"):
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, value if mode == "L" else (value,) * 3).save(path)


def test_folder_loader_reads_identities_and_splits_by_seed(tmp_path):
    for i, name in enumerate(["ann", "bob", "cat", "dan"]):
        for j in range(3):
            _write(tmp_path / name / f"{j}.png", 60 * i, mode="RGB")
    (tmp_path / "bob" / "notes.txt").write_text("not an image")
    cfg = {"source": "folder", "root": str(tmp_path), "size": 8, "private": 2, "channels": 3, "test_fraction": 0.34,
           "train_fraction": 0.66}
    arrays, meta = images.load(cfg, seed=7)
    assert meta["shape"] == [3, 8, 8] and len(meta["classes"]) == 2 and meta["public_x_count"] == 6
    assert len(arrays["train_x"]) == 4 and len(arrays["test_x"]) == 2
    for k, name in enumerate(meta["classes"]):  # pixel value tells the identity: labels are right
        value = 60 * ["ann", "bob", "cat", "dan"].index(name) / 255
        assert np.allclose(arrays["train_x"][arrays["train_y"] == k], value, atol=1e-6)
    assert images.load(cfg, seed=7)[1]["classes"] == meta["classes"]
    with pytest.raises(PipelineError, match="images.root"):
        images.load({**cfg, "root": str(tmp_path / "nowhere")}, 0)


def test_celeba_loader_crops_centre_and_picks_most_frequent_identities(tmp_path):
    from PIL import Image

    lines = []
    (tmp_path / "img_align_celeba").mkdir()
    img = np.zeros((218, 178), dtype=np.uint8)
    img[55:163, 35:143] = 200  # the 108x108 centre crop is uniform 200, the border 0
    for ident, count in [(5, 1), (9, 3), (2, 2), (7, 2)]:
        for j in range(count):
            name = f"{ident:03d}{j}.jpg"
            Image.fromarray(img).save(tmp_path / "img_align_celeba" / name)
            lines.append(f"{name} {ident}")
    (tmp_path / "identity_CelebA.txt").write_text("\n".join(lines) + "\n")
    cfg = {"source": "celeba", "root": str(tmp_path), "size": 8, "private": 3, "channels": 1, "test_fraction": 0.5,
           "train_fraction": 0.5}
    arrays, meta = images.load(cfg, 0)
    assert meta["classes"] == ["9", "2", "7"] and meta["public_x_count"] == 1  # ties: lower id first
    assert np.allclose(arrays["train_x"], 200 / 255, atol=0.02)  # JPEG: near, not exact
    (tmp_path / "identity_CelebA.txt").write_text("000.jpg\n")
    with pytest.raises(PipelineError, match="line 1"):
        images.load(cfg, 0)


@pytest.mark.parametrize("size", [8, 16, 32])
def test_network_shapes(size):
    z = torch.randn(3, 100)
    g = nets.generator(1, size, 100).eval()
    x = g(z)
    assert x.shape == (3, 1, size, size) and 0 <= x.min() and x.max() <= 1
    assert nets.critic(1, size)(x).shape == (3, 1)
    assert nets.target(1, size, 5)(x).shape == nets.evaluator(1, size, 5).eval()(x).shape == (3, 5)


def _grid(compute):
    torch.manual_seed(0)
    G, target, evaluator = nets.generator(1, 8, 100).eval(), nets.target(1, 8, 3), nets.evaluator(1, 8, 3).eval()
    models = {"target": target, "mid": {0.01: nets.mid(1, 8, 3, k=8).eval()}}
    cfg = brepmi.Config(max_queries=33 * 3, init_batch=16, max_init_batches=2)
    configs = inversion.configs([0.3], [5], [0.01])
    return [inversion.run(G, models, evaluator, configs, cfg, 3, 2, 100, 3, seed=1, chunk=chunk, compute=compute,
                          progress=False) for chunk in (7, 5000)]


def test_the_grid_is_reproducible_and_independent_of_chunk_size_and_task_order(monkeypatch):
    local = {"backend": "local", "chunk": 1}
    (a, b) = _grid(local)
    assert [c[0] for c in a] == [c[0] for c in b] and all(np.array_equal(x[1], y[1]) for x, y in zip(a, b))
    records = [r for c in a for r in c[0]]
    assert len(a) == 3 and any(r["found_start"] for r in records) and all(r["queries"] <= 99 for r in records)
    # tasks run in reverse order (as on a cluster, in any order): the same records and images
    from pipeline import compute

    def reverse(fn, chunks, compute, shared, bar):
        results = {i: fn(start, stop, **shared) for i, (start, stop) in reversed(list(enumerate(chunks)))}
        yield from (results[i] for i in range(len(chunks)))
    monkeypatch.setattr(compute, "_local_map", reverse)
    (c, _) = _grid(local)
    assert [x[0] for x in c] == [x[0] for x in a] and all(np.array_equal(x[1], y[1]) for x, y in zip(a, c))
    assert [x[2] for x in c] == [x[2] for x in a]