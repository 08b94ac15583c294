"""Networks of the model-inversion experiment (paper Section 6) and their classifier training.

* ``target``: the attacked classifier. ``target.arch`` picks its architecture (``build``):
  ``small`` (the default: two conv blocks, one linear layer, sized for the CPU run budget),
  ``facenet64`` or ``irse50`` (below).
* ``evaluator``: the judge of attack success; ``evaluator.arch`` picks it: ``small`` (the
  default: a *different* small architecture, wider 5x5 convolutions with batch norm and a hidden
  dense layer) or one of the deep ones. It is trained on the same private classes, so a success
  means the reconstruction carries the class's features, not the target's quirks; the params
  refuse an evaluator of the target's own deep architecture (``pipeline.core.params``).
* ``generator`` / ``critic``: the DCGAN-style prior and its WGAN-GP critic (``pipeline.vision.gan``):
  latent z (100) -> 4x4 feature map -> transposed convolutions doubling the side -> sigmoid,
  so images are in [0, 1] like the data.

The deep architectures, trained from scratch (no pretrained weights):

* ``facenet64``: the FaceNet64 of the model-inversion literature (Zhang et al., "The Secret
  Revealer: Generative Model-Inversion Attacks Against Deep Neural Networks", CVPR 2020, whose
  code BREP-MI reuses: Kahla et al., "Label-Only Model Inversion Attacks via Boundary
  Repulsion", CVPR 2022): the IR-50 backbone of face.evoLVe (Wang, Zhang, Xiong and Zhao,
  "face.evoLVe: A High-Performance Face Recognition Library", arXiv 2107.08621, 2021;
  github.com/ZhaoJ9014/face.evoLVe) at 64x64, its output layer to a 512-d embedding, and a
  linear classifier over the classes.
* ``irse50``: the same backbone with a squeeze-and-excitation module in every block (Hu et al.,
  "Squeeze-and-Excitation Networks", CVPR 2018): the IR-SE-50 of Deng et al., "ArcFace:
  Additive Angular Margin Loss for Deep Face Recognition", CVPR 2019.

Both are one ``nn.Sequential`` (``input``, ``body``, ``output``, ``head``) like the small nets:
``model[-1]`` is the linear classifier and ``model[:-1]`` the features (the 512-d embedding),
which MID's bottleneck and the recovery metrics' feature space rely on.

All take (M, C, size, size) images; ``size`` must be a power of two >= 8 (the deep nets halve
the side four times, down to at least 1x1).
"""
from __future__ import annotations

from collections import OrderedDict

import numpy as np
import torch
from torch import nn

from ..core.io import load_state
from ..core.training import fit

WIDTH = 16  # generator / critic base width
SMALL = "small"
# The IR-50 backbone (face.evoLVe's get_blocks(50)): blocks per stage and their widths; every
# stage starts with a stride-2 block. STEM: the input conv's width; EMBEDDING: the output layer's.
IR50_DEPTHS, IR50_WIDTHS, STEM, EMBEDDING = (3, 4, 14, 3), (64, 128, 256, 512), 64, 512
SE_REDUCTION = 16  # squeeze-and-excitation bottleneck: channels // 16 (Hu et al.; face.evoLVe)
OUTPUT_DROPOUT = 0.5  # the output layer's nn.Dropout() (torch's default p)


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


