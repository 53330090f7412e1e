"""Callbacks for ``Sequential.fit`` (Keras 3's names and meanings).

:class:`History`, :class:`EarlyStopping`, :class:`ModelCheckpoint`,
:class:`ReduceLROnPlateau`, :class:`LearningRateScheduler`, :class:`CSVLogger`,
:class:`LambdaCallback`, :class:`TerminateOnNaN`.

When hooks run (see :mod:`fastnn.training`):

* ``on_train_begin``/``on_train_end`` once per ``fit``; ``on_epoch_begin``/
  ``on_epoch_end`` around every epoch (``logs`` of ``on_epoch_end`` hold that epoch's
  ``loss``, metrics and ``val_*``; callbacks may add entries, e.g. ``learning_rate``,
  which the ``History`` -- always last -- records too).
* ``on_train_batch_begin``/``on_train_batch_end``: for EVERY batch, but only for a
  callback that overrides one of them; its presence makes ``fit`` call the backend
  once per batch instead of once per fused chunk of batches (slower, especially for
  small batches).  ``logs`` of ``on_train_batch_end`` hold the running means of the
  epoch so far.
* fastnn never calls ``on_test_*``/``on_predict_*`` hooks: a callback defining one
  gets a warning at ``fit`` instead of being skipped silently.
"""

from __future__ import annotations

import csv
import math
import numbers
import os
import warnings

import numpy as np

from . import saving

#: Hooks of Keras callbacks that fastnn does not call.
UNSUPPORTED_HOOKS = (
    "on_test_begin",
    "on_test_end",
    "on_test_batch_begin",
    "on_test_batch_end",
    "on_predict_begin",
    "on_predict_end",
    "on_predict_batch_begin",
    "on_predict_batch_end",
)


class Callback:
    """Base class; override the hooks you need.  ``self.model`` is set by ``fit``,
    ``self.params`` too (``{"epochs", "steps", "verbose", "batch_size"}``)."""

    def __init__(self):
        self.model = None
        self.params: dict = {}

    def set_model(self, model) -> None:
        self.model = model

    def set_params(self, params: dict) -> None:
        self.params = params

    @property
    def wants_batch_hooks(self) -> bool:
        """True if this callback overrides a batch hook (``fit`` then steps per batch)."""
        cls = type(self)
        return (
            cls.on_train_batch_begin is not Callback.on_train_batch_begin
            or cls.on_train_batch_end is not Callback.on_train_batch_end
        )

    def check_hooks(self) -> None:
        """Warn about hooks this callback defines that fastnn never calls."""
        defined = [h for h in UNSUPPORTED_HOOKS if hasattr(self, h)]
        if defined:
            warnings.warn(
                f"{type(self).__name__} defines {', '.join(defined)}, which fastnn never "
                "calls (fit runs validation inside the epoch, predict has no callbacks)",
                RuntimeWarning,
                stacklevel=4,
            )

    def on_train_begin(self, logs=None) -> None:
        pass

    def on_train_end(self, logs=None) -> None:
        pass

    def on_epoch_begin(self, epoch: int, logs=None) -> None:
        pass

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        pass

    def on_train_batch_begin(self, batch: int, logs=None) -> None:
        """Before batch ``batch`` (0-based, within the epoch); overriding it means
        per-batch stepping."""

    def on_train_batch_end(self, batch: int, logs=None) -> None:
        """After batch ``batch``; overriding it means per-batch stepping."""


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
        from matplotlib.ticker import MaxNLocator

        epochs = [e + 1 for e in self.epoch]
        for key in keys:
            name = f"{label} {key}" if label else key
            ax.plot(epochs[: len(self.history[key])], self.history[key], label=name)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole numbers
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


def _check_monitor(monitor, mode):
    if not isinstance(monitor, str) or not monitor:
        raise TypeError(f"monitor must be a metric name such as 'val_loss', got {monitor!r}")
    if mode not in ("auto", "min", "max"):
        raise ValueError(f"unknown mode {mode!r}; valid choices are: 'auto', 'min', 'max'")
    if mode == "auto":
        mode = "max" if "acc" in monitor else "min"
    return 1.0 if mode == "min" else -1.0


def _warn_missing(who: str, monitor: str, logs: dict) -> None:
    warnings.warn(
        f"{who} is monitoring {monitor!r}, which is not available; available metrics: "
        f"{', '.join(logs) or 'none'} (val_* need validation_data or validation_split)",
        RuntimeWarning,
        stacklevel=3,
    )


def _check_real(name, value, low=None):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise TypeError(f"{name} must be a finite real number, got {value!r}")
    if low is not None and value < low:
        raise ValueError(f"{name} must be >= {low}, got {value}")
    return float(value)


