"""Atomic file writes and checksums.

Every output is written to a temporary file in the destination folder and then renamed
into place (``os.replace`` is atomic on POSIX), so a stage killed mid-write never leaves a
file that DVC or a later stage could take as complete.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Iterator

import numpy as np

from .errors import PipelineError


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` on success only."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the file the usual mode
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path: str | os.PathLike, obj) -> None:
    """Deterministic JSON (sorted keys), so equal results give byte-equal files."""
    write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


@contextlib.contextmanager
def reading(path: str | os.PathLike) -> Iterator[None]:
    """Turn a missing or unreadable pipeline file into one ``PipelineError`` naming it."""
    if not Path(path).exists():
        raise PipelineError(f"{path}: missing; fix: run `dvc repro` (it is made by an earlier stage)")
    try:
        yield
    except Exception as exc:  # any parse failure: the file is corrupt or from another version
        raise PipelineError(f"{path}: unreadable ({type(exc).__name__}: {exc}); "
                            f"fix: `dvc repro --force` the stage that writes it") from None


def read_json(path: str | os.PathLike):
    with reading(path):
        return json.loads(Path(path).read_text())


def sha256(path: str | os.PathLike, block: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(block):
            h.update(chunk)
    return h.hexdigest()


def write_npz(path: str | os.PathLike, arrays: dict) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays)


def read_npz(path: str | os.PathLike) -> dict:
    """Arrays only: ``allow_pickle=False`` refuses anything that could execute code."""
    with reading(path), np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def save_state(path: str | os.PathLike, module) -> None:
    import torch

    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        torch.save(module.state_dict(), f)  # a file object: the archive is not named after tmp


def load_state(path: str | os.PathLike) -> dict:
    import torch

    with reading(path):
        return torch.load(path, map_location="cpu", weights_only=True)
