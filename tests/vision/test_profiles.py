"""The image profiles run: ``profiles/faces.yaml`` on a folder of face-like RGB images laid out as
root/<identity>/<images>, through the library the stages call (images, target, evaluator, MID,
prior, BREP-MI grid), on budgets small enough for a test."""
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipeline.core.profile import apply
from pipeline.defenses.mid import train_mid
from pipeline.experiments.inversion import run_grid
from pipeline.vision import gan, images, nets
from pipeline.vision.identities import identities

ROOT = Path(__file__).resolve().parents[2]


def face_folder(root: Path, count: int, per_identity: int, size: int) -> None:
    x, y = identities(count, per_identity, 3, size, seed=11)
    for i, (image, k) in enumerate(zip(x, y)):
        folder = root / f"person_{k:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray((image.transpose(1, 2, 0) * 255).round().astype(np.uint8)).save(folder / f"{i}.png")


def test_faces_profile_reads_a_face_folder_and_runs_the_inversion_grid(tmp_path):
    _, params = apply(ROOT / "profiles/faces.yaml", ROOT / "params.yaml")
    cfg = params["images"]
    assert (cfg["source"], cfg["size"], cfg["channels"]) == ("folder", 32, 3)
    assert params["brepmi"]["targets"] * params["brepmi"]["restarts"] >= 40
    face_folder(tmp_path / "faces", 24, 8, 40)  # 40x40 files: the loader resizes them to the profile's 32
    arrays, meta = images.load_images({**cfg, "root": str(tmp_path / "faces")}, params["seed"])
    assert meta["shape"] == [3, 32, 32] and len(meta["classes"]) == cfg["private"] == 20
    assert meta["public_x_count"] == 4 * 8 and all(c.startswith("person_") for c in meta["classes"])
    assert meta["train_x_count"] == 20 * 4  # train_fraction 0.5 of the 8 images left after the test split
    # small budgets, the profile's data and attack layout
    params["brepmi"].update(max_queries=33 * 2, init_batch=32, max_init_batches=2, targets=10, restarts=1)
    params["inversion"].update(sigmas=[0.1], ns=[4])
    params["n_effect"]["images"].update(sigma=0.1, ns=[4])
    params["gan"].update(steps=2, batch_size=8, critic_iters=1)
    params["mid"].update(betas=[0.01], epochs=1)
    params["randomized_response"].update(epsilons=[2])
    fit = {"epochs": 2, "batch_size": 16, "lr": 0.001}
    classes = len(meta["classes"])
    target, _ = nets.train_classifier("target", arrays["train_x"], arrays["train_y"], classes, fit, 0, progress=False)
    evaluator, _ = nets.train_classifier("evaluator", arrays["shadow_x"], arrays["shadow_y"], classes, fit, 1,
                                         progress=False)
    mid, _ = train_mid(arrays["train_x"], arrays["train_y"], classes, params["mid"], 0.01, 0, progress=False)
    G, _ = gan.train_gan(arrays["public_x"], params["gan"], 0, progress=False)
    metrics, attacks, figure = run_grid(G.eval(), target.eval(), {0.01: mid.eval()}, evaluator.eval(), arrays,
                                        meta["classes"], params, progress=False)
    assert set(metrics) == {"base", "rp.sigma_0_1.n_4", "mid.beta_0_01", "rr.epsilon_2.fresh", "rr.epsilon_2.keyed",
                            "held_out"} and len(attacks) == 5 * 10
    assert metrics["held_out"]["images"] == 10 * 2  # the attacked identities' test images
    for m in (metrics[k] for k in ("base", "rp.sigma_0_1.n_4", "mid.beta_0_01")):
        assert m["attacks"] == 10 and 0 <= m["asr_low"] <= m["asr"] <= m["asr_high"] <= 1
        assert "asr_top5" in m and m["chance"] == pytest.approx(1 / 20)
        assert m["no_start"] + m["no_reconstruction"] + m["reconstructions"] == 10
    assert figure["train_x"].shape[1:] == (3, 32, 32)
