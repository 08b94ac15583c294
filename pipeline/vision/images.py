"""Image data for the model-inversion experiment (paper Section 6): private and public classes.

Sources (``images.source``), every image as float32 in [0, 1], shape (C, size, size):

* ``synthetic`` (default, offline): ``images.identities`` seeded identities of
  ``images.per_identity`` images each (``pipeline.vision.identities``); the first
  ``private`` are private, the rest public: the face protocol (disjoint identities) in miniature.
* ``digits``: scikit-learn's embedded 8x8 handwritten digits (offline). Classes
  0..private-1 are private (they train the target and the evaluator), the others public (they
  train the generator prior): the MNIST protocol of the model-inversion literature.
* ``folder``: ``root/<identity>/<image files>``; a seeded permutation of the identities puts
  ``private`` of them in the private split, the rest in the public one.
* ``celeba``: ``root/img_align_celeba/`` and ``root/identity_CelebA.txt``; the ``private`` most
  frequent identities (ties: lower id) are private, the rest public; each image is centre-cropped
  to 108x108 and resized (the GMI / BREP-MI protocol, 64x64).

Private labels are renumbered 0..private-1; the private images are split into train (the
target's members), test (held out) and shadow (the rest; ``split_private``).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from ..core.errors import PipelineError
from .identities import identities

EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".pgm", ".tif", ".tiff"}
CELEBA_CROP = 108


def resize(x: np.ndarray, size: int) -> np.ndarray:
    """(M, C, h, w) in [0, 1] -> (M, C, size, size), bilinear (antialiased when shrinking)."""
    t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    if t.shape[-2:] != (size, size):
        t = F.interpolate(t, size=(size, size), mode="bilinear", align_corners=False,
                          antialias=t.shape[-1] > size)
    return t.clamp(0, 1).numpy()


def digits(size: int) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 1,797 digits (values 0..16) as (M, 1, size, size) in [0, 1] and labels 0..9."""
    from sklearn.datasets import load_digits

    d = load_digits()
    return resize(d.images[:, None] / 16.0, size), d.target.astype(np.int64)


def _open(path: Path, channels: int, crop: int | None) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(path) as im:
            im = im.convert("L" if channels == 1 else "RGB")
            if crop is not None:
                w, h = im.size
                if min(w, h) < crop:
                    raise PipelineError(f"{path}: {w}x{h} is smaller than the {crop}x{crop} centre crop; "
                                        f"fix: use img_align_celeba (178x218)")
                left, top = (w - crop) // 2, (h - crop) // 2
                im = im.crop((left, top, left + crop, top + crop))
            a = np.asarray(im, dtype=np.float32) / 255.0
    except OSError as exc:
        raise PipelineError(f"{path}: not a readable image ({exc}); fix: remove it or replace it") from None
    return a[None] if a.ndim == 2 else a.transpose(2, 0, 1)


def _stack(paths: list[Path], channels: int, size: int, crop: int | None = None) -> np.ndarray:
    out = np.empty((len(paths), channels, size, size), dtype=np.float32)
    for i, p in enumerate(paths):
        out[i] = resize(_open(p, channels, crop)[None], size)[0]
    return out


