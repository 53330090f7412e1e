"""Weight initializers (Keras names), drawn in float64 then cast to the model dtype.

Draws use a :class:`numpy.random.Generator`, never a backend: the initial weights
depend only on the seed, so one seed gives one training trajectory on every
backend.  ``fan_in``/``fan_out`` are ``W.shape = (n_in, n_out)``.

==================  ======================================================
``glorot_uniform``  U(-l, l), ``l = sqrt(6 / (fan_in + fan_out))``
``glorot_normal``   truncated normal (|x| <= 2 sd), ``sd = sqrt(2 / (fan_in + fan_out))``
``he_uniform``      U(-l, l), ``l = sqrt(6 / fan_in)``
``he_normal``       truncated normal (|x| <= 2 sd), ``sd = sqrt(2 / fan_in)``
``random_normal``   N(0, 0.05^2)
``zeros``, ``ones`` constants
==================  ======================================================

The truncated normals follow Keras: the standard deviation of the *truncated*
distribution is ``sd`` (the underlying normal's is ``sd / 0.8796...``).
"""

from __future__ import annotations

import math

import numpy as np

INITIALIZERS: tuple[str, ...] = (
    "glorot_uniform",
    "glorot_normal",
    "he_uniform",
    "he_normal",
    "random_normal",
    "zeros",
    "ones",
)

# Standard deviation of a standard normal truncated to [-2, 2].
_TRUNC_STD = 0.87962566103423978


def check(name: str, kind: str = "kernel_initializer") -> str:
    if not isinstance(name, str) or name not in INITIALIZERS:
        raise ValueError(
            f"unknown {kind} {name!r}; valid choices are: "
            f"{', '.join(repr(n) for n in INITIALIZERS)}"
        )
    return name


def _truncated_normal(rng: np.random.Generator, sd: float, shape) -> np.ndarray:
    # Redraw values beyond 2 standard deviations (rejection keeps the shape exact).
    scale = sd / _TRUNC_STD
    out = rng.normal(0.0, scale, size=shape)
    bad = np.abs(out) > 2 * scale
    while bad.any():
        out[bad] = rng.normal(0.0, scale, size=int(bad.sum()))
        bad = np.abs(out) > 2 * scale
    return out


def draw(name: str, shape, rng: np.random.Generator, dtype) -> np.ndarray:
    """A C-contiguous array of ``shape`` and ``dtype`` from initializer ``name``."""
    fan_in = shape[0]
    fan_out = shape[1] if len(shape) > 1 else shape[0]
    if name == "zeros":
        values = np.zeros(shape)
    elif name == "ones":
        values = np.ones(shape)
    elif name == "glorot_uniform":
        limit = math.sqrt(6.0 / (fan_in + fan_out))
        values = rng.uniform(-limit, limit, size=shape)
    elif name == "he_uniform":
        limit = math.sqrt(6.0 / fan_in)
        values = rng.uniform(-limit, limit, size=shape)
    elif name == "glorot_normal":
        values = _truncated_normal(rng, math.sqrt(2.0 / (fan_in + fan_out)), shape)
    elif name == "he_normal":
        values = _truncated_normal(rng, math.sqrt(2.0 / fan_in), shape)
    elif name == "random_normal":
        values = rng.normal(0.0, 0.05, size=shape)
    else:
        raise AssertionError(name)  # names are checked when the layer is created
    return np.ascontiguousarray(values, dtype=dtype)
