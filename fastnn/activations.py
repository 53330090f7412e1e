"""Activation functions by object, for ``Dense(activation=...)`` (Keras 3 style).

``Dense`` takes an activation by name (``"relu"``, ``"leaky_relu"``, ``"gelu"``, ...,
see :data:`fastnn.kernels.contract.ALL_ACTIVATIONS`) or by one of the functions
below.  The one setting a name cannot carry is ``leaky_relu``'s slope: pass
``functools.partial(fastnn.activations.leaky_relu, negative_slope=0.1)``; the plain
name or function uses Keras 3's ``keras.activations.leaky_relu`` default 0.2
(note ``keras.layers.LeakyReLU`` defaults to 0.3).

Each function computes ``activation(x)`` for an array ``x`` of any shape through the
current backend's ``dense_forward`` (the contract's definition); that path forms an
identity product, so it is a convenience, not a fast path.
"""

from __future__ import annotations

import functools

import numpy as np

from fastnn.kernels.contract import ALL_ACTIVATIONS, LEAKY_RELU_SLOPE

from .dispatch import validation as chk


def _apply(name: str, x, **kw) -> np.ndarray:
    from . import dispatch

    X = np.asarray(x)
    if X.dtype not in chk.FLOAT_DTYPES:
        X = X.astype(np.float64)
    shape = X.shape
    X2 = np.ascontiguousarray(X.reshape(-1, shape[-1] if X.ndim else 1))
    k = X2.shape[1]
    eye = np.eye(k, dtype=X2.dtype)
    _, Y = dispatch.get_ops().dense_forward(X2, eye, np.zeros(k, X2.dtype), name, **kw)
    return Y.reshape(shape)


def linear(x):
    return _apply("linear", x)


def sigmoid(x):
    return _apply("sigmoid", x)


def relu(x):
    return _apply("relu", x)


def tanh(x):
    return _apply("tanh", x)


def softmax(x):
    """Softmax over the last axis."""
    return _apply("softmax", x)


def leaky_relu(x, negative_slope=LEAKY_RELU_SLOPE):
    """``x`` if ``x > 0`` else ``negative_slope * x`` (Keras 3 default slope 0.2)."""
    return _apply("leaky_relu", x, negative_slope=float(negative_slope))


def elu(x):
    """``x`` if ``x > 0`` else ``exp(x) - 1`` (alpha = 1)."""
    return _apply("elu", x)


def gelu(x):
    """``x * Phi(x)`` with the exact ``erf`` (Keras' ``approximate=False``)."""
    return _apply("gelu", x)


def softplus(x):
    return _apply("softplus", x)


def silu(x):
    """``x * sigmoid(x)`` (a.k.a. swish)."""
    return _apply("silu", x)


_FUNCTIONS = {
    f.__name__: f
    for f in (linear, sigmoid, relu, tanh, softmax, leaky_relu, elu, gelu, softplus, silu)
}


def resolve(identifier) -> tuple[str, float | None]:
    """``(name, negative_slope)`` of an activation given to ``Dense``.

    Accepts ``None`` (linear), a name in ``ALL_ACTIVATIONS``, a function of this
    module, ``functools.partial(leaky_relu, negative_slope=s)``, or the saved form
    ``{"name": "leaky_relu", "negative_slope": s}``.  ``negative_slope`` is None
    unless the activation is ``leaky_relu``.
    """
    if identifier is None:
        return "linear", None
    slope = None
    if isinstance(identifier, functools.partial) and identifier.func is leaky_relu:
        if identifier.args or set(identifier.keywords) - {"negative_slope"}:
            raise ValueError(
                "functools.partial(fastnn.activations.leaky_relu, ...) may only set "
                "negative_slope=, e.g. partial(leaky_relu, negative_slope=0.1)"
            )
        name = "leaky_relu"
        slope = identifier.keywords.get("negative_slope", LEAKY_RELU_SLOPE)
    elif isinstance(identifier, dict) and set(identifier) <= {"name", "negative_slope"}:
        name = identifier.get("name")
        slope = identifier.get("negative_slope")
    elif callable(identifier) and _FUNCTIONS.get(getattr(identifier, "__name__", "")) is identifier:
        name = identifier.__name__
    elif isinstance(identifier, str):
        name = identifier
    else:
        raise ValueError(
            f"unknown activation {identifier!r}: pass a name such as 'relu' or a function "
            "of fastnn.activations (other callables cannot run inside the fused trainer)"
        )
    chk.check_name("activation", name, ALL_ACTIVATIONS)
    if name != "leaky_relu":
        if slope is not None:
            raise ValueError(f"negative_slope only applies to 'leaky_relu', not {name!r}")
        return name, None
    slope = LEAKY_RELU_SLOPE if slope is None else slope
    return name, chk.check_scalar("negative_slope", slope)