def _check_count(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")
    return int(value)


class ModelCheckpoint(Callback):
    """Save the model (or its weights) after every epoch, or only when ``monitor`` improves.

    ``filepath`` may hold ``str.format`` fields: ``{epoch}`` (1-based) and any log
    entry, e.g. ``"ckpt-{epoch:02d}-{val_loss:.3f}.npz"``.  Files are ``.npz`` archives
    written atomically (a crash mid-save leaves the previous file intact); the suffix
    rules of ``Sequential.save`` apply (``.keras``/``.h5`` are refused at once).
    ``save_freq`` must be ``"epoch"``.  After ``fit``, ``best`` is the best value seen.
    """

    def __init__(self, filepath, monitor="val_loss", verbose=0, save_best_only=False,
                 save_weights_only=False, mode="auto", save_freq="epoch",
                 initial_value_threshold=None):  # fmt: skip
        super().__init__()
        self.filepath = os.fspath(filepath)
        saving.resolve_path(self.filepath, "weights" if save_weights_only else "model")
        self.monitor = monitor
        self._sign = _check_monitor(monitor, mode)
        self.verbose = int(verbose)
        self.save_best_only = bool(save_best_only)
        self.save_weights_only = bool(save_weights_only)
        if save_freq != "epoch":
            raise ValueError(
                f"save_freq={save_freq!r} is not supported: fastnn checkpoints once per epoch "
                "(save_freq='epoch')"
            )
        self.save_freq = save_freq
        self.best = (
            math.inf * self._sign
            if initial_value_threshold is None
            else _check_real("initial_value_threshold", initial_value_threshold)
        )

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.save_best_only:
            if self.monitor not in logs:
                _warn_missing("ModelCheckpoint", self.monitor, logs)
                return
            current = float(logs[self.monitor])
            if not self._sign * (self.best - current) > 0:  # False for NaN
                return
            self.best = current
        path = self.filepath.format(epoch=epoch + 1, **logs)
        if self.save_weights_only:
            self.model.save_weights(path)
        else:
            self.model.save(path)
        if self.verbose:
            print(f"Epoch {epoch + 1}: saving model to {path}")


class ReduceLROnPlateau(Callback):
    """Multiply the learning rate by ``factor`` when ``monitor`` has not improved for
    ``patience`` epochs (Keras semantics: improvement means better than the best by
    more than ``min_delta``; after a reduction, ``cooldown`` epochs pass before the
    count restarts; the rate never goes below ``min_lr``).  Adds ``learning_rate`` to
    the epoch's logs.  Needs a numeric learning rate, not a schedule.
    """

    def __init__(self, monitor="val_loss", factor=0.1, patience=10, verbose=0, mode="auto",
                 min_delta=1e-4, cooldown=0, min_lr=0.0):  # fmt: skip
        super().__init__()
        self.monitor = monitor
        self._sign = _check_monitor(monitor, mode)
        self.factor = _check_real("factor", factor, low=0)
        if self.factor >= 1:
            raise ValueError(f"ReduceLROnPlateau does not support a factor >= 1, got {factor}")
        self.patience = _check_count("patience", patience)
        self.verbose = int(verbose)
        self.min_delta = abs(_check_real("min_delta", min_delta))
        self.cooldown = _check_count("cooldown", cooldown)
        self.min_lr = _check_real("min_lr", min_lr, low=0)
        self._reset()

    def _reset(self):
        self.best = math.inf * self._sign
        self.wait = 0
        self.cooldown_counter = 0

    def on_train_begin(self, logs=None):
        _require_numeric_lr(self.model, "ReduceLROnPlateau")
        self._reset()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        opt = self.model.optimizer
        logs["learning_rate"] = float(opt.learning_rate)
        if self.monitor not in logs:
            _warn_missing("ReduceLROnPlateau", self.monitor, logs)
            return
        current = float(logs[self.monitor])
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.wait = 0
        if self._sign * (self.best - current) > self.min_delta:
            self.best, self.wait = current, 0
            return
        if self.cooldown_counter > 0:
            return
        self.wait += 1
        if self.wait >= self.patience:
            old = float(opt.learning_rate)
            if old > self.min_lr:
                new = max(old * self.factor, self.min_lr)
                opt.learning_rate = new
                if self.verbose:
                    print(f"Epoch {epoch + 1}: ReduceLROnPlateau reducing learning rate to {new}.")
                self.cooldown_counter = self.cooldown
                self.wait = 0


def _require_numeric_lr(model, who):
    if model.optimizer.schedule is not None:
        raise TypeError(
            f"{who} sets optimizer.learning_rate, but the optimizer uses a schedule "
            f"({model.optimizer.schedule!r}); use one or the other"
        )


class LearningRateScheduler(Callback):
    """At the start of every epoch, set the learning rate to ``schedule(epoch, lr)``
    (``epoch`` 0-based, ``lr`` the current rate; a one-argument ``schedule(epoch)``
    works too).  Adds ``learning_rate`` to the epoch's logs."""

    def __init__(self, schedule, verbose=0):
        super().__init__()
        if not callable(schedule):
            raise TypeError(f"schedule must be callable, got {type(schedule).__name__}")
        self.schedule = schedule
        self.verbose = int(verbose)

    def on_train_begin(self, logs=None):
        _require_numeric_lr(self.model, "LearningRateScheduler")

    def on_epoch_begin(self, epoch, logs=None):
        opt = self.model.optimizer
        try:
            lr = self.schedule(epoch, float(opt.learning_rate))
        except TypeError:  # a schedule of the epoch only
            lr = self.schedule(epoch)
        if isinstance(lr, np.ndarray) and lr.size == 1:
            lr = lr.item()
        if isinstance(lr, bool) or not isinstance(lr, numbers.Real) or not math.isfinite(lr):
            raise ValueError(f"the schedule must return a finite number, got {lr!r}")
        opt.learning_rate = float(lr)
        if self.verbose:
            print(f"Epoch {epoch + 1}: LearningRateScheduler setting learning rate to {lr}.")

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = float(self.model.optimizer.learning_rate)


class CSVLogger(Callback):
    """Write one CSV row per epoch: ``epoch`` then the logs' keys in sorted order
    (Keras' layout).  ``append=True`` continues an existing file (no second header)."""

    def __init__(self, filename, separator=",", append=False):
        super().__init__()
        self.filename = os.fspath(filename)
        self.sep = separator
        self.append = bool(append)
        self.keys = None
        self._file = None
        self._writer = None

    def on_train_begin(self, logs=None):
        exists = self.append and os.path.exists(self.filename) and os.path.getsize(self.filename)
        self._header = not exists
        self._file = open(self.filename, "a" if self.append else "w", newline="")
        self.keys = None

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.keys is None:
            self.keys = sorted(logs)
            self._writer = csv.DictWriter(
                self._file, fieldnames=["epoch", *self.keys], delimiter=self.sep
            )
            if self._header:
                self._writer.writeheader()
        row = {"epoch": epoch, **{k: logs.get(k, "NA") for k in self.keys}}
        self._writer.writerow(row)
        self._file.flush()

    def on_train_end(self, logs=None):
        if self._file is not None:
            self._file.close()
            self._file = None


class LambdaCallback(Callback):
    """A callback from plain functions, Keras' signatures: ``on_epoch_begin(epoch, logs)``,
    ``on_epoch_end(epoch, logs)``, ``on_train_begin(logs)``, ``on_train_end(logs)``,
    ``on_train_batch_begin(batch, logs)``, ``on_train_batch_end(batch, logs)``
    (``on_batch_begin``/``on_batch_end`` are synonyms).  Batch functions mean
    per-batch stepping (see the module doc)."""

    def __init__(self, on_epoch_begin=None, on_epoch_end=None, on_train_begin=None,
                 on_train_end=None, on_train_batch_begin=None, on_train_batch_end=None,
                 on_batch_begin=None, on_batch_end=None):  # fmt: skip
        super().__init__()
        self._fns = {
            "on_epoch_begin": on_epoch_begin,
            "on_epoch_end": on_epoch_end,
            "on_train_begin": on_train_begin,
            "on_train_end": on_train_end,
            "on_train_batch_begin": on_train_batch_begin or on_batch_begin,
            "on_train_batch_end": on_train_batch_end or on_batch_end,
        }
        for name, fn in self._fns.items():
            if fn is not None and not callable(fn):
                raise TypeError(f"{name} must be callable, got {type(fn).__name__}")

    @property
    def wants_batch_hooks(self) -> bool:
        fns = self._fns
        return fns["on_train_batch_begin"] is not None or fns["on_train_batch_end"] is not None

    def _call(self, name, *args):
        fn = self._fns[name]
        if fn is not None:
            fn(*args)

    def on_epoch_begin(self, epoch, logs=None):
        self._call("on_epoch_begin", epoch, logs)

    def on_epoch_end(self, epoch, logs=None):
        self._call("on_epoch_end", epoch, logs)

    def on_train_begin(self, logs=None):
        self._call("on_train_begin", logs)

    def on_train_end(self, logs=None):
        self._call("on_train_end", logs)

    def on_train_batch_begin(self, batch, logs=None):
        self._call("on_train_batch_begin", batch, logs)

    def on_train_batch_end(self, batch, logs=None):
        self._call("on_train_batch_end", batch, logs)


class TerminateOnNaN(Callback):
    """Stop training when the loss becomes NaN or infinite.

    ``fit`` already does this by itself, per batch and inside the fused trainer
    (``model.stop_on_nonfinite``, on by default, also restores the last finite
    weights); this callback exists for Keras code, and re-enables that check if it
    was switched off.  It adds no batch hooks, so training stays fused.
    """

    def on_train_begin(self, logs=None):
        self.model.stop_on_nonfinite = True

    def on_epoch_end(self, epoch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(loss):
            print(f"Epoch {epoch + 1}: invalid loss, terminating training")
            self.model.stop_training = True
