"""Networks of the model-inversion experiment (paper Section 6) and their classifier training.

* ``target``: the attacked classifier (the paper's FaceNet64): two conv blocks, one linear layer.
* ``evaluator``: the judge of attack success (the paper's FaceNet): a *different* architecture
  (wider 5x5 convolutions with batch norm, a hidden dense layer), trained on the same private
  classes, so a success means the reconstruction carries the class's features, not the
  target's quirks.
* ``generator`` / ``critic``: the DCGAN-style prior and its WGAN-GP critic (``pipeline.vision.gan``):
  latent z (100) -> 4x4 feature map -> transposed convolutions doubling the side -> sigmoid,
  so images are in [0, 1] like the data.

All take and return (M, C, size, size) images; ``size`` must be a power of two >= 8.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..core.io import load_state
from ..core.training import fit

WIDTH = 16  # generator / critic base width


class MaxPool(nn.MaxPool2d):
    """``nn.MaxPool2d`` that pools a channels-first batch in the channels-last layout when no
    gradient is taken: the same values bit for bit (a max rounds nothing, and the result goes
    back to the input's layout), and about 3x faster on the CPU for these small images, where
    torch's channels-first kernel is slower than the convolution before it. Training keeps
    torch's own kernel and its gradient."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled() or x.dim() != 4 or x.is_contiguous(memory_format=torch.channels_last):
            return super().forward(x)
        return super().forward(x.contiguous(memory_format=torch.channels_last)).contiguous()


def _doublings(size: int) -> int:
    return int(np.log2(size)) - 2


def target(channels: int, size: int, classes: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(channels, 8, 3, padding=1), nn.ReLU(), MaxPool(2),
        nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), MaxPool(2),
        nn.Flatten(), nn.Linear(16 * (size // 4) ** 2, classes))


def evaluator(channels: int, size: int, classes: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(channels, 16, 5, padding=2), nn.BatchNorm2d(16), nn.ReLU(), MaxPool(2),
        nn.Conv2d(16, 32, 5, padding=2), nn.BatchNorm2d(32), nn.ReLU(), MaxPool(2),
        nn.Flatten(), nn.Linear(32 * (size // 4) ** 2, 128), nn.ReLU(), nn.Dropout(0.3),
        nn.Linear(128, classes))


def generator(channels: int, size: int, z_dim: int) -> nn.Sequential:
    n = _doublings(size)
    layers: list[nn.Module] = [nn.Linear(z_dim, WIDTH * 2 ** n * 16), nn.Unflatten(1, (WIDTH * 2 ** n, 4, 4)),
                               nn.BatchNorm2d(WIDTH * 2 ** n), nn.ReLU()]
    for i in range(n, 1, -1):
        layers += [nn.ConvTranspose2d(WIDTH * 2 ** i, WIDTH * 2 ** (i - 1), 4, 2, 1),
                   nn.BatchNorm2d(WIDTH * 2 ** (i - 1)), nn.ReLU()]
    layers += [nn.ConvTranspose2d(WIDTH * 2, channels, 4, 2, 1), nn.Sigmoid()]
    return nn.Sequential(*layers)


def critic(channels: int, size: int) -> nn.Sequential:
    """WGAN-GP critic: no batch norm (the gradient penalty is per sample); instance norm instead."""
    n = _doublings(size)
    layers: list[nn.Module] = [nn.Conv2d(channels, WIDTH * 2, 4, 2, 1), nn.LeakyReLU(0.2)]
    for i in range(1, n):
        layers += [nn.Conv2d(WIDTH * 2 ** i, WIDTH * 2 ** (i + 1), 4, 2, 1),
                   nn.InstanceNorm2d(WIDTH * 2 ** (i + 1), affine=True), nn.LeakyReLU(0.2)]
    layers += [nn.Conv2d(WIDTH * 2 ** n, 1, 4, 1, 0), nn.Flatten()]
    return nn.Sequential(*layers)


BUILDERS = {"target": target, "evaluator": evaluator}


def train_classifier(kind: str, x: np.ndarray, y: np.ndarray, classes: int, cfg: dict, seed: int,
                     progress: bool = True, device: torch.device | str = "cpu") -> tuple[nn.Sequential, list[dict]]:
    """Build ``kind`` with ``seed`` and train it by ``pipeline.core.training.fit`` (cross-entropy)
    on ``device``."""
    torch.manual_seed(seed)
    return fit(BUILDERS[kind](x.shape[1], x.shape[2], classes), x, y, cfg, seed, desc=f"train {kind}",
               progress=progress, device=device)


def load_network(kind: str, path, shape: list[int], classes_or_z: int) -> nn.Module:
    """Rebuild ``kind`` (target, evaluator, generator) and load its state dict (``weights_only``)."""
    channels, size = shape[0], shape[1]
    model = {"generator": generator, **BUILDERS}[kind](channels, size, classes_or_z)
    model.load_state_dict(load_state(path))
    return model.eval()
