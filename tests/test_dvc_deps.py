"""``dvc.yaml`` cannot drift from the code: every module a stage imports (its import closure,
computed from the source) must be covered by that stage's ``deps``, so a change that alters a
stage's results always reruns it."""
import pytest
import yaml

from tests.helpers import ROOT, closure, module_file

def stages() -> dict[str, tuple[str, list[str]]]:
    """Stage name -> (entry module, deps) from dvc.yaml (a ``matrix`` stage counts once)."""
    out = {}
    for name, stage in yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"].items():
        words = stage["cmd"].split()
        out[name] = (words[words.index("-m") + 1], stage["deps"])
    return out


def uncovered(files: set[str], deps: list[str]) -> list[str]:
    return sorted(f for f in files if not any(f == d or f.startswith(d.rstrip("/") + "/") for d in deps))


@pytest.mark.parametrize("stage", sorted(stages()))
def test_every_imported_module_is_a_dependency_of_the_stage(stage):
    entry, deps = stages()[stage]
    assert module_file(entry) is not None, f"{stage}: cmd runs {entry}, which does not exist"
    missing = uncovered(closure(entry), deps)
    assert not missing, f"dvc.yaml: stage {stage} imports {missing} but does not list them (or their folder) in deps"


def test_the_closure_follows_relative_imports_and_parent_packages():
    files = closure("stages.invert")
    assert {"pipeline/__init__.py", "pipeline/core/cli.py", "pipeline/core/training.py",  # training: via vision.nets
            "pipeline/smoothing/engine.py", "pipeline/attacks/brepmi.py", "stages/invert.py"} <= files
    assert "pipeline/tabular/ape.py" not in files
    assert uncovered(files, ["pipeline", "stages"]) == []
    assert uncovered(files, ["pipeline/core", "pipeline/smoothing", "stages"]) != []
