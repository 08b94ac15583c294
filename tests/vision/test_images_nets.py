"""The image loaders (digits, an identity folder, CelebA's layout) and the networks' shapes."""
import numpy as np
import pytest
import torch

from pipeline.core.errors import PipelineError
from pipeline.vision import images, nets


def test_digits_split_is_private_public_and_in_unit_range():
    arrays, meta = images.load_images({"source": "digits", "size": 8, "private": 5, "channels": 1,
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
    arrays, meta = images.load_images(cfg, seed=7)
    assert meta["shape"] == [3, 8, 8] and len(meta["classes"]) == 2 and meta["public_x_count"] == 6
    assert len(arrays["train_x"]) == 4 and len(arrays["test_x"]) == 2
    for k, name in enumerate(meta["classes"]):  # pixel value tells the identity: labels are right
        value = 60 * ["ann", "bob", "cat", "dan"].index(name) / 255
        assert np.allclose(arrays["train_x"][arrays["train_y"] == k], value, atol=1e-6)
    assert images.load_images(cfg, seed=7)[1]["classes"] == meta["classes"]
    with pytest.raises(PipelineError, match="images.root"):
        images.load_images({**cfg, "root": str(tmp_path / "nowhere")}, 0)


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
    arrays, meta = images.load_images(cfg, 0)
    assert meta["classes"] == ["9", "2", "7"] and meta["public_x_count"] == 1  # ties: lower id first
    assert np.allclose(arrays["train_x"], 200 / 255, atol=0.02)  # JPEG: near, not exact
    (tmp_path / "identity_CelebA.txt").write_text("000.jpg\n")
    with pytest.raises(PipelineError, match="line 1"):
        images.load_images(cfg, 0)


@pytest.mark.parametrize("size", [8, 16, 32])
def test_network_shapes(size):
    z = torch.randn(3, 100)
    g = nets.generator(1, size, 100).eval()
    x = g(z)
    assert x.shape == (3, 1, size, size) and 0 <= x.min() and x.max() <= 1
    assert nets.critic(1, size)(x).shape == (3, 1)
    assert nets.target(1, size, 5)(x).shape == nets.evaluator(1, size, 5).eval()(x).shape == (3, 5)


def test_synthetic_identities_are_seeded_and_an_identity_is_nearer_itself_than_any_other(monkeypatch):
    from pipeline.vision import identities as module
    from pipeline.vision.identities import identities

    x, y = identities(30, 40, 1, 16, seed=4)
    again, _ = identities(30, 40, 1, 16, seed=4)
    other, _ = identities(30, 40, 1, 16, seed=5)
    assert x.shape == (1200, 1, 16, 16) and x.dtype == np.float32 and 0 <= x.min() and x.max() <= 1
    assert np.array_equal(x, again) and not np.array_equal(x, other)
    assert np.array_equal(y, np.repeat(np.arange(30), 40))

    def nearer_own(images):
        f = torch.as_tensor(images).flatten(1)
        d = torch.cdist(f, f).numpy()
        np.fill_diagonal(d, np.inf)
        same = np.where(y[:, None] == y[None], d, np.inf).min(axis=1)
        different = np.where(y[:, None] != y[None], d, np.inf).min(axis=1)
        return (same < different).mean()
    monkeypatch.setattr(module, "ATYPICAL", 0.0)
    typical, _ = identities(30, 40, 1, 16, seed=4)
    assert nearer_own(typical) > 0.97  # what "nearer a private image than any public one" relies on
    occluded = (np.abs(x - typical) > 0).reshape(len(x), -1).mean(1) > 0.15  # a quarter of the pixels replaced
    assert 0.15 < occluded.mean() < 0.25 and nearer_own(x) < nearer_own(typical)
    rgb, _ = identities(3, 2, 3, 8, seed=0)
    assert rgb.shape == (6, 3, 8, 8)


def test_synthetic_source_splits_the_first_identities_off_as_private():
    cfg = {"source": "synthetic", "identities": 12, "per_identity": 20, "size": 8, "channels": 1, "private": 4,
           "test_fraction": 0.2, "train_fraction": 0.25, "root": ""}
    arrays, meta = images.load_images(cfg, seed=0)
    assert meta["classes"] == ["id000", "id001", "id002", "id003"] and meta["shape"] == [1, 8, 8]
    assert (meta["train_x_count"], meta["test_x_count"], meta["public_x_count"]) == (20, 16, 160)


def test_the_inference_max_pool_gives_torchs_values_bit_for_bit_and_trains_as_torch_does():
    torch.manual_seed(0)
    for build, shape in ((nets.target, (300, 1, 16, 16)), (nets.evaluator, (300, 3, 8, 8))):
        model = build(shape[1], shape[2], 5).eval()
        plain = torch.nn.Sequential(*(torch.nn.MaxPool2d(2) if isinstance(m, nets.MaxPool) else m for m in model))
        x = torch.randn(shape)
        with torch.inference_mode():
            assert torch.equal(model(x), plain(x))
        x.requires_grad_(True)
        grads = [torch.autograd.grad(m(x).square().sum(), x)[0] for m in (model, plain)]
        assert torch.equal(*grads)  # with gradients: torch's own kernel
