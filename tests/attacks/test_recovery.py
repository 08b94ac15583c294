"""The model-inversion recovery metrics (``pipeline.attacks.recovery``) against hand-computed answers."""
import numpy as np
import pytest
import torch
from torch import nn

from pipeline.attacks.recovery import recovery


def evaluator(classes: int, d: int) -> nn.Sequential:
    """Features = the flattened pixels (the identity layer); logits = a fixed linear map."""
    features = nn.Linear(d, d, bias=False)
    head = nn.Linear(d, classes, bias=False)
    with torch.no_grad():
        features.weight.copy_(torch.eye(d))
        head.weight.copy_(torch.arange(classes * d, dtype=torch.float32).view(classes, d) % 7 - 3)
    return nn.Sequential(nn.Flatten(), features, head)


def test_distances_nearest_images_and_top_k_match_their_definitions():
    rng = np.random.default_rng(0)
    d, classes = 4, 12
    private_x = rng.normal(size=(24, 1, 2, 2)).astype(np.float32)
    private_y = np.repeat(np.arange(classes), 2)
    public_x = rng.normal(size=(30, 1, 2, 2)).astype(np.float32)
    images = np.stack([private_x[5] + 0.01, public_x[7], private_x[0] * 0 + 0.2]).astype(np.float32)
    targets = np.array([2, 2, 0])
    net = evaluator(classes, d)
    r = recovery(net, images, targets, private_x, private_y, public_x)
    flat, pflat = images.reshape(3, -1).astype(np.float64), private_x.reshape(24, -1).astype(np.float64)
    for i, c in enumerate(targets):
        own = pflat[private_y == c]
        dist = np.linalg.norm(own - flat[i], axis=1)
        assert r["knn"][i] == pytest.approx(dist.min(), rel=1e-6)  # the features are the pixels here
        assert r["centroid"][i] == pytest.approx(np.linalg.norm(own.mean(0) - flat[i]), rel=1e-6)
        assert r["private"][i] == np.flatnonzero(private_y == c)[dist.argmin()]
        pub = np.linalg.norm(public_x.reshape(30, -1) - flat[i], axis=1)
        assert r["public"][i] == pub.argmin() and r["public_distance"][i] == pytest.approx(pub.min(), rel=1e-6)
    assert r["private"][0] == 5 and r["knn"][0] == pytest.approx(0.02, rel=1e-4)
    assert list(r["nearer_private"][:2]) == [True, False]  # a copy of a private image; a copy of a public one
    with torch.no_grad():
        logits = net(torch.as_tensor(images)).numpy()
    ranks = np.argsort(-logits, axis=1)
    assert np.array_equal(r["label"], ranks[:, 0])
    assert np.array_equal(r["top5"], [t in ranks[i, :5] for i, t in enumerate(targets)])


def test_no_images_give_empty_results():
    r = recovery(evaluator(3, 4), np.zeros((0, 1, 2, 2), np.float32), np.zeros(0, int), np.zeros((3, 1, 2, 2)),
                 np.arange(3), np.zeros((2, 1, 2, 2)))
    assert all(len(v) == 0 for v in r.values())
