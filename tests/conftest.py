"""Shared fixtures: ``repo``, the small pipeline reproduced once per test session in a temporary
git repository (used by test_pipeline.py, test_reproducible.py and core/test_cluster_stages.py; each test
leaves it as it found it).

``make test`` runs the tests on every core (pytest-xdist). The first worker that needs ``repo``
builds it once for the session, under a lock, in the folder the workers share; each worker then
works in its own copy (git, DVC cache and MLflow store, the store's artifact paths moved along)."""
import shutil
import sqlite3

import pytest
from filelock import FileLock

from tests.helpers import PROJECT, ROOT, edit_params, sh, small


FIRST = ("test_reproducible.py", "test_cluster_stages.py", "test_cluster.py", "test_pipeline.py",
         "test_tracking.py")  # the longest files


def pytest_collection_modifyitems(items):
    """The longest test files first, so that pytest-xdist's workers start them at once (the two
    independent builds of test_reproducible.py and the shared ``repo`` side by side) and the
    short files fill in after: the suite's wall time is then about its work over the cores."""
    items.sort(key=lambda item: FIRST.index(item.path.name) if item.path.name in FIRST else len(FIRST))


def build(repo):
    for item in PROJECT:
        src, dst = ROOT / item, repo / item
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__")) if src.is_dir() else shutil.copy(src, dst)
    edit_params(repo, small)
    sh(repo, "git", "init", "-q")
    sh(repo, "git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init", "--allow-empty")
    sh(repo, "git", "add", "-A")
    sh(repo, "git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "project")
    sh(repo, "dvc", "repro")
    (repo / ".dvc/tmp/built").write_text("")


def copy(built, repo):
    """``built`` copied to ``repo``, with the MLflow store's artifact locations moved along."""
    shutil.copytree(built, repo, symlinks=True, dirs_exist_ok=True)
    (repo / ".dvc/tmp/built").unlink()
    old, new = (built / "mlartifacts").as_uri(), (repo / "mlartifacts").as_uri()
    with sqlite3.connect(repo / "mlflow.db") as db:
        db.execute("UPDATE experiments SET artifact_location = replace(artifact_location, ?, ?)", (old, new))
        db.execute("UPDATE runs SET artifact_uri = replace(artifact_uri, ?, ?)", (old, new))


@pytest.fixture(scope="session")
def built(tmp_path_factory, worker_id):
    """The small pipeline as ``dvc repro`` left it, built once for the session in the folder the
    workers share; never modified (tests work in ``repo``, a copy)."""
    own = tmp_path_factory.getbasetemp()
    shared = own.parent if worker_id != "master" else own
    path = shared / "repo-built"
    with FileLock(str(shared / "repo-built.lock")):
        if not (path / ".dvc/tmp/built").exists():
            shutil.rmtree(path, ignore_errors=True)
            path.mkdir()
            build(path)
    return path


@pytest.fixture(scope="session")
def repo(tmp_path_factory, built):
    repo = tmp_path_factory.mktemp("repo")
    copy(built, repo)
    return repo
