"""``dvc.yaml`` cannot drift from the code: every module a stage imports (its import closure,
computed from the source) must be covered by that stage's ``deps``, so a change that alters a
stage's results always reruns it."""
import ast

import pytest
import yaml

from tests.helpers import ROOT

OWN = ("pipeline", "stages")  # the project's packages; everything else is an installed library


def module_file(name: str):
    """The file of the project module ``name`` (a package's ``__init__.py``), or None."""
    path = ROOT.joinpath(*name.split("."))
    for candidate in (path.with_suffix(".py"), path / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def imported(name: str) -> set[str]:
    """The project modules that module ``name`` imports anywhere in its source (lazy imports too)."""
    path = module_file(name)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[:len(package.split(".")) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)  # submodules imported by name
    return {m for m in found if m.split(".")[0] in OWN and module_file(m) is not None}


def closure(entry: str) -> set[str]:
    """Files (relative to the repository) executed when ``python -m entry`` imports its modules,
    parent packages' ``__init__.py`` included."""
    seen, todo = set(), [entry]
    while todo:
        name = todo.pop()
        parts = name.split(".")
        for i in range(1, len(parts) + 1):  # importing a.b.c runs a/__init__.py and a/b/__init__.py
            parent = ".".join(parts[:i])
            if parent not in seen and module_file(parent) is not None:
                seen.add(parent)
                todo.append(parent)
        todo += [m for m in imported(name) if m not in seen]
    return {str(module_file(m).relative_to(ROOT)) for m in seen}


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
