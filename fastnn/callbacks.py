"""Callbacks for ``Sequential.fit``: :class:`History`, :class:`EarlyStopping`.

``fit`` trains in chunks of consecutive batches (see ``Sequential.fit``);
callbacks run between chunks and between epochs, never inside a compiled
training call.  ``logs`` passed to :meth:`Callback.on_epoch_end` hold that
epoch's ``loss`` (mean over its samples) and, when asked for, ``accuracy``,
``val_loss`` and ``val_accuracy``.
"""

from __future__ import annotations

import math
import numbers
import warnings

import numpy as np


class Callback:
    """Base class; override the hooks you need.  ``self.model`` is set by ``fit``."""

    def __init__(self):
        self.model = None

    def set_model(self, model) -> None:
        self.model = model

    def on_train_begin(self, logs=None) -> None:
        pass

    def on_train_end(self, logs=None) -> None:
        pass

    def on_epoch_begin(self, epoch: int, logs=None) -> None:
        pass

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        pass

    def on_train_batch_end(self, batch: int, logs=None) -> None:
        """After a chunk of batches: ``batch`` is the 0-based index of its last batch."""


class History(Callback):
    """Per-epoch record of one ``fit`` call (returned by it, and kept as ``model.history``).

    * ``history``: dict of per-epoch lists, e.g. ``{"loss": [...], "val_loss": [...]}``;
    * ``epoch``: the 0-based epoch numbers recorded;
    * ``params``: ``{"epochs", "steps", "verbose", "batch_size"}`` of the call;
    * ``stopped_on_nonfinite``: True if training stopped because the loss became NaN
      or infinite (the model then holds the last weights with a finite loss);
      ``nonfinite`` says where (``{"epoch", "batch", "restored_updates"}``).
    """

    def __init__(self):
        super().__init__()
        self.history: dict[str, list[float]] = {}
        self.epoch: list[int] = []
        self.params: dict = {}
        self.stopped_on_nonfinite = False
        self.nonfinite: dict | None = None

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(float(value))

    def extend(self, first_epoch: int, logs: dict) -> None:
        """Record several epochs at once: ``logs`` maps names to per-epoch sequences."""
        n = len(next(iter(logs.values())))
        self.epoch.extend(range(first_epoch, first_epoch + n))
        for key, values in logs.items():
            values = np.asarray(values, dtype=np.float64).tolist()  # Python floats
            self.history.setdefault(key, []).extend(values)

    def plot(self, keys=None, ax=None, label=None):
        """Draw per-epoch curves (default: every key ending in ``loss``); returns the Axes.

        Pass ``ax`` to draw several histories on one figure (e.g. to compare learning
        rates) and ``label`` to prefix their legend entries.  Needs matplotlib
        (``pip install 'fastnn[plot]'``).
        """
        try:
            import matplotlib.pyplot as plt
        except ImportError as exc:
            raise ImportError(
                "History.plot() needs matplotlib, which is not installed here; install it "
                "with `pip install matplotlib` (or `pip install 'fastnn[plot]'`), or plot "
                "history.history yourself"
            ) from exc
        if keys is None:
            keys = [k for k in self.history if k.endswith("loss")]
        elif isinstance(keys, str):
            keys = [keys]
        missing = [k for k in keys if k not in self.history]
        if missing:
            raise ValueError(
                f"no history for {missing}; recorded keys: {sorted(self.history) or 'none'}"
            )
        if ax is None:
            _, ax = plt.subplots()
        epochs = [e + 1 for e in self.epoch]
        for key in keys:
            name = f"{label} {key}" if label else key
            ax.plot(epochs[: len(self.history[key])], self.history[key], label=name)
        ax.set_xlabel("epoch")
        ax.set_ylabel(keys[0] if len(keys) == 1 else "value")
        ax.legend()
        return ax


class EarlyStopping(Callback):
    """Stop training when ``monitor`` has stopped improving (Keras semantics).

    An epoch improves on the best so far by more than ``min_delta`` (lower is
    better for losses; higher for names containing ``acc``, or as ``mode`` says).
    Training stops once ``patience`` epochs in a row have not improved (with
    ``patience=0``, at the first such epoch).  With ``restore_best_weights=True``
    the model ends with the weights of its best epoch, whether or not it stopped early.
    After ``fit``, ``stopped_epoch`` is the 0-based epoch it stopped at (None if it
    did not) and ``best_epoch`` / ``best`` the best epoch and value.
    """

    def __init__(
        self, monitor="val_loss", patience=0, restore_best_weights=False, min_delta=0, mode="auto"
    ):
        super().__init__()
        if not isinstance(monitor, str) or not monitor:
            raise TypeError(f"monitor must be a metric name such as 'val_loss', got {monitor!r}")
        if isinstance(patience, bool) or not isinstance(patience, numbers.Integral):
            raise TypeError(f"patience must be an integer, got {type(patience).__name__}")
        if patience < 0:
            raise ValueError(f"patience must be >= 0, got {patience}")
        if isinstance(min_delta, bool) or not isinstance(min_delta, numbers.Real):
            raise TypeError(f"min_delta must be a real number, got {type(min_delta).__name__}")
        if not math.isfinite(min_delta) or min_delta < 0:
            raise ValueError(f"min_delta must be a finite number >= 0, got {min_delta}")
        if mode not in ("auto", "min", "max"):
            raise ValueError(f"unknown mode {mode!r}; valid choices are: 'auto', 'min', 'max'")
        self.monitor = monitor
        self.patience = int(patience)
        self.restore_best_weights = bool(restore_best_weights)
        self.min_delta = float(min_delta)
        self.mode = mode
        if mode == "auto":
            mode = "max" if "acc" in monitor else "min"
        self._sign = 1.0 if mode == "min" else -1.0
        self._reset()

    def _reset(self):
        self.wait = 0
        self.best = math.inf * self._sign
        self.best_epoch = None
        self.best_weights = None
        self.stopped_epoch = None

    def _improved(self, current: float) -> bool:
        # Written as a comparison that is False for NaN: a NaN epoch never improves.
        return self._sign * (self.best - current) > self.min_delta

    def on_train_begin(self, logs=None):
        self._reset()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.monitor not in logs:
            warnings.warn(
                f"EarlyStopping is monitoring {self.monitor!r}, which is not available; "
                f"available metrics: {', '.join(logs) or 'none'} (val_* need validation_data "
                "or validation_split)",
                RuntimeWarning,
                stacklevel=2,
            )
            return
        current = float(logs[self.monitor])
        self.wait += 1
        if self._improved(current):
            self.best, self.best_epoch, self.wait = current, epoch, 0
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.restore_best_weights and self.best_weights is not None:
            self.model.set_weights(self.best_weights)
