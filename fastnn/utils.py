"""Keras-style utilities: :func:`set_random_seed`.

``keras.utils.set_random_seed(seed)`` makes a Keras script reproducible; here it
seeds the source of the defaults that would otherwise be random: the ``seed`` of a
``Sequential`` built without one (its initial weights) and the shuffling order of
a ``fit`` called without ``seed=``.  It also seeds Python's :mod:`random` and NumPy's
global generator, as Keras does.
"""

from __future__ import annotations

import random
import secrets
import threading

import numpy as np

from .dispatch import validation as chk

_lock = threading.Lock()
_source: np.random.Generator | None = None


def set_random_seed(seed) -> None:
    """Make every default seed that follows a deterministic function of ``seed``."""
    global _source
    seed = chk.check_int("seed", seed, low=0)
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 (Keras seeds the legacy global too)
    with _lock:
        _source = np.random.default_rng(seed)


def next_seed() -> int:
    """A seed for a default that the user left open (random unless seeded above)."""
    with _lock:
        if _source is not None:
            return int(_source.integers(0, 2**63 - 1))
    return secrets.randbits(63)  # OS entropy, as SeedSequence() draws, without its set-up
