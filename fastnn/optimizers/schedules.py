"""Learning-rate schedules (Keras 3's ``keras.optimizers.schedules``), per update step.

Pass one as ``learning_rate=`` of :class:`fastnn.optimizers.SGD` / ``Adam``.  Update
``t`` (1-based) uses ``schedule(t - 1)``, i.e. the optimizer's ``iterations`` before
that update, as Keras does.  ``fit`` evaluates the schedule for every batch of a
training call at once and hands the rates to the fused trainer (the contract's
``train_batches(..., lrs=)``), so a schedule does not slow training down.

Every schedule accepts a scalar step or a NumPy array of steps and returns float64.
"""

from __future__ import annotations

import math

import numpy as np

from ..dispatch import validation as chk


class LearningRateSchedule:
    """Base class: ``schedule(step) -> learning rate``; override :meth:`rates`."""

    def rates(self, step: np.ndarray) -> np.ndarray:
        """Learning rates (float64) for the 0-based update counts ``step``."""
        raise NotImplementedError

    def __call__(self, step):
        out = self.rates(np.asarray(step, dtype=np.float64))
        return float(out) if np.ndim(out) == 0 else out

    def get_config(self) -> dict:
        raise NotImplementedError

    @classmethod
    def from_config(cls, config: dict):
        return cls(**config)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


def _rate(name, value):
    return chk.check_scalar(name, value, low=0)


def _steps(name, value):
    return chk.check_scalar(name, value, low=0, low_open=True)


class ExponentialDecay(LearningRateSchedule):
    """``initial_learning_rate * decay_rate ** (step / decay_steps)`` (the exponent
    floored when ``staircase``)."""

    def __init__(self, initial_learning_rate, decay_steps, decay_rate, staircase=False):
        self.initial_learning_rate = _rate("initial_learning_rate", initial_learning_rate)
        self.decay_steps = _steps("decay_steps", decay_steps)
        self.decay_rate = chk.check_scalar("decay_rate", decay_rate, low=0)
        self.staircase = bool(staircase)

    def rates(self, step):
        p = step / self.decay_steps
        if self.staircase:
            p = np.floor(p)
        return self.initial_learning_rate * np.power(self.decay_rate, p)

    def get_config(self):
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "decay_steps": self.decay_steps,
            "decay_rate": self.decay_rate,
            "staircase": self.staircase,
        }


class InverseTimeDecay(LearningRateSchedule):
    """``initial_learning_rate / (1 + decay_rate * step / decay_steps)`` (the ratio
    floored when ``staircase``)."""

    def __init__(self, initial_learning_rate, decay_steps, decay_rate, staircase=False):
        self.initial_learning_rate = _rate("initial_learning_rate", initial_learning_rate)
        self.decay_steps = _steps("decay_steps", decay_steps)
        self.decay_rate = chk.check_scalar("decay_rate", decay_rate, low=0)
        self.staircase = bool(staircase)

    def rates(self, step):
        p = step / self.decay_steps
        if self.staircase:
            p = np.floor(p)
        return self.initial_learning_rate / (1 + self.decay_rate * p)

    def get_config(self):
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "decay_steps": self.decay_steps,
            "decay_rate": self.decay_rate,
            "staircase": self.staircase,
        }


class PiecewiseConstantDecay(LearningRateSchedule):
    """``values[0]`` while ``step <= boundaries[0]``, ``values[1]`` while
    ``boundaries[0] < step <= boundaries[1]``, ..., ``values[-1]`` after the last."""

    def __init__(self, boundaries, values):
        if not isinstance(boundaries, (list, tuple)) or not isinstance(values, (list, tuple)):
            raise TypeError("boundaries and values must be lists")
        if len(values) != len(boundaries) + 1:
            raise ValueError(
                f"values must have one more entry than boundaries: got {len(boundaries)} "
                f"boundaries and {len(values)} values"
            )
        self.boundaries = [
            chk.check_scalar(f"boundaries[{i}]", b) for i, b in enumerate(boundaries)
        ]
        if any(b >= c for b, c in zip(self.boundaries, self.boundaries[1:])):
            raise ValueError(f"boundaries must increase strictly, got {self.boundaries}")
        self.values = [_rate(f"values[{i}]", v) for i, v in enumerate(values)]

    def rates(self, step):
        # side="left": a step equal to a boundary still gets the earlier value.
        index = np.searchsorted(np.asarray(self.boundaries, dtype=np.float64), step, side="left")
        return np.asarray(self.values, dtype=np.float64)[index]

    def get_config(self):
        return {"boundaries": list(self.boundaries), "values": list(self.values)}


class CosineDecay(LearningRateSchedule):
    """Cosine decay (Loshchilov & Hutter's SGDR without restarts), Keras 3's definition.

    Without warm-up: ``initial_learning_rate * ((1 - alpha) * c + alpha)`` with
    ``c = 0.5 * (1 + cos(pi * min(step, decay_steps) / decay_steps))``.  With
    ``warmup_steps > 0`` and ``warmup_target``: a linear ramp from
    ``initial_learning_rate`` to ``warmup_target`` over ``warmup_steps``, then the
    decay above from ``warmup_target`` on ``step - warmup_steps``.
    """

    def __init__(
        self, initial_learning_rate, decay_steps, alpha=0.0, warmup_target=None, warmup_steps=0
    ):
        self.initial_learning_rate = _rate("initial_learning_rate", initial_learning_rate)
        self.decay_steps = _steps("decay_steps", decay_steps)
        self.alpha = chk.check_scalar("alpha", alpha, low=0, high=1)
        self.warmup_target = (
            None if warmup_target is None else _rate("warmup_target", warmup_target)
        )
        self.warmup_steps = chk.check_scalar("warmup_steps", warmup_steps, low=0)

    def _decay(self, start, step):
        c = 0.5 * (1 + np.cos(math.pi * np.minimum(step, self.decay_steps) / self.decay_steps))
        return start * ((1 - self.alpha) * c + self.alpha)

    def rates(self, step):
        if self.warmup_target is None or self.warmup_steps == 0:
            return self._decay(self.initial_learning_rate, step)
        ramp = self.initial_learning_rate + (self.warmup_target - self.initial_learning_rate) * (
            step / self.warmup_steps
        )
        after = self._decay(self.warmup_target, step - self.warmup_steps)
        return np.where(step < self.warmup_steps, ramp, after)

    def get_config(self):
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "decay_steps": self.decay_steps,
            "alpha": self.alpha,
            "warmup_target": self.warmup_target,
            "warmup_steps": self.warmup_steps,
        }


#: Class names in saved configurations -> classes.
SCHEDULES: dict[str, type[LearningRateSchedule]] = {
    cls.__name__: cls
    for cls in (ExponentialDecay, InverseTimeDecay, PiecewiseConstantDecay, CosineDecay)
}


def serialize(schedule: LearningRateSchedule) -> dict:
    return {"class_name": type(schedule).__name__, "config": schedule.get_config()}


def deserialize(entry: dict) -> LearningRateSchedule:
    name = entry.get("class_name") if isinstance(entry, dict) else None
    if name not in SCHEDULES:
        raise ValueError(f"unknown learning-rate schedule {entry!r}")
    return SCHEDULES[name].from_config(entry["config"])
