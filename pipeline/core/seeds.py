"""Seeds of the pipeline's random streams: every stream is named by a path of integers (a role,
a configuration, a class, a position, ...) under the one ``seed`` of params.yaml, so a result
depends on where it sits in the experiment, never on the order in which work runs."""
from __future__ import annotations

import numpy as np


def derive_seed(seed: int, *path: int) -> int:
    """An independent 63-bit seed for the random stream at ``path`` (a role, a configuration,
    a class, ...) under the pipeline's ``seed`` (numpy's SeedSequence)."""
    return int(np.random.SeedSequence([seed, *path]).generate_state(1, np.uint64)[0] >> 1)


def mix(*values: int) -> int:
    """A 63-bit seed from integers (splitmix64 finaliser), so distinct tuples get unrelated streams."""
    h = 0x9E3779B97F4A7C15
    for v in values:
        h = (h ^ (v & 0xFFFFFFFFFFFFFFFF)) * 0xBF58476D1CE4E5B9 & 0xFFFFFFFFFFFFFFFF
        h = (h ^ (h >> 27)) * 0x94D049BB133111EB & 0xFFFFFFFFFFFFFFFF
        h ^= h >> 31
    return h >> 1
