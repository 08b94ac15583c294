"""The image loaders (digits, an identity folder, CelebA's layout) and the networks: shapes,
the deep architectures (``target.arch`` / ``evaluator.arch``), their training and checkpoints."""
import functools

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


@pytest.fixture
def one_thread():
    """One torch thread for the deep networks, as the training stages run: on a small shared
    machine torch's thread team spins against other processes (several times slower)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@functools.lru_cache(maxsize=None)
def deep(arch: str, channels: int, size: int, classes: int) -> torch.nn.Sequential:
    """One built (eval-mode, never trained) deep network per argument set: a build takes seconds."""
    torch.manual_seed(0)
    return nets.build("target", arch, channels, size, classes).eval()


@pytest.mark.parametrize("arch", sorted(nets.DEEP))
@pytest.mark.parametrize("size", [8, 16, 64])
@pytest.mark.usefixtures("one_thread")
def test_the_deep_architectures_give_logits_and_a_512_d_embedding_at_every_size(arch, size):
    channels, classes = (3, 1000) if size == 64 else (1, 5)
    model = deep(arch, channels, size, classes)
    x = torch.rand(4, channels, size, size)
    with torch.inference_mode():
        assert model(x).shape == (4, classes) and model[:-1](x).shape == (4, nets.EMBEDDING)
    assert isinstance(model[-1], torch.nn.Linear) and model[-1].out_features == classes  # what the stages read
    assert len(model.body) == sum(nets.IR50_DEPTHS) == 24


@pytest.mark.usefixtures("one_thread")
def test_the_deep_architectures_have_the_ir_50_size_and_se_adds_its_gates():
    counts = {arch: sum(p.numel() for p in deep(arch, 3, 64, 1000).parameters()) for arch in nets.DEEP}
    # the IR-50 body (about 31M) + Linear(512 * 4 * 4, 512) + the 1000-class head (the counts printed in docs/deviations.md)
    assert counts == {"facenet64": 35_448_872, "irse50": 35_671_592}
    gates = sum(d * 2 * w * (w // nets.SE_REDUCTION) for d, w in zip(nets.IR50_DEPTHS, nets.IR50_WIDTHS))
    assert counts["irse50"] - counts["facenet64"] == gates == 222_720
    assert sum(isinstance(m, nets.SqueezeExcitation) for m in deep("irse50", 3, 64, 1000).modules()) == 24
    assert not any(isinstance(m, nets.SqueezeExcitation) for m in deep("facenet64", 3, 64, 1000).modules())


def test_the_small_architecture_is_the_kinds_own_network_draw_for_draw():
    """arch small builds what ``target`` / ``evaluator`` build, with the same random draws and
    state-dict keys (the default checkpoints load, the default outputs stay the same)."""
    for kind, own in nets.BUILDERS.items():
        torch.manual_seed(3)
        a = nets.build(kind, "small", 1, 16, 5).state_dict()
        torch.manual_seed(3)
        b = own(1, 16, 5).state_dict()
        assert list(a) == list(b) and all(torch.equal(a[k], b[k]) for k in a)
    assert nets.ARCHS == ("small", "facenet64", "irse50")
    with pytest.raises(ValueError, match="architecture"):
        nets.build("target", "resnet", 1, 16, 5)


@pytest.mark.usefixtures("one_thread")
def test_a_deep_target_trains_saves_and_loads_through_load_network(tmp_path):
    from pipeline.core.io import save_state

    rng = np.random.default_rng(0)
    y = np.arange(9) % 2  # 9 records, batch 4: each epoch ends on a lone record, which batch norm cannot train on
    x = (rng.random((9, 1, 16, 16)) * 0.2 + y[:, None, None, None] * 0.6).astype(np.float32)
    cfg = {"arch": "facenet64", "epochs": 2, "batch_size": 4, "lr": 0.001}  # 4 steps: a 31M-parameter net
    model, history = nets.train_classifier("target", x, y, 2, cfg, 0, progress=False)
    assert history[-1]["loss"] < history[0]["loss"]
    save_state(tmp_path / "target.pt", model)
    again = nets.load_network("target", tmp_path / "target.pt", [1, 16, 16], 2, "facenet64")
    probe = torch.from_numpy(x)
    with torch.inference_mode():
        assert torch.equal(model.eval()(probe), again(probe))  # batch norm's running statistics included
    with pytest.raises(RuntimeError):  # another architecture's checkpoint does not load
        nets.load_network("target", tmp_path / "target.pt", [1, 16, 16], 2)


@pytest.mark.usefixtures("one_thread")
def test_mid_and_dp_sgd_take_the_deep_targets_features():
    from pipeline.defenses.dpsgd import private_ready
    from pipeline.defenses.mid import build_mid

    torch.manual_seed(0)
    vib = build_mid(1, 16, 5, 8, "irse50")
    assert vib.statistics.in_features == nets.EMBEDDING and vib.eval()(torch.rand(4, 1, 16, 16)).shape == (4, 5)
    private = private_ready(vib.features)
    assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in private.modules())
    assert any(isinstance(m, torch.nn.GroupNorm) for m in private.modules())
    small = nets.target(1, 16, 5)
    assert private_ready(small) is small  # the small target trains as built
