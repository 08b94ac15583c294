"""The same params give the same bytes: a second, independent ``dvc repro`` of the small pipeline,
in another folder (under pytest-xdist at the same time as the shared build is made on another
worker), writes every metrics, report, results and model file byte for byte as that build (``built``,
which no test modifies) holds it."""
from tests.conftest import build

OUTPUTS = ("metrics", "reports", "results", "models")


def test_two_independent_builds_write_byte_identical_metrics_results_and_models(request, tmp_path):
    again = tmp_path / "again"
    again.mkdir()
    build(again)
    repo = request.getfixturevalue("built")  # after the build here: the two can run side by side; pristine
    files = sorted(p.relative_to(repo) for d in OUTPUTS for p in (repo / d).rglob("*") if p.is_file())
    assert len(files) > 8
    assert sorted(p.relative_to(again) for d in OUTPUTS for p in (again / d).rglob("*") if p.is_file()) == files
    assert [f for f in files if (repo / f).read_bytes() != (again / f).read_bytes()] == []
