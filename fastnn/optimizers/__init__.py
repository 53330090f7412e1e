"""Optimizers: hyper-parameters and per-parameter state for ``Sequential.fit``.

The update rules themselves are the contract's ops (``sgd_update``,
``adam_update``, ``rmsprop_update``), applied by ``train_batches``; an optimizer object only holds
its settings, its state arrays (one tuple per parameter, in the order
``W0, b0, W1, b1, ...``) and its step count ``iterations``.

Classes (Keras 3 names and defaults): :class:`SGD` (momentum, ``nesterov``),
:class:`Adam`, :class:`AdamW`, :class:`RMSprop`; each takes ``weight_decay`` (decoupled,
``W -= learning_rate * weight_decay * W`` before the step).  Ranges of the
hyper-parameters are the op edge's (``fastnn.dispatch.validation.HYPER_LIMITS``).

>>> from fastnn.optimizers import SGD, Adam, get
>>> get("adam").learning_rate
0.001

``learning_rate`` is a number or a schedule from :mod:`fastnn.optimizers.schedules`
(evaluated per update step inside the fused trainer); callbacks such as
``ReduceLROnPlateau`` assign a new number to ``optimizer.learning_rate`` between epochs.
"""

from __future__ import annotations

import numpy as np

from fastnn.kernels.contract import ALL_OPTIMIZERS

from ..dispatch import validation as chk
from . import schedules
from .schedules import LearningRateSchedule


class Optimizer:
    """Base class: settings, state arrays and step count of one optimizer."""

    #: Key in :data:`fastnn.kernels.contract.ALL_OPTIMIZERS`.
    name: str = ""

    def __init__(self):
        self.state: list[tuple[np.ndarray, ...]] | None = None
        self.iterations = 0
        self._learning_rate: float | LearningRateSchedule = 0.0

    @property
    def learning_rate(self):
        """A number, or a :class:`~fastnn.optimizers.schedules.LearningRateSchedule`."""
        return self._learning_rate

    @learning_rate.setter
    def learning_rate(self, value):
        if isinstance(value, LearningRateSchedule):
            self._learning_rate = value
        else:
            self._learning_rate = chk.check_scalar("learning_rate", value, low=0)

    @property
    def schedule(self) -> LearningRateSchedule | None:
        lr = self._learning_rate
        return lr if isinstance(lr, LearningRateSchedule) else None

    def current_learning_rate(self) -> float:
        """The rate of the next update (the schedule at ``iterations``, or the number)."""
        s = self.schedule
        return float(s(self.iterations)) if s is not None else self._learning_rate

    def learning_rates(self, n: int) -> np.ndarray | None:
        """Rates of the next ``n`` updates (float64), or None for a constant rate."""
        s = self.schedule
        if s is None:
            return None
        steps = np.arange(self.iterations, self.iterations + n, dtype=np.float64)
        return np.asarray(s.rates(steps), dtype=np.float64)

    def _lr_config(self):
        s = self.schedule
        return schedules.serialize(s) if s is not None else self._learning_rate

    def hyper(self) -> tuple[float, ...]:
        """All hyper-parameters, in the order of ``ALL_OPTIMIZERS[name][1]``."""
        raise NotImplementedError

    def get_config(self) -> dict:
        raise NotImplementedError

    def build(self, params) -> None:
        """Zero state arrays shaped like ``params`` (fresh start, ``iterations = 0``)."""
        n_state = len(ALL_OPTIMIZERS[self.name][0])
        self.state = [tuple(np.zeros_like(P) for _ in range(n_state)) for P in params]
        self.iterations = 0

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


def _weight_decay(value) -> float:
    """Keras' ``weight_decay=None`` is no decay (0)."""
    return 0.0 if value is None else chk.check_hyper("weight_decay", value)


class SGD(Optimizer):
    """Stochastic gradient descent with momentum (Keras 3's ``SGD``)::

        W -= learning_rate * weight_decay * W           (if weight_decay; decoupled)
        velocity = momentum * velocity - learning_rate * grad
        W += velocity                                    (nesterov=False)
        W += momentum * velocity - learning_rate * grad  (nesterov=True)

    With ``momentum=0``: plain ``W -= learning_rate * grad``.  Weight decay applies to
    every trainable parameter (biases included, as Keras does by default).
    """

    name = "sgd"

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, weight_decay=None):
        super().__init__()
        self.learning_rate = learning_rate
        self.momentum = chk.check_hyper("momentum", momentum)
        self.nesterov = bool(chk.check_hyper("nesterov", nesterov))
        self.weight_decay = _weight_decay(weight_decay)

    def hyper(self):
        return (self.current_learning_rate(), self.momentum, float(self.nesterov),
                self.weight_decay)  # fmt: skip

    def get_config(self):
        return {"learning_rate": self._lr_config(), "momentum": self.momentum,
                "nesterov": self.nesterov, "weight_decay": self.weight_decay or None}  # fmt: skip


