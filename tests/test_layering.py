"""The package tree is layered as ``pipeline/__init__.py`` says: a package imports only the
packages listed before it (core, smoothing, tabular, vision, defenses, attacks, experiments,
reporting), never one after it, so the tree shows the architecture and has no cycles."""
from tests.helpers import ROOT, imported

LAYERS = ["core", "smoothing", "tabular", "vision", "defenses", "attacks", "experiments", "reporting"]


def upward_imports() -> list[str]:
    found = []
    for path in sorted((ROOT / "pipeline").rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        if len(parts) < 3:  # pipeline/__init__.py
            continue
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        for target in imported(name):
            layer = target.split(".")[1] if target.count(".") else None
            if layer in LAYERS and LAYERS.index(layer) > LAYERS.index(parts[1]):
                found.append(f"{name} -> {target}")
    return found


def test_every_package_of_the_tree_is_a_layer():
    assert sorted(p.name for p in (ROOT / "pipeline").iterdir() if (p / "__init__.py").is_file()) == sorted(LAYERS)


def test_no_package_imports_a_later_layer():
    assert upward_imports() == []
