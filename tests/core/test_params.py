"""Invalid params give one clear message naming the file, the key and the fix."""
from pathlib import Path

import numpy as np
import pytest
import yaml

from pipeline.core.errors import PipelineError
from pipeline.core.params import load_params


def write(tmp_path, edit):
    params = yaml.safe_load(open("params.yaml"))
    edit(params)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def test_defaults_are_valid():
    assert load_params()["smoothing"]["alpha"] == 0.01


@pytest.mark.parametrize("edit, key", [
    (lambda p: p["smoothing"].update(sigmas=[1.0, 0.0]), "smoothing.sigmas"),
    (lambda p: p["smoothing"].update(sigmas=[-1]), "smoothing.sigmas"),
    (lambda p: p["smoothing"].update(alpha=1.0), "smoothing.alpha"),
    (lambda p: p["smoothing"].update(alpha=0), "smoothing.alpha"),
    (lambda p: p["smoothing"].update(n=0), "smoothing.n"),
    (lambda p: p["smoothing"].update(n0=2.5), "smoothing.n0"),
    (lambda p: p["smoothing"].update(noise="keyed"), "smoothing.noise"),
    (lambda p: p["ape"]["ablation"].update(alphas=[0.01, 1.5]), "ape.ablation.alphas"),
    (lambda p: p["data"].update(source="s3"), "data.source"),
    (lambda p: p["smoothing"].update(sigma=1.0), "smoothing.sigma"),
    (lambda p: p.update(smothing={}), "smothing"),
    (lambda p: p["train"].pop("l1"), "train.l1"),
    (lambda p: p["images"].update(size=24), "images.size"),
    (lambda p: p["images"].update(source="mnist"), "images.source"),
    (lambda p: p["inversion"].update(sigmas=[0.01, 0]), "inversion.sigmas"),
    (lambda p: p["inversion"].update(ns=[10, 0]), "inversion.ns"),
    (lambda p: p["brepmi"].update(grow_at=33), "brepmi.grow_at"),
    (lambda p: p["brepmi"].update(targets=11), "brepmi.targets"),
    (lambda p: p["brepmi"].update(expansion=1.0), "brepmi.expansion"),
    (lambda p: p["target"].update(arch="resnet18"), "target.arch"),
    (lambda p: p["evaluator"].update(arch="FaceNet"), "evaluator.arch"),
    (lambda p: p["target"].pop("arch"), "target.arch"),
    (lambda p: (p["target"].update(arch="irse50"), p["evaluator"].update(arch="irse50")), "evaluator.arch"),
])
def test_bad_values_name_the_file_key_and_fix(tmp_path, edit, key):
    path = write(tmp_path, edit)
    with pytest.raises(PipelineError) as err:
        load_params(path)
    message = str(err.value)
    assert str(path) in message and f"'{key}'" in message and "fix:" in message


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(PipelineError, match="not found"):
        load_params(tmp_path / "params.yaml")
    (tmp_path / "params.yaml").write_text("seed: [1,\n")
    with pytest.raises(PipelineError, match="not valid YAML"):
        load_params(tmp_path / "params.yaml")


def test_official_profile_becomes_valid_dvc_overrides():
    from pipeline.core.profile import overrides

    args = overrides("profiles/official.yaml")
    pairs = dict(a.split("=", 1) for a in args[1::2])
    assert set(args[::2]) == {"-S"} and all(" " not in a for a in args)
    assert pairs["inversion.sigmas"] == "[0.01,0.02,0.03,0.05,0.07,0.1]" and pairs["images.size"] == "64"
    assert pairs["brepmi.max_iters_at_radius"] == "1000" and pairs["images.private"] == "1000"


def test_a_profile_with_a_bad_value_is_refused(tmp_path):
    from pipeline.core.profile import overrides

    bad = tmp_path / "bad.yaml"
    bad.write_text("brepmi:\n  points: 0\n")
    with pytest.raises(PipelineError, match="brepmi.points"):
        overrides(bad)


def test_the_celeba_shaped_synthetic_profile_is_valid_and_draws_64x64_rgb_identities():
    from pipeline.core.profile import apply
    from pipeline.vision.identities import identities

    _, params = apply("profiles/official_synthetic.yaml")
    images = params["images"]
    assert (images["source"], images["size"], images["channels"], images["private"]) == ("synthetic", 64, 3, 1000)
    assert params["brepmi"]["targets"] == 100 and params["brepmi"]["max_queries"] >= 10 ** 9
    x, y = identities(images["private"], 2, images["channels"], images["size"], params["seed"])
    assert x.shape == (2000, 3, 64, 64) and x.dtype == np.float32 and set(np.unique(y)) == set(range(1000))
    assert 0 <= x.min() and x.max() <= 1
    same, other = np.linalg.norm(x[0] - x[1]), np.linalg.norm(x[0] - x[2])  # images of identity 0 vs of 1
    assert same < other


@pytest.mark.parametrize("profile", sorted(p.name for p in (Path(__file__).resolve().parents[2] / "profiles").glob("*.yaml")))
def test_every_profile_applies_to_valid_params(profile):
    from pipeline.core.profile import apply

    changes, params = apply(f"profiles/{profile}")
    assert changes and params["n_effect"]["images"]["sigma"] in params["inversion"]["sigmas"]


def test_the_image_n_grid_must_sit_on_an_inversion_sigma(tmp_path):
    params = yaml.safe_load(open("params.yaml"))
    params["n_effect"]["images"]["sigma"] = 0.25
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    with pytest.raises(PipelineError, match="n_effect.images.sigma"):
        load_params(tmp_path / "params.yaml")


def test_an_unknown_architecture_names_the_key_and_the_choices(tmp_path):
    from pipeline.core.params import ARCHITECTURES
    from pipeline.vision.nets import ARCHS

    assert ARCHITECTURES == ARCHS  # the params' choices are the networks there are
    with pytest.raises(PipelineError) as err:
        load_params(write(tmp_path, lambda p: p["target"].update(arch="facenet")))
    assert "'target.arch' = 'facenet'" in str(err.value) and "small, facenet64, irse50" in str(err.value)
    deep_target = write(tmp_path, lambda p: p["target"].update(arch="facenet64"))  # any other evaluator is fine
    assert (load_params(deep_target)["target"]["arch"], load_params(deep_target)["evaluator"]["arch"]) == ("facenet64",
                                                                                                         "small")


@pytest.mark.parametrize("profile", ["official.yaml", "official_synthetic.yaml"])
def test_the_official_profiles_select_the_papers_architectures(profile):
    from pipeline.core.profile import apply

    _, params = apply(f"profiles/{profile}")
    assert (params["target"]["arch"], params["evaluator"]["arch"]) == ("facenet64", "irse50")
