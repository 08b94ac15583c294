"""The release interface: output perturbation's release refuses any changed label; randomized
response keeps the label at its formula's rate, draws the others uniformly, and repeats a
keyed answer."""
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from pipeline.core.errors import PipelineError
from scipy.stats import chisquare

from pipeline.defenses.release import Perturbed, RandomizedResponse, keep_probability, softmax64


def test_output_perturbation_release_refuses_a_changed_label():
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
    x = torch.randn(6, 1, 2, 2).numpy()
    z = model(torch.as_tensor(x)).detach().double().numpy()

    def swap_top_two(logits, labels):
        out = logits.copy()
        rows, top = np.arange(len(out)), out.argmax(1)
        out[rows, top] = out.min(1) - 1.0
        return SimpleNamespace(probs=softmax64(torch.as_tensor(out)), labels_reverted=0)

    def keep(logits, labels):
        return SimpleNamespace(probs=softmax64(torch.as_tensor(logits)), labels_reverted=0)

    with pytest.raises(PipelineError, match="changed 6 released labels"):
        Perturbed(model, swap_top_two).probs(x, None)
    assert np.array_equal(Perturbed(model, keep).labels(x), z.argmax(1))


@pytest.mark.parametrize("k, epsilon", [(10, 1.0), (2, 1.0), (10, 4.0)])
def test_randomized_response_flips_at_the_formula_rate_to_uniform_other_labels(k, epsilon):
    n = 200_000
    truth = np.arange(n) % k
    x = np.random.default_rng(1).normal(size=(n, 3)).astype(np.float32)
    keep = np.exp(epsilon) / (np.exp(epsilon) + k - 1)
    assert keep_probability(epsilon, k) == pytest.approx(keep, rel=1e-12)
    for keyed in (False, True):
        out = RandomizedResponse(lambda _: truth, k, epsilon, seed=3, keyed=keyed, secret=b"s").labels(x)
        kept = out == truth
        assert abs(kept.mean() - keep) < 4 * np.sqrt(keep * (1 - keep) / n)  # 4 standard errors
        if k > 2:  # the other labels, relative to the true one, are uniform over the k - 1 others
            shift = ((out - truth) % k)[~kept]
            assert shift.min() >= 1 and chisquare(np.bincount(shift, minlength=k)[1:]).pvalue > 1e-3


def test_keyed_randomized_response_repeats_an_answer_and_fresh_does_not():
    x = np.repeat(np.random.default_rng(2).normal(size=(50, 4)).astype(np.float32), 40, axis=0)
    truth = np.zeros(len(x), np.int64)
    keyed = RandomizedResponse(lambda _: truth, 10, 0.5, seed=0, keyed=True, secret=b"s").labels(x).reshape(50, 40)
    fresh = RandomizedResponse(lambda _: truth, 10, 0.5, seed=0).labels(x).reshape(50, 40)
    assert (keyed == keyed[:, :1]).all()  # one answer per input, however often asked
    assert (fresh != fresh[:, :1]).any(axis=1).mean() > 0.9  # fresh: new randomness per query
    other = RandomizedResponse(lambda _: truth, 10, 0.5, seed=0, keyed=True, secret=b"t").labels(x).reshape(50, 40)
    assert (other[:, 0] != keyed[:, 0]).any()  # the answers depend on the secret
