"""The training loop behind ``Sequential.fit``: calls to the contract's ``train_batches``.

* :class:`Trainer` -- one ``fit`` call's ``train_batches`` calls over chunks of
  consecutive batches, with a :class:`Snapshot` before each call (rollback on
  Ctrl-C, replay to the last finite loss on divergence), per-step learning rates
  from a schedule, and per-batch calls when a callback has batch hooks.
* :class:`EpochLoop` -- epochs around the trainer: shuffling, callbacks, progress,
  validation, the divergence report.

What the layers ask of each call (:func:`train_options`): a :class:`~fastnn.Dropout`
becomes the preceding Dense layer's ``dropout=`` rate; ``trainable=False`` and
``use_bias=False`` become ``trainable=`` flags (a bias-free layer's zero bias is a frozen
parameter, so it is trained at full fused speed); kernel regularizers become
``penalties=``; ``leaky_relu`` slopes ``negative_slopes=``; ``fit``'s per-row weights
``sample_weight=``.  Options at their defaults are not passed, and the optimizer's
trailing zero hyper-parameters are dropped, so a plain model makes the plain call.

Policy on batch hooks: a callback that overrides ``on_train_batch_begin`` or
``on_train_batch_end`` gets them for every batch, which makes ``fit`` call the
backend once per batch (slower: a fused chunk is one call per ~8,192 rows).  Without
such a callback no batch hook exists to call, and batches are fused.  Epoch hooks
always run between epochs.
"""

from __future__ import annotations

import functools
import math
import warnings
from dataclasses import dataclass

import numpy as np

from fastnn.kernels.contract import HYPER_REQUIRED

from . import data_checks
from .layers import Dense, Dropout


@dataclass(frozen=True)
class Chunking:
    """How many batches one ``train_batches`` call covers (see ``fastnn.model``)."""

    rows: int  # at least this many rows per call
    macs: int  # ... and up to this many forward multiply-adds when rows are cheap
    fused_macs: int  # whole-epoch fusion: multiply-adds per call
    fused_rows: int  # whole-epoch fusion: rows per call


@dataclass(frozen=True)
class Snapshot:
    """Training state before one ``train_batches`` call, and what that call ran."""

    arrays: list  # copies of the parameters, then the optimizer state arrays
    iterations: int  # optimizer.iterations
    updates: int  # updates applied in this fit
    segment: np.ndarray  # the rows of the call (int64)
    lrs: np.ndarray | None  # per-batch learning rates of the call, or None


@dataclass
class NonFinite:
    """Where training diverged: 0-based ``epoch``/``batch``, the bad ``value`` (a loss,
    or ``"weights"``), and the updates kept after restoring the last finite weights."""

    restored_updates: int
    epoch: int = -1
    batch: int = -1
    value: float | str = math.nan

    def as_dict(self) -> dict:
        return {
            "restored_updates": self.restored_updates,
            "epoch": self.epoch,
            "batch": self.batch,
            "value": self.value,
        }


def train_options(layers, seed, sample_weight) -> dict:
    """The ``train_batches`` keywords a model's ``layers`` (in order) ask for.

    Per Dense layer ``l``: ``dropout[l]`` combines the Dropout layers between it and
    the next Dense (keep probability ``prod(1 - rate)``); ``trainable`` holds
    ``W_l: layer.trainable`` and ``b_l: layer.trainable and layer.use_bias``;
    ``penalties[l]`` the kernel regularizer's ``(l1, l2)``.  The dropout ``seed`` is the
    first Dropout's ``seed``, else ``seed`` (``fit``'s).  Defaults are left out.
    """
    dense, keep, dropout_seed = [], [], None
    for layer in layers:
        if isinstance(layer, Dense):
            dense.append(layer)
            keep.append(1.0)
        elif isinstance(layer, Dropout) and dense:
            keep[-1] *= 1.0 - layer.rate
            if dropout_seed is None:
                dropout_seed = layer.seed
    options = {}
    if any(k < 1.0 for k in keep):
        options["dropout"] = [1.0 - k for k in keep]
        options["seed"] = seed if dropout_seed is None else dropout_seed
    trainable = [
        f for layer in dense for f in (layer.trainable, layer.trainable and layer.use_bias)
    ]
    if not all(trainable):
        options["trainable"] = trainable
    pairs = [None if layer.kernel_regularizer is None else layer.kernel_regularizer.pair()
             for layer in dense]  # fmt: skip
    if any(p is not None and p != (0.0, 0.0) for p in pairs):
        options["penalties"] = pairs
    slopes = [layer.negative_slope for layer in dense]
    if any(s is not None for s in slopes):
        options["negative_slopes"] = slopes
    if sample_weight is not None:
        options["sample_weight"] = sample_weight
    return options


