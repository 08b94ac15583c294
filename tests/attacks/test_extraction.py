"""Distillation on toys with known answers: a linear teacher is learnt from enough of its labels
and not from a handful; abstentions are dropped; keyed Robust Privacy answers make the student a
deterministic function of the seed; the transfer sets and the white-box inversion."""
import io
from functools import partial

import numpy as np
import pytest
import torch
from torch import nn

from pipeline.attacks import extraction
from pipeline.core.training import predict
from pipeline.smoothing import ABSTAIN, Smooth
from pipeline.smoothing.stats import wilson_interval
from pipeline.tabular.mlp import mlp
from tests.helpers import one_thread

DIM = 4
W = torch.tensor([[1.0, -2.0, 0.5, 1.5]])
RECIPE = {"epochs": 20, "batch_size": 64, "lr": 0.01}


def linear_teacher() -> nn.Sequential:
    """Two logits, 0 and w.x: label 1 iff w.x > 0."""
    layer = nn.Linear(DIM, 2)
    with torch.no_grad():
        layer.weight.copy_(torch.cat([torch.zeros(1, DIM), W]))
        layer.bias.zero_()
    return nn.Sequential(layer).eval()


def points(count: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((count, DIM)).astype(np.float32)


def student() -> nn.Sequential:
    return mlp(DIM, 16)


def state_bytes(model: nn.Module) -> bytes:
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    return buf.getvalue()


def test_a_linear_teacher_is_learnt_from_enough_labels_and_not_from_a_few():
    teacher, held_out = linear_teacher(), points(2000, 1)
    truth = predict(teacher, held_out)
    with one_thread():
        many = extraction.distill(partial(predict, teacher), points(2000, 0), student, RECIPE, seed=0)
        few = extraction.distill(partial(predict, teacher), points(4, 0), student, RECIPE, seed=0)
    assert (many.answered, many.abstained) == (2000, 0)
    assert extraction.agreement(predict(many.model, held_out), truth)[1] > 0.97  # the interval's lower end
    assert extraction.agreement(predict(few.model, held_out), truth)[2] < 0.9


def test_abstentions_are_dropped_and_counted():
    teacher, queries = linear_teacher(), points(600, 2)
    margin = (torch.from_numpy(queries) @ W.T)[:, 0].numpy()

    def abstaining(x):  # the service abstains near its boundary
        return np.where(np.abs(x @ W.numpy()[0]) < 0.5, ABSTAIN, predict(teacher, x))

    kept = np.abs(margin) >= 0.5
    with one_thread():
        got = extraction.distill(abstaining, queries, student, RECIPE, seed=3)
        direct = extraction.distill(partial(predict, teacher), queries[kept], student, RECIPE, seed=3)
    assert (got.answered, got.abstained) == (int(kept.sum()), int((~kept).sum()))
    assert 0 < got.abstained < len(queries)
    assert state_bytes(got.model) == state_bytes(direct.model)  # trained on the answered queries alone


def test_only_abstentions_leave_the_student_as_initialised():
    got = extraction.distill(lambda x: np.full(len(x), ABSTAIN), points(50, 0), student, RECIPE, seed=7)
    torch.manual_seed(7)
    assert (got.answered, got.abstained) == (0, 50)
    assert state_bytes(got.model) == state_bytes(student())


def test_keyed_answers_make_the_student_a_function_of_the_seed():
    queries = points(300, 4)

    def twice(noise):
        served = Smooth(linear_teacher(), 2, 1.0, noise=noise, seed=0, secret=b"key")  # one service, asked twice
        with one_thread():
            return [state_bytes(extraction.distill(partial(served.vote, n=5), queries, student, RECIPE, 5).model)
                    for _ in range(2)]

    first, second = twice("keyed")
    assert first == second
    first, second = twice("fresh")  # fresh noise answers the repeated queries anew: another student
    assert first != second


def test_agreement_is_the_share_of_equal_labels_with_its_wilson_interval():
    share, low, high = extraction.agreement(np.array([0, 1, 1, ABSTAIN, 2]), np.array([0, 1, 0, ABSTAIN, 1]))
    assert share == 0.6
    assert (low, high) == pytest.approx(tuple(float(v) for v in wilson_interval(3, 5)))


def test_the_tabular_transfer_set_has_standard_numerics_and_uniform_one_hot_groups():
    names = ["age", "bmi", "sex=F", "sex=M", "region=a", "region=b", "region=c", "income"]
    x = extraction.transfer_set_tabular(names, 30000, seed=0)
    assert x.dtype == np.float32 and x.shape == (30000, len(names))
    numeric = x[:, [0, 1, 7]]
    assert np.abs(numeric.mean(axis=0)).max() < 0.03 and np.abs(numeric.std(axis=0) - 1).max() < 0.02
    for columns in ([2, 3], [4, 5, 6]):
        group = x[:, columns]
        assert set(np.unique(group)) == {0.0, 1.0} and (group.sum(axis=1) == 1).all()
        share = group.mean(axis=0)  # 1 / k each: binomial standard error below 0.003
        assert np.abs(share - 1 / len(columns)).max() < 0.015
    assert np.array_equal(x[:2500], extraction.transfer_set_tabular(names, 2500, seed=0))  # budgets nest


class Latents(nn.Module):
    """A 'generator' whose image is its latent (4 numbers as 1 x 2 x 2): unlike the public
    images below, its pixels differ from each other."""

    def forward(self, z):
        return z.view(-1, 1, 2, 2)


def test_the_image_transfer_set_is_the_public_pool_topped_up_by_generator_samples():
    pool = np.arange(10, dtype=np.float32)[:, None, None, None] * np.ones((1, 1, 2, 2), np.float32)
    few = extraction.transfer_set_images(pool, 4, seed=0)
    assert len(np.unique(few[:, 0, 0, 0])) == 4 and np.isin(few[:, 0, 0, 0], np.arange(10)).all()
    more = extraction.transfer_set_images(pool, 1500, seed=0, G=Latents(), z_dim=4)
    assert sorted(more[:10, 0, 0, 0]) == list(range(10)) and (more[:10].std(axis=(1, 2, 3)) == 0).all()
    assert (more[10:].std(axis=(1, 2, 3)) > 0).all() and len(np.unique(more[10:, 0, 0, 0])) == 1490
    assert np.array_equal(few, more[:4])  # budgets nest, the generator's samples too
    assert np.array_equal(more[:1100], extraction.transfer_set_images(pool, 1100, seed=0, G=Latents(), z_dim=4))
    with pytest.raises(ValueError, match="no generator"):
        extraction.transfer_set_images(pool, 11, seed=0)


def test_gradient_inversion_drives_each_latent_to_its_class_corner():
    """G the identity on the plane, logits (z_0, -z_0): class 0 is most likely at z_0 = +clamp,
    class 1 at z_0 = -clamp; z_1 has no gradient and stays at its clamped start."""
    model = nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[1.0, 0.0], [-1.0, 0.0]]))
    identity = nn.Identity()
    starts, found = extraction.gradient_inversion(identity, model, np.array([0, 1, 0]), 2, steps=200, lr=0.1,
                                                  clamp=1.5, seed=0)
    assert found[:, 0] == pytest.approx([1.5, -1.5, 1.5])
    assert found[:, 1] == pytest.approx(starts[:, 1]) and np.abs(starts).max() <= 1.5
