"""The release interface: output perturbation's release refuses any changed label."""
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from pipeline.core.errors import PipelineError
from pipeline.defenses.release import Perturbed, softmax64


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
