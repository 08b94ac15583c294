"""The metrics schema (``pipeline.core.metrics``): identifier keys, nesting, labels."""
import json

import pytest

from pipeline.core.errors import PipelineError
from pipeline.core.metrics import check, configurations, label, nest, read_metrics, token, write_metrics


@pytest.mark.parametrize("name,value,key", [("sigma", 0.1, "sigma_0_1"), ("sigma", 1.0, "sigma_1"),
                                            ("n", 100, "n_100"), ("beta", 0.001, "beta_0_001"),
                                            ("alpha", 1e-5, "alpha_1em05")])
def test_tokens_are_identifiers_and_label_reads_them_back(name, value, key):
    assert token(name, value) == key
    check({key: 1}, "x")
    assert float(label(key).split("=")[1]) == value


def test_label_names_a_configuration_path():
    assert label("rp.sigma_0_1.n_100") == "RP, σ=0.1, N=100"
    assert label("ablation.sigma_3.n_100.alpha_0_01") == "ablation, σ=3, N=100, α=0.01"
    assert label("mid.beta_0_02") == "MID, β=0.02" and label("output_perturbation") == "output perturbation"


@pytest.mark.parametrize("bad", ["sigma=1", "mid,beta=0.001", "Base", "sigma_1.", "avg radius", "1st", "", "a-b"])
def test_check_rejects_every_key_that_is_not_a_lower_case_identifier(bad):
    with pytest.raises(PipelineError, match="metrics/x.json.*lower-case identifier"):
        check({"ok": {"fine_1": {bad: 0.5}}}, "metrics/x.json")


def test_nest_and_configurations_invert_each_other():
    flat = {"base": {"asr": 0.9}, "rp.sigma_0_1.n_10": {"asr": 0.2}, "rp.sigma_0_1.n_100": {"asr": 0.1},
            "mid.beta_0_01": {"asr": 0.5}, "threshold": 30.0}
    tree = nest(flat)
    assert tree["rp"]["sigma_0_1"]["n_100"] == {"asr": 0.1} and tree["threshold"] == 30.0
    assert configurations(tree, "asr") == {k: v for k, v in flat.items() if k != "threshold"}


def test_write_metrics_refuses_a_bad_key_and_writes_nothing(tmp_path):
    path = tmp_path / "m.json"
    with pytest.raises(PipelineError, match="'inversion.sigma=1,N=10'"):
        write_metrics(str(path), "inversion", {"sigma=1,N=10": {"asr": 0.1}})
    assert not path.exists()
    tree = write_metrics(str(path), "inversion", {"rp.sigma_0_1.n_10": {"asr": 0.1}})
    assert json.loads(path.read_text()) == tree == {"inversion": {"rp": {"sigma_0_1": {"n_10": {"asr": 0.1}}}}}
    assert read_metrics(str(path), "inversion") == tree["inversion"]
    with pytest.raises(PipelineError, match="no 'table1' metrics"):
        read_metrics(str(path), "table1")
