"""Synthetic identities: a seeded, offline stand-in for a face data set (``images.source: synthetic``).

The model-inversion question is whether a reconstruction carries the features of a *private
identity* that the public prior never saw. Digits cannot ask it: their classes are shapes, and
a prior trained on the other digits only draws those shapes. Here, as with faces, every
identity is a draw from one shared distribution, so the public identities teach the prior what
an identity looks like without showing any private one:

* a shared template, a bright oval "head" on a dark background;
* identity k: a smooth random pattern on the head (a 4x4 grid of standard normals per channel,
  upsampled bicubically, times ``AMPLITUDE``), the identity's private features;
* each image of k: its pattern under a random pose (a shift of up to ``SHIFT`` of the side, both
  axes), a random contrast in [1 - ``CONTRAST``, 1 + ``CONTRAST``] and pixel noise of standard
  deviation ``NOISE``, clipped to [0, 1];
* a long tail: a share ``ATYPICAL`` of the images is occluded by a square of uniform noise half
  the side wide at a random place (as faces have hands, hats and glasses). A model fits such
  images only by memorising them, which is what membership inference detects (Feldman, "Does
  learning require memorization?", STOC 2020); without them every image is typical, the
  target generalises perfectly and no attack finds its members.

Two identities differ by about three times the spread of one identity's images (pixel l2), so
"nearer a private image of the class than any public image" is a test a reconstruction can pass.
"""
from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional as F

from ..core.seeds import derive_seed

AMPLITUDE, SHIFT, CONTRAST, NOISE, ATYPICAL = 0.22, 0.06, 0.1, 0.03, 0.2
CODE = 4  # side of an identity's grid of normals
IDENTITY, POSE = range(2)  # random streams under the seed


def template(size: int) -> torch.Tensor:
    """The shared head: a super-Gaussian oval, about 1 inside and 0 outside, (size, size)."""
    t = torch.linspace(-1, 1, size, dtype=torch.float64)
    yy, xx = torch.meshgrid(t, t, indexing="ij")
    return torch.exp(-((xx / 0.72) ** 2 + (yy / 0.9) ** 2) ** 4).float()


def patterns(count: int, channels: int, size: int, seed: int) -> torch.Tensor:
    """Each identity's pattern on the head, (count, channels, size, size), in about [0, 1]."""
    codes = torch.randn(count, channels, CODE, CODE, generator=torch.Generator().manual_seed(
        derive_seed(seed, IDENTITY)))
    fields = F.interpolate(codes, size=(size, size), mode="bicubic", align_corners=True)
    head = template(size)
    return head * (0.55 + AMPLITUDE * fields)


def identities(count: int, per_identity: int, channels: int, size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``per_identity`` images of each of ``count`` identities: (count * per_identity, C, size,
    size) float32 in [0, 1] and the identity labels 0..count-1 (grouped by identity)."""
    protos = patterns(count, channels, size, seed)
    gen = torch.Generator().manual_seed(derive_seed(seed, POSE))
    m = count * per_identity
    shift = (torch.rand(m, 2, generator=gen) * 2 - 1) * 2 * SHIFT  # grid units: the side spans 2
    contrast = 1 + (torch.rand(m, generator=gen) * 2 - 1) * CONTRAST
    noise = torch.randn(m, channels, size, size, generator=gen) * NOISE
    theta = torch.zeros(m, 2, 3)
    theta[:, 0, 0] = theta[:, 1, 1] = 1
    theta[:, :, 2] = shift
    grid = F.affine_grid(theta, [m, channels, size, size], align_corners=False)
    x = F.grid_sample(protos.repeat_interleave(per_identity, dim=0), grid, mode="bilinear", padding_mode="zeros",
                      align_corners=False)
    x = (x * contrast[:, None, None, None] + noise).clamp(0, 1)
    side = size // 2
    occluded = torch.rand(m, generator=gen) < ATYPICAL
    corner = torch.randint(0, size - side + 1, (m, 2), generator=gen)
    patches = torch.rand(m, channels, side, side, generator=gen)
    for i in torch.nonzero(occluded).flatten().tolist():
        r, c = corner[i].tolist()
        x[i, :, r:r + side, c:c + side] = patches[i]
    return x.numpy(), np.repeat(np.arange(count, dtype=np.int64), per_identity)
