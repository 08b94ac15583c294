"""Invalid params give one clear message naming the file, the key and the fix."""
import pytest
import yaml

from pipeline.errors import PipelineError
from pipeline.params import load_params


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