def folder(root: str | Path, channels: int, size: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """``root/<identity>/<images>`` -> images, identity index (sorted names), the names."""
    root = Path(root)
    if not root.is_dir():
        raise PipelineError(f"images.root = {str(root)!r}: not a folder; fix: point it at root/<identity>/<images>")
    names, paths, labels = [], [], []
    for ident in sorted(p for p in root.iterdir() if p.is_dir()):
        files = sorted(f for f in ident.iterdir() if f.suffix.lower() in EXTENSIONS)
        if files:
            labels += [len(names)] * len(files)
            names.append(ident.name)
            paths += files
    if len(names) < 2:
        raise PipelineError(f"images.root = {str(root)!r}: needs at least 2 identity folders with images; "
                            f"fix: lay it out as root/<identity>/<image files>")
    return _stack(paths, channels, size), np.asarray(labels, dtype=np.int64), names


def celeba(root: str | Path, channels: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """CelebA aligned images with their identity (``identity_CelebA.txt``: "<file> <id>" lines)."""
    root = Path(root)
    table, images = root / "identity_CelebA.txt", root / "img_align_celeba"
    if not table.is_file() or not images.is_dir():
        raise PipelineError(f"images.root = {str(root)!r}: needs identity_CelebA.txt and img_align_celeba/; "
                            f"fix: point it at the unpacked CelebA folder")
    files, ids = [], []
    for n, line in enumerate(table.read_text().split("\n"), 1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2 or not parts[1].isdigit():
            raise PipelineError(f"{table}, line {n}: expected '<file> <identity>', got {line!r}; fix: restore the file")
        files.append(images / parts[0])
        ids.append(int(parts[1]))
    missing = [f for f in files if not f.is_file()]
    if missing:
        raise PipelineError(f"{missing[0]}: listed in {table} but missing ({len(missing)} in all); "
                            f"fix: unpack img_align_celeba completely")
    return _stack(files, channels, size, CELEBA_CROP), np.asarray(ids, dtype=np.int64)


def by_frequency(labels: np.ndarray) -> np.ndarray:
    """Identities ordered by image count, most frequent first (ties: lower identity)."""
    ids, counts = np.unique(labels, return_counts=True)
    return ids[np.lexsort((ids, -counts))]


def split_private(x: np.ndarray, y: np.ndarray, private_ids: np.ndarray, test_fraction: float, train_fraction: float,
          seed: int) -> dict:
    """Private images (labels renumbered in ``private_ids`` order) split per class, seeded, into
    ``test`` (``test_fraction``: held out, the non-members), ``train`` (``train_fraction``, at
    least one image: the target's training set, the members) and ``shadow`` (the rest: data
    from the same distribution that the target never saw, for the membership attacker's shadow
    model and the evaluator). The other classes are public."""
    index = {int(c): k for k, c in enumerate(private_ids)}
    is_private = np.isin(y, private_ids)
    px, py = x[is_private], np.array([index[int(c)] for c in y[is_private]], dtype=np.int64)
    rng = np.random.default_rng(seed)
    part = np.full(len(py), 2)  # 0 train, 1 test, 2 shadow
    for k in range(len(private_ids)):
        members = rng.permutation(np.flatnonzero(py == k))
        n_test = min(int(round(test_fraction * len(members))), len(members) - 1)
        n_train = max(1, min(int(round(train_fraction * len(members))), len(members) - n_test))
        part[members[:n_test]] = 1
        part[members[n_test:n_test + n_train]] = 0
    return {"train_x": px[part == 0], "train_y": py[part == 0], "test_x": px[part == 1], "test_y": py[part == 1],
            "shadow_x": px[part == 2], "shadow_y": py[part == 2], "public_x": x[~is_private]}


def load_images(cfg: dict, seed: int) -> tuple[dict, dict]:
    """The arrays of ``split`` and a meta dict (class names, shape) for ``images.source``."""
    size, private, channels = cfg["size"], cfg["private"], cfg["channels"]
    if cfg["source"] == "synthetic":
        x, y = identities(cfg["identities"], cfg["per_identity"], channels, size, seed)
        names = [f"id{k:03d}" for k in range(cfg["identities"])]
        private_ids = np.arange(private)
    elif cfg["source"] == "digits":
        if channels != 1:
            raise PipelineError("params.yaml: invalid 'images.channels' for digits; fix: set it to 1")
        x, y = digits(size)
        names = [str(d) for d in range(10)]
        private_ids = np.arange(private)
    elif cfg["source"] == "folder":
        x, y, names = folder(cfg["root"], channels, size)
        private_ids = np.sort(np.random.default_rng(seed).permutation(len(names))[:private])
    else:
        x, y = celeba(cfg["root"], channels, size)
        names = [str(i) for i in range(int(y.max()) + 1)]
        private_ids = by_frequency(y)[:private]
    if private >= len(np.unique(y)):
        raise PipelineError(f"params.yaml: invalid 'images.private' = {private}: the source has only "
                            f"{len(np.unique(y))} classes; fix: leave some classes public")
    arrays = split_private(x, y, private_ids, cfg["test_fraction"], cfg["train_fraction"], seed)
    meta = {"source": cfg["source"], "classes": [names[int(c)] for c in private_ids],
            "shape": list(x.shape[1:]), **{f"{k}_count": len(v) for k, v in arrays.items() if k.endswith("_x")}}
    return arrays, meta
