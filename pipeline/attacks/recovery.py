"""What a model-inversion reconstruction recovers of its class: the evaluation of the
model-inversion literature, per image.

* **Attack accuracy, top-1 and top-5** (Zhang et al., "The Secret Revealer: Generative
  Model-Inversion Attacks Against Deep Neural Networks", CVPR 2020, Section 4.1; Kahla et al.,
  BREP-MI, CVPR 2022): the evaluator's k most likely classes contain the attacked class.
* **KNN distance** (Zhang et al., ibid.): the l2 distance, in the evaluator's feature space (its
  penultimate layer), from the reconstruction to the nearest private training image of the
  attacked class.
* **Feature distance** (Chen et al., "Knowledge-Enriched Distributional Model Inversion
  Attacks", ICCV 2021, Section 5.1): the l2 distance in the same space to the centroid of
  that class's private training images.
* **Nearest images** (pixel space, l2): the nearest private training image of the class and
  the nearest public image (what the prior was trained on). ``nearer_private``: the first is
  closer, i.e. the image resembles the private class more than anything the prior has seen.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

TOP = 5  # top-k attack accuracy, reported when there are at least 2 * TOP classes


@torch.inference_mode()
def _features(evaluator: nn.Sequential, x: np.ndarray) -> torch.Tensor:
    """The evaluator's penultimate-layer features of ``x`` (eval mode), (M, D) float64."""
    evaluator.eval()
    return evaluator[:-1](torch.as_tensor(x, dtype=torch.float32)).double().flatten(1)


def _nearest(x: torch.Tensor, pool: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Per row of ``x``, the index of its nearest row of ``pool`` and the l2 distance to it."""
    d = torch.cdist(x, pool)
    i = d.argmin(dim=1)
    return i.numpy(), d.gather(1, i[:, None])[:, 0].numpy()


def recovery(evaluator: nn.Sequential, images: np.ndarray, classes: np.ndarray, private_x: np.ndarray,
             private_y: np.ndarray, public_x: np.ndarray) -> dict[str, np.ndarray]:
    """The metrics above for ``images`` (M, C, H, W), image i attacking class ``classes[i]``,
    against the private training images ``private_x`` (labels ``private_y``) and the public
    images ``public_x``. Per image: ``label`` (top-1), ``top5``, ``knn`` and ``centroid``
    (feature distances), ``private`` / ``public`` (index of the nearest image in ``private_x`` /
    ``public_x``), ``private_distance`` / ``public_distance`` and ``nearer_private``."""
    m = len(images)
    out = {k: np.zeros(m, dtype=t) for k, t in (("label", np.int64), ("top5", bool), ("knn", np.float64),
                                                  ("centroid", np.float64), ("private", np.int64),
                                                  ("public", np.int64), ("private_distance", np.float64),
                                                  ("public_distance", np.float64))}
    if m:
        with torch.inference_mode():
            logits = evaluator(torch.as_tensor(images, dtype=torch.float32))
        f, fp = _features(evaluator, images), _features(evaluator, private_x)
        pixels, pool = (torch.as_tensor(a, dtype=torch.float64).flatten(1) for a in (images, private_x))
        out["label"] = logits.argmax(dim=1).numpy()
        k = min(TOP, logits.shape[1])
        out["top5"] = (logits.topk(k, dim=1).indices == torch.as_tensor(classes)[:, None]).any(dim=1).numpy()
        out["public"], out["public_distance"] = _nearest(pixels, torch.as_tensor(public_x, dtype=torch.float64)
                                                         .flatten(1))
        for c in np.unique(classes):
            rows, own = np.flatnonzero(classes == c), np.flatnonzero(private_y == c)
            out["knn"][rows] = _nearest(f[rows], fp[own])[1]
            out["centroid"][rows] = (f[rows] - fp[own].mean(dim=0)).norm(dim=1).numpy()
            j, out["private_distance"][rows] = _nearest(pixels[rows], pool[own])
            out["private"][rows] = own[j]
    out["nearer_private"] = out["private_distance"] < out["public_distance"]
    return out
