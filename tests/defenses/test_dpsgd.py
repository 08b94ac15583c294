"""DP-SGD (``pipeline.defenses.dpsgd``): the epsilon reported is Opacus's own accountant's for the
training that ran, it matches the Renyi-DP analysis of the Gaussian mechanism where that has a
closed form, the noise is calibrated to the requested budget, and training is reproducible."""
import numpy as np
import pytest
import torch
from torch import nn

from pipeline.defenses import dpsgd

CFG = {"epochs": 3, "batch_size": 16, "lr": 0.01, "max_grad_norm": 1.0}


def data(n=64, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 5)).astype(np.float32)
    return x, (x[:, 0] > 0).astype(np.int64)


def model(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 2))


def test_the_reported_epsilon_is_opacus_privacy_engine_accountant_on_the_same_training():
    from opacus import PrivacyEngine

    x, y = data()
    _, record = dpsgd.fit_private(model(), x, y, CFG, epsilon=2.0, delta=1e-5, seed=0, progress=False)
    assert record["epsilon"] <= 2.0 and record["epsilon"] == pytest.approx(2.0, rel=0.01)  # calibrated, not exceeded
    # Opacus's own training loop with that noise multiplier and sample rate, its accountant counting the steps
    engine = PrivacyEngine(accountant="rdp")
    net = model()
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.from_numpy(x), torch.from_numpy(y)),
                                         batch_size=CFG["batch_size"])
    net, opt, loader = engine.make_private(module=net, optimizer=torch.optim.Adam(net.parameters(), lr=CFG["lr"]),
                                           data_loader=loader, noise_multiplier=record["noise_multiplier"],
                                           max_grad_norm=CFG["max_grad_norm"], poisson_sampling=True)
    for _ in range(CFG["epochs"]):
        for xb, yb in loader:
            opt.zero_grad()
            nn.functional.cross_entropy(net(xb), yb).backward()
            opt.step()
    assert record["steps"] == CFG["epochs"] * len(loader)
    assert record["epsilon"] == pytest.approx(engine.get_epsilon(1e-5), rel=1e-9)


def test_without_subsampling_the_epsilon_is_the_gaussian_mechanism_renyi_bound():
    """q = 1: T steps of the Gaussian mechanism have RDP T alpha / (2 z^2) at order alpha;
    Opacus converts with Balle et al. (2020): eps = rdp + log((alpha - 1) / alpha)
    - (log delta + log alpha) / (alpha - 1), minimised over its orders."""
    from opacus.accountants.rdp import RDPAccountant

    z, steps, delta = 1.3, 50, 1e-5
    alphas = np.array(RDPAccountant.DEFAULT_ALPHAS, dtype=float)
    rdp = steps * alphas / (2 * z ** 2)
    eps = rdp + np.log1p(-1 / alphas) - (np.log(delta) + np.log(alphas)) / (alphas - 1)
    assert dpsgd.spent(z, 1.0, steps, delta) == pytest.approx(np.nanmin(eps), rel=1e-9)


def test_a_smaller_budget_takes_more_noise_and_training_is_reproducible():
    x, y = data()
    runs = [dpsgd.fit_private(model(), x, y, CFG, eps, 1e-5, seed=4, progress=False) for eps in (1.0, 8.0, 8.0)]
    assert runs[0][1]["noise_multiplier"] > runs[1][1]["noise_multiplier"] > 0
    same = [a.equal(b) for a, b in zip(runs[1][0].state_dict().values(), runs[2][0].state_dict().values())]
    assert all(same)
    other = dpsgd.fit_private(model(), x, y, CFG, 8.0, 1e-5, seed=5, progress=False)[0]
    assert not all(a.equal(b) for a, b in zip(other.state_dict().values(), runs[1][0].state_dict().values()))
    assert not any(hasattr(m, "_forward_hooks") and m._forward_hooks for m in runs[1][0].modules())  # hooks removed
