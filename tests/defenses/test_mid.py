"""MID's VIB layer and loss against the closed-form Gaussian KL and plain cross-entropy."""
import numpy as np
import pytest
import torch
from torch import nn
from torch.distributions import Normal, kl_divergence
from torch.nn import functional as F

from pipeline.defenses.mid import VIB, fit_vib, kl_to_standard_normal, mid_loss
from tests.helpers import one_thread


def test_kl_matches_torch_distributions_and_vanishes_at_the_prior():
    g = torch.Generator().manual_seed(0)
    mu, std = torch.randn(7, 5, generator=g, dtype=torch.float64), torch.rand(7, 5, generator=g, dtype=torch.float64) + 0.1
    expected = kl_divergence(Normal(mu, std), Normal(torch.zeros_like(mu), torch.ones_like(std))).sum(1)
    assert torch.allclose(kl_to_standard_normal(mu, std), expected)
    assert torch.allclose(kl_to_standard_normal(torch.zeros(3, 4), torch.ones(3, 4)), torch.zeros(3))
    # one dimension by hand: mu = 1, std = 2: (1 + 4 - 1 - 2 log 2) / 2
    assert kl_to_standard_normal(torch.tensor([[1.0]]), torch.tensor([[2.0]])).item() == pytest.approx(2 - np.log(2))


def test_beta_zero_is_cross_entropy_and_beta_adds_the_mean_kl():
    g = torch.Generator().manual_seed(1)
    logits, y = torch.randn(6, 3, generator=g), torch.tensor([0, 1, 2, 0, 1, 2])
    mu, std = torch.randn(6, 4, generator=g), torch.rand(6, 4, generator=g) + 0.5
    loss0, kl = mid_loss(logits, y, mu, std, 0.0)
    assert loss0.item() == F.cross_entropy(logits, y).item()
    loss, _ = mid_loss(logits, y, mu, std, 0.01)
    assert loss.item() == pytest.approx(F.cross_entropy(logits, y).item() + 0.01 * kl_to_standard_normal(mu, std).mean().item())


def test_layer_shapes_softplus_std_and_sampling_stays_on_in_eval():
    torch.manual_seed(0)
    model = VIB(nn.Flatten(), feature_dim=12, num_classes=3, k=256).eval()
    assert model.statistics.out_features == 512 and model.head.in_features == 256
    x = torch.randn(4, 3, 4)
    mu, std = model.encode(x)
    raw = model.statistics(x.flatten(1))
    assert torch.equal(mu, raw[:, :256]) and torch.allclose(std, torch.log1p(torch.exp(raw[:, 256:] - 5)))
    with torch.no_grad():
        assert not torch.equal(model(x), model(x))  # eps is drawn at inference too
    gen_a, gen_b = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    model.generator = gen_a
    first = model(x)
    model.generator = gen_b
    assert torch.equal(first, model(x))  # reproducible through the generator


def test_larger_beta_trains_a_tighter_bottleneck():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 6)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 0).astype(np.int64)
    kls, accs = [], []
    for beta in (0.0, 0.1):
        torch.manual_seed(0)
        model = VIB(nn.Sequential(nn.Linear(6, 16), nn.ReLU()), 16, 2, k=8)
        with one_thread():
            history = fit_vib(model, x, y, beta=beta, seed=0, epochs=15, progress=False)
        kls.append(history[-1]["kl"])
        accs.append(history[-1]["train_accuracy"])
    assert kls[1] < 0.5 * kls[0]
    assert min(accs) > 0.85