class SqueezeExcitation(nn.Module):
    """Squeeze-and-excitation (Hu et al., CVPR 2018): channel gates from the global average,
    through 1x1 convolutions ``channels -> channels // reduction -> channels`` (no bias), ReLU
    and sigmoid, as in face.evoLVe's ``SEModule``."""

    def __init__(self, channels: int, reduction: int = SE_REDUCTION):
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, channels // reduction, 1, bias=False)
        self.relu = nn.ReLU()
        self.fc2 = nn.Conv2d(channels // reduction, channels, 1, bias=False)
        self.gate = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(self.fc2(self.relu(self.fc1(self.pool(x)))))


class IRBlock(nn.Module):
    """The improved residual unit of ArcFace (Deng et al., CVPR 2019): BN - conv 3x3 - BN - PReLU -
    conv 3x3 (``stride``) - BN, with ``se`` a squeeze-and-excitation module last (IR-SE), plus
    the shortcut: a stride-``stride`` subsampling (``MaxPool2d(1, stride)``) when the width is
    kept, a strided 1x1 conv + BN when it changes."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, se: bool = False):
        super().__init__()
        layers: list[nn.Module] = [
            nn.BatchNorm2d(in_channels), nn.Conv2d(in_channels, out_channels, 3, 1, 1, bias=False),
            nn.BatchNorm2d(out_channels), nn.PReLU(out_channels),
            nn.Conv2d(out_channels, out_channels, 3, stride, 1, bias=False), nn.BatchNorm2d(out_channels)]
        if se:
            layers.append(SqueezeExcitation(out_channels))
        self.residual = nn.Sequential(*layers)
        self.shortcut = (nn.MaxPool2d(1, stride) if in_channels == out_channels else
                         nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                                       nn.BatchNorm2d(out_channels)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.residual(x) + self.shortcut(x)


def ir_network(channels: int, size: int, classes: int, se: bool, depths=IR50_DEPTHS,
               widths=IR50_WIDTHS) -> nn.Sequential:
    """An IR (``se``: IR-SE) network: ``input`` (conv 3x3 to ``STEM`` + BN + PReLU), ``body``
    (``depths[i]`` ``IRBlock``s of width ``widths[i]`` per stage, the first of each with stride
    2), ``output`` (BN - Dropout - Flatten - Linear to ``EMBEDDING`` - BN1d, as FaceNet64's
    output layer) and ``head`` (Linear to ``classes``). At 64x64 the body ends at 4x4, as in
    FaceNet64's ``Linear(512 * 4 * 4, 512)``; at 16x16 and below at 1x1."""
    blocks, width = [], STEM
    for depth, out in zip(depths, widths):
        for i in range(depth):
            blocks.append(IRBlock(width, out, 2 if i == 0 else 1, se))
            width = out
    side = max(size // 2 ** len(depths), 1)  # a stride-2 3x3 conv (padding 1) maps a side s to ceil(s / 2)
    return nn.Sequential(OrderedDict([
        ("input", nn.Sequential(nn.Conv2d(channels, STEM, 3, 1, 1, bias=False), nn.BatchNorm2d(STEM),
                                nn.PReLU(STEM))),
        ("body", nn.Sequential(*blocks)),
        ("output", nn.Sequential(nn.BatchNorm2d(width), nn.Dropout(OUTPUT_DROPOUT), nn.Flatten(),
                                 nn.Linear(width * side ** 2, EMBEDDING), nn.BatchNorm1d(EMBEDDING))),
        ("head", nn.Linear(EMBEDDING, classes))]))


def facenet64(channels: int, size: int, classes: int) -> nn.Sequential:
    """FaceNet64 (Zhang et al., CVPR 2020): IR-50 without squeeze-and-excitation."""
    return ir_network(channels, size, classes, se=False)


def irse50(channels: int, size: int, classes: int) -> nn.Sequential:
    """IR-SE-50 (Deng et al., CVPR 2019; Hu et al., CVPR 2018)."""
    return ir_network(channels, size, classes, se=True)


BUILDERS = {"target": target, "evaluator": evaluator}  # the classifier kinds, with their small architectures
DEEP = {"facenet64": facenet64, "irse50": irse50}  # the deep architectures, either kind
ARCHS = (SMALL, *DEEP)  # the choices of target.arch and evaluator.arch


def build(kind: str, arch: str, channels: int, size: int, classes: int) -> nn.Sequential:
    """Classifier ``kind`` (target, evaluator) of architecture ``arch`` (``ARCHS``): ``small``
    is the kind's own small network, a deep one is the same for both kinds."""
    if kind not in BUILDERS or arch not in ARCHS:
        raise ValueError(f"unknown classifier {kind!r} / architecture {arch!r}: kinds {sorted(BUILDERS)}, "
                         f"architectures {list(ARCHS)}")
    return BUILDERS[kind](channels, size, classes) if arch == SMALL else DEEP[arch](channels, size, classes)


def train_classifier(kind: str, x: np.ndarray, y: np.ndarray, classes: int, cfg: dict, seed: int,
                     progress: bool = True, device: torch.device | str = "cpu") -> tuple[nn.Sequential, list[dict]]:
    """Build ``kind`` of architecture ``cfg['arch']`` (the params section ``target`` or
    ``evaluator``; ``small`` where it has none) with ``seed`` and train it by
    ``pipeline.core.training.fit`` (cross-entropy; ``cfg``'s epochs, batch_size, lr) on ``device``."""
    torch.manual_seed(seed)
    return fit(build(kind, cfg.get("arch", SMALL), x.shape[1], x.shape[2], classes), x, y, cfg, seed,
               desc=f"train {kind}", progress=progress, device=device)


def load_network(kind: str, path, shape: list[int], classes_or_z: int, arch: str = SMALL) -> nn.Module:
    """Rebuild ``kind`` (target, evaluator of architecture ``arch``; generator) and load its
    state dict (``weights_only``): a checkpoint of another architecture fails to load."""
    channels, size = shape[0], shape[1]
    model = (generator(channels, size, classes_or_z) if kind == "generator"
             else build(kind, arch, channels, size, classes_or_z))
    model.load_state_dict(load_state(path))
    return model.eval()