def plain_hyper(name: str, hyper) -> tuple:
    """``hyper`` without trailing zeros past the required entries (the same numbers:
    omitted entries are 0), so a plain optimizer makes the plain call."""
    hyper = list(hyper)
    while len(hyper) > HYPER_REQUIRED[name] and hyper[-1] == 0:
        hyper.pop()
    return tuple(hyper)


class Trainer:
    """One ``fit`` call's calls to ``ops.train_batches``, with rollback points.

    Before each call it snapshots weights, optimizer state and step count, so an
    interrupted call can be undone (``rollback``) and a non-finite loss can be
    traced back to the last weights whose loss was finite: those are rebuilt by
    replaying, from the snapshot, the batches before that point (training is
    deterministic, so the replay reproduces them exactly).

    ``dense``: the model's Dense layers (built); ``plan``: the loss plan
    (:class:`fastnn.losses.Plan`) of ``X``; ``per_batch``: one batch per call;
    ``options``: the ``train_batches`` keywords of every call (:func:`train_options`).
    """

    def __init__(self, ops, dense, X, plan, batch_size, opt, chunking, *, stop_on_nonfinite,
                 per_batch=False, options=None):  # fmt: skip
        self.ops, self.X, self.plan, self.opt = ops, X, plan, opt
        N = len(X)
        self.batch_size = min(batch_size, N)
        self.n_batches = -(-N // self.batch_size)
        sizes = np.full(self.n_batches, self.batch_size, dtype=np.float64)
        sizes[-1] = N - self.batch_size * (self.n_batches - 1)
        self.sizes = sizes
        self.options = {} if options is None else dict(options)
        self.chunking = chunking
        rows = max(chunking.rows, chunking.macs // sum(layer.W.size for layer in dense))
        self.chunk = 1 if per_batch else max(1, rows // self.batch_size)
        self.aligned = N % self.batch_size == 0
        self.Ws = [layer.W for layer in dense]
        self.bs = [layer.b for layer in dense]
        self.activations = [layer.activation for layer in dense[:-1]] + [plan.last_activation]
        self.params = [A for layer in dense for A in (layer.W, layer.b)]
        self.stop_on_nonfinite = stop_on_nonfinite
        self.snap: Snapshot | None = None  # before the current call
        self.prev: Snapshot | None = None  # before the previous call
        self.in_call = False
        self.nonfinite: NonFinite | None = None
        self.updates = 0  # updates applied in this fit (after rollbacks)

    # ------------------------------------------------------------ snapshots
    def _arrays(self):
        return [*self.params, *(A for S in self.opt.state for A in S)]

    def _snapshot(self, segment, lrs) -> Snapshot:
        arrays = [A.copy() for A in self._arrays()]
        return Snapshot(arrays, self.opt.iterations, self.updates, segment, lrs)

    def _restore(self, snap: Snapshot) -> None:
        for A, saved in zip(self._arrays(), snap.arrays):
            np.copyto(A, saved)
        self.opt.iterations = snap.iterations
        self.updates = snap.updates

    def rollback(self):
        """Undo a call that did not complete (KeyboardInterrupt inside it)."""
        if self.in_call and self.snap is not None:
            self._restore(self.snap)
        self.in_call = False

    # ------------------------------------------------------------ calls
    def _args(self, segment, hyper, step):
        return (
            self.Ws, self.bs, self.activations, self.X, self.plan.T, segment, self.batch_size,
            self.plan.head, self.opt.name, self.opt.state, hyper, step,
        )  # fmt: skip

    def _hyper(self, lr=None):
        hyper = plain_hyper(self.opt.name, self.opt.hyper())
        if lr is not None:
            hyper = (lr, *hyper[1:])
        return tuple(self.X.dtype.type(h) for h in hyper)

    def _call(self, segment, lrs):
        """One ``train_batches`` call (per-step learning rates go in as ``lrs=``)."""
        # Divergence is detected and reported below; NumPy's own overflow warnings
        # from inside the backend would only bury that report.  fit validated the data
        # and built the rest in the checked form, so the op edge's per-call argument
        # checks are skipped (they cost more than hundreds of steps of a tiny net).
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            step = self.opt.iterations
            if lrs is None:
                return self.ops.run_prevalidated(
                    "train_batches", *self._args(segment, self._hyper(), step), **self.options
                )
            return self.ops.run_prevalidated(
                "train_batches", *self._args(segment, self._hyper(), step), lrs=lrs,
                **self.options,
            )  # fmt: skip

    def _lrs(self, segment):
        return self.opt.learning_rates(-(-len(segment) // self.batch_size))

    def train(self, segment):
        """One call on ``segment`` (row indices); returns (losses, correct) per batch.

        On a non-finite loss, restores the last weights with a finite loss, sets
        ``self.nonfinite`` and returns the batches up to the first non-finite one.
        """
        lrs = self._lrs(segment)
        self.prev, self.snap = self.snap, self._snapshot(segment, lrs)
        self.in_call = True
        losses_, correct = self._call(segment, lrs)
        n = len(losses_)
        self.opt.iterations += n
        self.updates += n
        self.in_call = False
        if not self.stop_on_nonfinite:
            return losses_, correct
        bad = np.flatnonzero(~np.isfinite(losses_))
        if bad.size:
            first = int(bad[0])
        elif not all(data_checks.all_finite(P) for P in self.params):
            first = n  # the last update left non-finite weights
        else:
            return losses_, correct
        self._rewind(first)
        return losses_[: first + 1] if first < n else losses_, correct[: first + 1]

    def _rewind(self, first):
        """Restore the weights from before batch ``first - 1`` of the current call."""
        keep = first - 1
        if keep >= 0:
            snap = self.snap
        elif self.prev is not None:
            snap = self.prev
            keep = -(-len(snap.segment) // self.batch_size) - 1
        else:
            snap, keep = self.snap, 0  # the weights fit started with
        self._restore(snap)
        if keep > 0:
            lrs = None if snap.lrs is None else snap.lrs[:keep]
            losses_, _ = self._call(snap.segment[: keep * self.batch_size], lrs)
            self.opt.iterations += len(losses_)
            self.updates += len(losses_)
        self.nonfinite = NonFinite(restored_updates=self.updates)

    def record_value(self, losses_, epoch, start):
        bad = np.flatnonzero(~np.isfinite(losses_))
        j = int(bad[0]) if bad.size else len(losses_) - 1
        self.nonfinite.epoch, self.nonfinite.batch = epoch, start + j
        self.nonfinite.value = float(losses_[j]) if bad.size else "weights"

    # ------------------------------------------------------------ epochs
    def epochs_per_call(self, N):
        """Whole epochs of ``N`` rows fused into one call (see ``fastnn.model.FUSED_MACS``)."""
        c = self.chunking
        macs = N * sum(W.size for W in self.Ws)
        return max(1, c.rows // N, min(c.fused_rows // N, c.fused_macs // macs))

    def run_epochs(self, order, epoch):
        """Whole epochs of full batches in one call; per-epoch (losses, accuracies) arrays."""
        losses_, correct = self.train(order)
        per, m = self.n_batches, len(losses_)
        n_epochs = -(-m // per)
        starts = np.arange(n_epochs) * per
        counts = np.full(n_epochs, per)
        counts[-1] = m - starts[-1]
        # Every batch has batch_size rows here, so the epoch loss is the plain mean.
        loss = np.add.reduceat(losses_, starts) / counts
        acc = np.add.reduceat(correct, starts) / (counts * self.batch_size)
        if self.nonfinite is not None:
            self.record_value(losses_[starts[-1] :], epoch + n_epochs - 1, 0)
        return loss, acc

    def run_epoch(self, order, epoch, on_batches):
        """One epoch in chunks; returns (mean loss over its rows, accuracy).

        ``on_batches(first, done, running_logs_fn)`` is called after each chunk
        (``first``: its first batch, ``done``: batches finished in the epoch), or None.
        """
        parts, correct_sum = [], 0.0
        done = 0
        for start in range(0, self.n_batches, self.chunk):
            segment = order[start * self.batch_size : (start + self.chunk) * self.batch_size]
            if on_batches is not None:
                on_batches.begin(start)
            losses_, correct = self.train(segment)
            parts.append(losses_)
            correct_sum += float(np.sum(correct))
            done = start + len(losses_)
            if self.nonfinite is not None:
                self.record_value(losses_, epoch, start)
                break
            if on_batches is not None:
                rows = float(np.sum(self.sizes[:done]))
                loss = float(np.dot(np.concatenate(parts), self.sizes[:done])) / rows
                on_batches.end(done, loss, correct_sum / rows)
        # Sample-weighted mean: batch losses are means over their rows.
        sizes = self.sizes[:done]
        rows = float(np.sum(sizes))
        return float(np.dot(np.concatenate(parts), sizes)) / rows, correct_sum / rows


class BatchHooks:
    """Per-chunk work inside an epoch: the progress bar and callbacks' batch hooks."""

    def __init__(self, progress, callbacks, counted_names):
        self.progress = progress
        self.callbacks = callbacks  # those with batch hooks
        self.counted = counted_names  # metric names the trainer's count gives

    def begin(self, batch):
        for cb in self.callbacks:
            cb.on_train_batch_begin(batch)

    def end(self, done, loss, acc):
        running = {"loss": loss, **{name: acc for name in self.counted}}
        self.progress.update(done, running)
        for cb in self.callbacks:
            cb.on_train_batch_end(done - 1, dict(running))


class EpochLoop:
    """The epochs of one ``fit``: shuffle, train, measure, call back, report.

    ``logs_for(loss, acc, diverged)`` turns an epoch's training loss and trainer
    accuracy into the full logs (metrics, ``val_*``); ``callbacks`` ends with the
    ``History``; ``model`` is read for ``stop_training`` only.
    """

    def __init__(self, model, trainer, callbacks, history, progress, logs_for, seed, *,
                 epochs, first_epoch=0, shuffle, fuse, counted_names):  # fmt: skip
        self.model, self.trainer, self.callbacks, self.history = model, trainer, callbacks, history
        self.progress, self.logs_for, self.seed = progress, logs_for, seed
        self.epochs, self.first_epoch = epochs, first_epoch
        self.shuffle, self.fuse = shuffle, fuse
        self.counted = counted_names
        hooked = [cb for cb in callbacks if cb.wants_batch_hooks]
        live = progress.live or hooked
        self.batch_hooks = BatchHooks(progress, hooked, counted_names) if live else None

    def run(self):
        """All epochs (stopping early on ``model.stop_training`` or divergence)."""
        for cb in self.callbacks:
            cb.on_train_begin()
        # A callback may have switched the divergence check on (TerminateOnNaN).
        self.trainer.stop_on_nonfinite = self.model.stop_on_nonfinite
        try:
            epoch = self.first_epoch
            while epoch < self.epochs and not self.model.stop_training:
                epoch += self._fused_epochs(epoch) if self.fuse else self._epoch(epoch)
                if self.trainer.nonfinite is not None:
                    self._diverged()
        except KeyboardInterrupt:
            self.trainer.rollback()
            self.progress.interrupted()
            raise
        for cb in self.callbacks:
            cb.on_train_end()

    @functools.cached_property
    def rng(self) -> np.random.Generator:
        """The shuffling stream, ``default_rng(seed)``, made on first use: a fit
        without shuffling (tiny nets, called thousands of times) never pays for one."""
        return np.random.default_rng(self.seed)

    def _order(self, N):
        return self.rng.permutation(N) if self.shuffle else np.arange(N)

    def _fused_epochs(self, epoch) -> int:
        """Several epochs in one call (nothing needs to run between them)."""
        N = len(self.trainer.X)
        group = min(self.trainer.epochs_per_call(N), self.epochs - epoch)
        if group == 1:
            return self._epoch(epoch)
        # One shuffle call for the whole group: the same random stream as `group`
        # successive rng.permutation(N) calls, without their overhead.
        orders = np.tile(np.arange(N), (group, 1))
        if self.shuffle:
            orders = self.rng.permuted(orders, axis=1)
        loss, acc = self.trainer.run_epochs(orders.ravel(), epoch)
        self.history.extend(epoch, {"loss": loss, **{n: acc for n in self.counted}})
        return len(loss)

    def _epoch(self, epoch) -> int:
        order = self._order(len(self.trainer.X))
        for cb in self.callbacks:
            cb.on_epoch_begin(epoch)
        self.progress.epoch_begin(epoch)
        loss, acc = self.trainer.run_epoch(order, epoch, self.batch_hooks)
        logs = self.logs_for(loss, acc, self.trainer.nonfinite is not None)
        try:
            for cb in self.callbacks:
                if cb is not self.history:
                    cb.on_epoch_end(epoch, logs)  # one dict: they may add learning_rate
        finally:
            # The History sees the other callbacks' additions, and records the epoch
            # even when a callback raises (Ctrl-C inside a callback keeps the epoch).
            self.history.on_epoch_end(epoch, logs)
        self.progress.epoch_end(logs)
        return 1

    def _diverged(self):
        self.history.stopped_on_nonfinite = True
        info = self.trainer.nonfinite
        self.history.nonfinite = info.as_dict()
        self.model.stop_training = True
        what = (
            f"the loss became non-finite ({info.value})"
            if isinstance(info.value, float)
            else "the weights became non-finite"
        )
        warnings.warn(
            f"training stopped: {what} at epoch {info.epoch + 1}, batch {info.batch + 1}. "
            f"The model holds the weights of the last batch with a finite loss (after "
            f"{info.restored_updates} updates in this fit). Lower the learning rate, or "
            "scale the inputs.",
            RuntimeWarning,
            stacklevel=4,
        )
