"""The generative prior of BREP-MI: a DCGAN-style generator trained on the *public* images with
WGAN-GP (Gulrajani et al., 2017: ``critic_iters`` critic steps per generator step, gradient
penalty lambda * (||grad D(x_hat)|| - 1)^2 on random interpolates x_hat, Adam(0.5, 0.9))."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from ..core.device import on
from . import nets


def gradient_penalty(critic: nn.Module, real: torch.Tensor, fake: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    eps = torch.rand(len(real), 1, 1, 1, generator=gen).to(real.device)
    mixed = (eps * real + (1 - eps) * fake).requires_grad_(True)
    grad, = torch.autograd.grad(critic(mixed).sum(), mixed, create_graph=True)
    return ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()


def train_gan(public: np.ndarray, cfg: dict, seed: int, progress: bool = True,
              device: torch.device | str = "cpu") -> tuple[nn.Sequential, list[dict]]:
    """Train generator and critic for ``cfg['steps']`` generator steps on ``device`` (every random
    draw on the CPU, so the same everywhere); returns the generator (eval mode, on the CPU) and
    the Wasserstein estimate E[D(real)] - E[D(fake)] every 50 steps."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    data = torch.from_numpy(public).to(device)
    channels, size = public.shape[1], public.shape[2]
    g, d = nets.generator(channels, size, cfg["z_dim"]).to(device), nets.critic(channels, size).to(device)
    opt_g = torch.optim.Adam(g.parameters(), lr=cfg["lr"], betas=(0.5, 0.9))
    opt_d = torch.optim.Adam(d.parameters(), lr=cfg["lr"], betas=(0.5, 0.9))
    batch, history = min(cfg["batch_size"], len(data)), []
    for step in tqdm(range(cfg["steps"]), desc="train gan", disable=not progress):
        for _ in range(cfg["critic_iters"]):
            real = data[torch.randint(len(data), (batch,), generator=gen)]
            with torch.no_grad():
                fake = g(torch.randn(batch, cfg["z_dim"], generator=gen).to(device))
            distance = d(real).mean() - d(fake).mean()
            loss_d = -distance + cfg["gp_weight"] * gradient_penalty(d, real, fake, gen)
            opt_d.zero_grad()
            loss_d.backward()
            opt_d.step()
        loss_g = -d(g(torch.randn(batch, cfg["z_dim"], generator=gen).to(device))).mean()
        opt_g.zero_grad()
        loss_g.backward()
        opt_g.step()
        if step % 50 == 0 or step == cfg["steps"] - 1:
            history.append({"step": step, "wasserstein": float(distance.detach())})
    return g.to("cpu").eval(), history


@torch.inference_mode()
def samples(G: nn.Module, count: int, z_dim: int, seed: int, device: torch.device | str = "cpu") -> np.ndarray:
    """``count`` images of the generator (a copy on ``device``) from latents drawn with ``seed``
    on the CPU; the images come back as numpy."""
    z = torch.randn(count, z_dim, generator=torch.Generator().manual_seed(seed))
    return on(G, device)(z.to(device)).cpu().numpy()
