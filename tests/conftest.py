"""Shared fixtures: ``repo``, the small pipeline reproduced once per session in a temporary git
repository (used by test_pipeline.py and core/test_cluster.py; each test leaves it as it found it)."""
import shutil

import pytest

from tests.helpers import PROJECT, ROOT, edit_params, sh, small


@pytest.fixture(scope="session")
def repo(tmp_path_factory):
    repo = tmp_path_factory.mktemp("repo")
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
    return repo
