"""MID: Mutual-Information-regularised Defense against model inversion (Wang, Zhang and Jia,
AAAI 2021), neural-network instantiation: a variational information bottleneck (VIB).

MID bounds the information the prediction carries about the input, I(X; Y_hat) <= I(X; Z)
<= E_x KL(p(z|x) || q(z)), and for neural networks minimises the VIB objective of Alemi et al.
(2017, Sec. 3) with the prior q(z) = N(0, I):

    L = E_(x,y) [ E_eps CE(head(mu(x) + std(x) * eps), y) + beta * KL(N(mu(x), diag std(x)^2) || N(0, I)) ]
    KL(N(mu, diag std^2) || N(0, I)) = 1/2 sum_j (mu_j^2 + std_j^2 - 1 - 2 log std_j)

(the authors' ``engine.train_vib``: the KL is summed over the k latent dimensions and
averaged over the batch). As in their ``VGG16_vib``, the feature goes through one linear layer
to 2k numbers, mu = first k, std = softplus(raw - 5), and the head sees the sample
mu + std * eps; the sampling stays on at inference (their ``forward`` always samples).
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from tqdm.auto import tqdm

from ..core.io import load_state
from ..core.training import epoch_batches
from ..vision.nets import SMALL, build


def checkpoint(beta: float) -> str:
    """Where the pipeline keeps the MID target trained with ``beta`` (stage ``train_mid``)."""
    return f"models/mid/beta_{beta:g}.pt"


class VIB(nn.Module):
    """``features`` (any module, output flattened to ``feature_dim``) -> Linear(F, 2k) ->
    (mu, std) -> z = mu + std * eps -> Linear(k, classes). ``forward`` returns logits;
    ``generator`` (optional) makes the sampling reproducible."""

    def __init__(self, features: nn.Module, feature_dim: int, num_classes: int, k: int = 256,
                 generator: torch.Generator | None = None):
        super().__init__()
        self.features, self.k, self.generator = features, k, generator
        self.statistics = nn.Linear(feature_dim, 2 * k)
        self.head = nn.Linear(k, num_classes)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raw = self.statistics(self.features(x).flatten(1))
        return raw[:, :self.k], F.softplus(raw[:, self.k:] - 5.0)

    def forward_stats(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Logits of one sample z ~ N(mu, std^2), with mu and std (for the loss)."""
        mu, std = self.encode(x)
        eps = torch.randn(std.shape, generator=self.generator, dtype=std.dtype, device=std.device)
        return self.head(mu + std * eps), mu, std

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_stats(x)[0]


def kl_to_standard_normal(mu: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, diag std^2) || N(0, I)) per row, summed over the latent dimensions."""
    return 0.5 * (mu.pow(2) + std.pow(2) - 1.0 - 2.0 * std.log()).sum(dim=1)


def mid_loss(logits: torch.Tensor, y: torch.Tensor, mu: torch.Tensor, std: torch.Tensor,
             beta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(CE + beta * mean KL, mean KL): the objective above on one mini-batch."""
    kl = kl_to_standard_normal(mu, std).mean()
    return F.cross_entropy(logits, y) + beta * kl, kl


def fit_vib(model: VIB, x: np.ndarray, y: np.ndarray, beta: float, seed: int, epochs: int = 50,
          batch_size: int = 64, lr: float = 0.01, momentum: float = 0.9, weight_decay: float = 1e-4,
          progress: bool = True, device: torch.device | str = "cpu") -> list[dict]:
    """SGD with the authors' settings (lr 0.01, momentum 0.9, weight decay 1e-4, 50 epochs) on
    shuffled mini-batches (their order drawn on the CPU); the model is trained in place on
    ``device`` and handed back on the CPU. Returns per-epoch mean loss, mean KL and training
    accuracy (of the sampled predictions), over the records trained on (batches:
    ``pipeline.core.training.epoch_batches``, as in ``fit``)."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model.to(device)
    xt, yt = torch.as_tensor(x, dtype=torch.float32).to(device), torch.as_tensor(y, dtype=torch.long).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
    history = []
    for epoch in tqdm(range(epochs), desc=f"mid beta={beta}", disable=not progress):
        model.train()
        batches = epoch_batches(model, len(xt), batch_size, gen)
        loss_sum = kl_sum = correct = 0.0
        for idx in batches:
            logits, mu, std = model.forward_stats(xt[idx])
            loss, kl = mid_loss(logits, yt[idx], mu, std, beta)
            opt.zero_grad()
            loss.backward()
            opt.step()
            loss_sum += float(loss.detach()) * len(idx)
            kl_sum += float(kl.detach()) * len(idx)
            correct += float((logits.argmax(1) == yt[idx]).sum())
        seen = sum(len(b) for b in batches)
        history.append({"epoch": epoch, "loss": loss_sum / seen, "kl": kl_sum / seen, "train_accuracy": correct / seen})
    model.to("cpu").eval()
    return history


def build_mid(channels: int, size: int, classes: int, k: int = 256, arch: str = SMALL) -> VIB:
    """The image target's features (architecture ``arch``, every layer but the last linear
    classifier) -> VIB bottleneck of size k -> head."""
    net = build("target", arch, channels, size, classes)
    return VIB(net[:-1], net[-1].in_features, classes, k)


def train_mid(x: np.ndarray, y: np.ndarray, classes: int, cfg: dict, beta: float, seed: int,
              progress: bool = True, device: torch.device | str = "cpu",
              arch: str = SMALL) -> tuple[VIB, list[dict]]:
    """``build_mid`` (bottleneck ``cfg['k']``, the target's architecture ``arch``) with ``seed``,
    trained by ``fit_vib`` on ``device`` with the ``mid`` params (epochs, batch size, learning rate)."""
    torch.manual_seed(seed)
    model = build_mid(x.shape[1], x.shape[2], classes, cfg["k"], arch)
    return model, fit_vib(model, x, y, beta, seed, cfg["epochs"], cfg["batch_size"], cfg["lr"], progress=progress,
                          device=device)


def load_mid(path, shape: list[int], classes: int, k: int, arch: str = SMALL) -> VIB:
    """Rebuild a MID target of architecture ``arch`` and load its state dict (``weights_only``)."""
    model = build_mid(shape[0], shape[1], classes, k, arch)
    model.load_state_dict(load_state(path))
    return model.eval()
