"""Weight regularizers for ``Dense(kernel_regularizer=...)``, with Keras 3's meaning.

A regularizer adds a penalty on a layer's kernel ``W`` to the loss being minimized::

    L1(l1)        l1 * sum|W|                  (Keras 3 default l1 = 0.01)
    L2(l2)        l2 * sum W^2                 (Keras 3 default l2 = 0.01)
    L1L2(l1, l2)  l1 * sum|W| + l2 * sum W^2   (defaults 0.0, 0.0)

The penalty is added once per update (not per row), to the loss ``fit`` reports in
``History`` and to ``evaluate``'s loss, as Keras does.  The number comes from the
contract's ``penalty`` op (``scale = 1``), run inside ``train_batches`` during ``fit``.
Biases are never penalized (``bias_regularizer`` is not supported).

>>> from fastnn import regularizers
>>> regularizers.get("l2").get_config()
{'l2': 0.01}
"""

from __future__ import annotations

import numpy as np

from .dispatch import validation as chk


class Regularizer:
    """Base class: the coefficients ``(l1, l2)`` of the contract's ``penalty`` op."""

    l1: float = 0.0
    l2: float = 0.0

    def pair(self) -> tuple[float, float]:
        """``(l1, l2)`` as the contract's ``penalties=`` entries take them."""
        return (self.l1, self.l2)

    def __call__(self, W) -> float:
        """The penalty of ``W`` (computed by the current backend's ``penalty`` op)."""
        from . import dispatch

        W = np.ascontiguousarray(W, dtype=np.float64)
        return dispatch.get_ops().penalty(W, np.zeros_like(W), self.l1, self.l2)

    def get_config(self) -> dict:
        raise NotImplementedError

    @classmethod
    def from_config(cls, config: dict):
        return cls(**config)

    def __eq__(self, other) -> bool:
        return type(self) is type(other) and self.pair() == other.pair()

    def __hash__(self) -> int:
        return hash((type(self).__name__, self.pair()))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


def _coefficient(name: str, value) -> float:
    return chk.check_scalar(name, value, low=0)


class L1(Regularizer):
    """``l1 * sum|W|`` (gradient ``l1 * sign(W)``)."""

    def __init__(self, l1=0.01):
        self.l1 = _coefficient("l1", l1)

    def get_config(self) -> dict:
        return {"l1": self.l1}


class L2(Regularizer):
    """``l2 * sum W^2`` (gradient ``2 * l2 * W``; Keras' meaning, no 1/2 factor)."""

    def __init__(self, l2=0.01):
        self.l2 = _coefficient("l2", l2)

    def get_config(self) -> dict:
        return {"l2": self.l2}


class L1L2(Regularizer):
    """``l1 * sum|W| + l2 * sum W^2``."""

    def __init__(self, l1=0.0, l2=0.0):
        self.l1 = _coefficient("l1", l1)
        self.l2 = _coefficient("l2", l2)

    def get_config(self) -> dict:
        return {"l1": self.l1, "l2": self.l2}


#: Names ``get`` accepts (Keras 3's), each with its default coefficients.
NAMES: dict[str, type[Regularizer]] = {"l1": L1, "l2": L2, "l1_l2": L1L2}

#: Class names in saved configurations.
CLASSES: dict[str, type[Regularizer]] = {cls.__name__: cls for cls in (L1, L2, L1L2)}


def get(identifier) -> Regularizer | None:
    """A regularizer from ``None``, a name (``"l1"``, ``"l2"``, ``"l1_l2"``), a saved
    ``{"class_name", "config"}`` dict, or an instance."""
    if identifier is None or isinstance(identifier, Regularizer):
        return identifier
    if isinstance(identifier, str) and identifier.strip().lower() in NAMES:
        return NAMES[identifier.strip().lower()]()
    if isinstance(identifier, dict) and identifier.get("class_name") in CLASSES:
        return CLASSES[identifier["class_name"]].from_config(identifier.get("config", {}))
    raise ValueError(
        f"unknown regularizer {identifier!r}; use None, 'l1', 'l2', 'l1_l2' or an instance "
        "of fastnn.regularizers.L1 / L2 / L1L2"
    )


def serialize(regularizer: Regularizer | None) -> dict | None:
    """The saved form: ``{"class_name", "config"}`` (None stays None)."""
    if regularizer is None:
        return None
    return {"class_name": type(regularizer).__name__, "config": regularizer.get_config()}