class Adam(Optimizer):
    """Adam with bias correction, in Keras 3's form and with Keras' defaults::

        W -= learning_rate * weight_decay * W              (if weight_decay; decoupled)
        m = beta_1 m + (1 - beta_1) g;   v = beta_2 v + (1 - beta_2) g^2
        alpha = learning_rate * sqrt(1 - beta_2^t) / (1 - beta_1^t)
        W -= alpha * m / (sqrt(v) + epsilon)

    The choice of form: ``epsilon`` sits OUTSIDE the bias correction, as in
    ``keras/src/optimizers/adam.py`` (and scikit-learn's MLP), because fastnn's names
    follow Keras; the contract op runs it with ``eps_outside=1``.  PyTorch's
    ``torch.optim.Adam``/``AdamW`` (and the paper) divide by
    ``sqrt(v / (1 - beta_2^t)) + epsilon`` instead: the two differ only in where
    ``epsilon`` sits (PyTorch's ``eps`` equals Keras' ``eps * sqrt(1 - beta_2^t)``
    here), by a relative ``~epsilon / sqrt(v)`` per step.  Hand-written
    ``adam_update(..., eps_outside=False)`` calls still give PyTorch's form.
    """

    name = "adam"

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
                 weight_decay=None):  # fmt: skip
        super().__init__()
        self.learning_rate = learning_rate
        self.beta_1 = chk.check_hyper("beta1", beta_1, "beta_1")
        self.beta_2 = chk.check_hyper("beta2", beta_2, "beta_2")
        self.epsilon = chk.check_hyper("eps", epsilon, "epsilon")
        self.weight_decay = _weight_decay(weight_decay)

    def hyper(self):
        # eps_outside = 1: Keras 3's form (see the class docstring).
        return (self.current_learning_rate(), self.beta_1, self.beta_2, self.epsilon,
                self.weight_decay, 1.0)  # fmt: skip

    def get_config(self):
        return {
            "learning_rate": self._lr_config(),
            "beta_1": self.beta_1,
            "beta_2": self.beta_2,
            "epsilon": self.epsilon,
            "weight_decay": self.weight_decay or None,
        }


class AdamW(Adam):
    """Adam with decoupled weight decay (Keras 3's ``AdamW``: default
    ``weight_decay=0.004``); the same update as :class:`Adam`."""

    def __init__(self, learning_rate=0.001, weight_decay=0.004, beta_1=0.9, beta_2=0.999,
                 epsilon=1e-7):  # fmt: skip
        if weight_decay is None:
            raise ValueError("AdamW needs a weight_decay (Keras' default is 0.004)")
        super().__init__(learning_rate, beta_1, beta_2, epsilon, weight_decay)


class RMSprop(Optimizer):
    """RMSprop, Keras 3's form (not centered) and defaults::

        W -= learning_rate * weight_decay * W           (if weight_decay; decoupled)
        ms = rho * ms + (1 - rho) * g^2
        inc = learning_rate * g / sqrt(ms + epsilon)
        momentum > 0: mom = momentum * mom + inc; W -= mom      else W -= inc

    PyTorch's ``torch.optim.RMSprop`` puts ``eps`` outside the root
    (``g / (sqrt(ms) + eps)``); the two agree for ``epsilon = 0``.
    """

    name = "rmsprop"

    def __init__(self, learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7,
                 weight_decay=None):  # fmt: skip
        super().__init__()
        self.learning_rate = learning_rate
        self.rho = chk.check_hyper("rho", rho)
        self.momentum = chk.check_hyper("momentum", momentum)
        self.epsilon = chk.check_hyper("eps", epsilon, "epsilon")
        self.weight_decay = _weight_decay(weight_decay)

    def hyper(self):
        return (self.current_learning_rate(), self.rho, self.momentum, self.epsilon,
                self.weight_decay)  # fmt: skip

    def get_config(self):
        return {"learning_rate": self._lr_config(), "rho": self.rho, "momentum": self.momentum,
                "epsilon": self.epsilon, "weight_decay": self.weight_decay or None}  # fmt: skip


_CLASSES = {"sgd": SGD, "adam": Adam, "adamw": AdamW, "rmsprop": RMSprop}


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
            "fastnn.optimizers.SGD / Adam / AdamW / RMSprop)"
        )
    raise TypeError(
        "optimizer must be a name ('sgd', 'adam', 'adamw', 'rmsprop') or a "
        "fastnn.optimizers.Optimizer, "
        f"got {type(identifier).__name__}"
    )


def key_of(opt: Optimizer) -> str:
    """The saved name of ``opt``'s class (``"sgd"``, ``"adam"``, ``"adamw"``, ``"rmsprop"``)."""
    for key, cls in _CLASSES.items():
        if type(opt) is cls:
            return key
    return opt.name


def from_config(name: str, config: dict) -> Optimizer:
    """Rebuild an optimizer saved with :meth:`Optimizer.get_config`."""
    if name not in _CLASSES:
        raise ValueError(f"unknown optimizer {name!r} in saved configuration")
    config = dict(config)
    if isinstance(config.get("learning_rate"), dict):
        config["learning_rate"] = schedules.deserialize(config["learning_rate"])
    return _CLASSES[name](**config)
