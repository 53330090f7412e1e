"""Optimizers: hyper-parameters and per-parameter state for ``Sequential.fit``.

The update rules themselves are the contract's ops (``sgd_update``,
``adam_update``), applied by ``train_batches``; an optimizer object only holds
its settings, its state arrays (one tuple per parameter, in the order
``W0, b0, W1, b1, ...``) and its step count ``iterations``.

>>> from fastnn.optimizers import SGD, Adam, get
>>> get("adam").learning_rate
0.001
"""

from __future__ import annotations

import numpy as np

from fastnn.kernels.contract import OPTIMIZERS

from .dispatch import validation as chk


class Optimizer:
    """Base class: settings, state arrays and step count of one optimizer."""

    #: Key in :data:`fastnn.kernels.contract.OPTIMIZERS`.
    name: str = ""

    def __init__(self):
        self.state: list[tuple[np.ndarray, ...]] | None = None
        self.iterations = 0

    def hyper(self) -> tuple[float, ...]:
        """Hyper-parameters in the order of ``OPTIMIZERS[name][1]``."""
        raise NotImplementedError

    def get_config(self) -> dict:
        raise NotImplementedError

    def build(self, params) -> None:
        """Zero state arrays shaped like ``params`` (fresh start, ``iterations = 0``)."""
        n_state = len(OPTIMIZERS[self.name][0])
        self.state = [tuple(np.zeros_like(P) for _ in range(n_state)) for P in params]
        self.iterations = 0

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class SGD(Optimizer):
    """Stochastic gradient descent with heavy-ball momentum.

    ``velocity = momentum * velocity - learning_rate * grad``; ``param += velocity``
    (with ``momentum=0`` plain ``param -= learning_rate * grad``).
    """

    name = "sgd"

    def __init__(self, learning_rate=0.01, momentum=0.0):
        super().__init__()
        self.learning_rate = chk.check_scalar("learning_rate", learning_rate, low=0)
        self.momentum = chk.check_scalar("momentum", momentum, low=0, high=1, high_open=True)

    def hyper(self):
        return (self.learning_rate, self.momentum)

    def get_config(self):
        return {"learning_rate": self.learning_rate, "momentum": self.momentum}


class Adam(Optimizer):
    """Adam (Kingma & Ba, 2015) with bias correction; Keras' defaults."""

    name = "adam"

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7):
        super().__init__()
        self.learning_rate = chk.check_scalar("learning_rate", learning_rate, low=0)
        self.beta_1 = chk.check_scalar("beta_1", beta_1, low=0, high=1, high_open=True)
        self.beta_2 = chk.check_scalar("beta_2", beta_2, low=0, high=1, high_open=True)
        self.epsilon = chk.check_scalar("epsilon", epsilon, low=0, low_open=True)

    def hyper(self):
        return (self.learning_rate, self.beta_1, self.beta_2, self.epsilon)

    def get_config(self):
        return {
            "learning_rate": self.learning_rate,
            "beta_1": self.beta_1,
            "beta_2": self.beta_2,
            "epsilon": self.epsilon,
        }


_CLASSES = {"sgd": SGD, "adam": Adam}


def get(identifier) -> Optimizer:
    """An optimizer from a name (``"sgd"``, ``"adam"``, default settings) or an instance."""
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, str) and identifier.strip().lower() in _CLASSES:
        return _CLASSES[identifier.strip().lower()]()
    if isinstance(identifier, str):
        raise ValueError(
            f"unknown optimizer {identifier!r}; valid choices are: "
            f"{', '.join(repr(n) for n in _CLASSES)} (or an instance of "
            "fastnn.optimizers.SGD / Adam)"
        )
    raise TypeError(
        "optimizer must be a name ('sgd', 'adam') or a fastnn.optimizers.Optimizer, "
        f"got {type(identifier).__name__}"
    )


def from_config(name: str, config: dict) -> Optimizer:
    """Rebuild an optimizer saved with :meth:`Optimizer.get_config`."""
    if name not in _CLASSES:
        raise ValueError(f"unknown optimizer {name!r} in saved configuration")
    return _CLASSES[name](**config)
