"""Keras-style networks: :class:`Dense` layers in a :class:`Sequential` model.

>>> import numpy as np, fastnn
>>> X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
>>> y = np.array([0, 1, 1, 0])
>>> model = fastnn.Sequential([fastnn.Dense(8, activation="tanh", input_dim=2),
...                            fastnn.Dense(1, activation="sigmoid")], seed=0)
>>> model.compile(optimizer=fastnn.optimizers.Adam(0.05), loss="binary_crossentropy")
>>> history = model.fit(X, y, epochs=500, verbose=0)          # doctest: +SKIP
>>> (model.predict(X)[:, 0] > 0.5).astype(int)                 # doctest: +SKIP
array([0, 1, 1, 0])

Every number is computed by the ops of ``fastnn.get_ops(model.backend)``: layers
call ``dense_forward``, ``fit`` calls ``train_batches`` (which the ``numba``
backend runs as one compiled loop), ``evaluate`` the loss ops.  This module only
validates, orders and records.

Conventions:

* ``dtype``: float32 by default (as Keras); ``Sequential(..., dtype="float64")``
  for double precision.  Inputs are cast to the model dtype.
* ``seed`` (model): initial weights.  Layer ``l`` draws from
  ``numpy.random.default_rng([seed, l])`` in float64, then casts, so the initial
  weights depend only on the seed and the layer shapes -- never on the backend or
  dtype.  ``seed=None`` picks a random seed, kept in ``model.seed``.
* ``seed`` (``fit``): the shuffling order (``default_rng(seed).permutation`` per epoch).
* ``W`` is ``(n_in, units)``, so ``Y = activation(X @ W + b)``.
"""

from __future__ import annotations

import math
import numbers
import warnings

import numpy as np

from fastnn.kernels.contract import ACTIVATIONS, DIFFERENTIABLE_ACTIVATIONS

from . import data_checks, dispatch, initializers, losses, optimizers
from . import metrics as metrics_mod
from .callbacks import Callback, History
from .dispatch import validation as chk
from .progress import Progress

#: ``fit`` hands the backend at least this many rows per ``train_batches`` call (at
#: least one batch): enough work to amortize a call, short enough that the progress
#: bar moves and Ctrl-C is honoured within a fraction of a second.
CHUNK_ROWS = 8192

#: ... and, when rows are cheap, up to this many forward multiply-adds (rows x
#: weights) per call: about a tenth of a second of BLAS-bound training here.  A
#: call costs ~1-2 ms besides its batches (snapshot, argument packing, fresh
#: workspaces): the Fashion-MNIST MLP (203,264 weights) then makes 2 calls per
#: epoch instead of 8, which measured 10 ms (4 %) faster per epoch.
CHUNK_MACS = 6_000_000_000

#: When whole epochs go to one call (tiny full-batch nets, nothing to run between
#: epochs), a call covers up to this many forward multiply-adds (rows x weights;
#: a few tenths of a second of compiled work at most) and this many rows (the
#: order array: 8 MB), and at least CHUNK_ROWS rows.  A 2-3-1 net on 200 samples
#: then makes one call per ~5,000 steps instead of one per 40: the per-call cost
#: (snapshots, argument packing, history) stays far below a step's.
FUSED_MACS = 1 << 27
FUSED_ROWS = 1 << 20


class NotCompiledError(ValueError, RuntimeError):
    """``fit``/``evaluate`` called before ``compile``."""


def _check_dtype(dtype) -> np.dtype:
    try:
        dt = np.dtype(dtype)
    except TypeError:
        dt = None
    if dt not in chk.FLOAT_DTYPES:
        raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
    return dt


class Dense:
    """A fully connected layer: ``Y = activation(X @ W + b)``.

    ``X: (n, n_in)``, ``W: (n_in, units)``, ``b: (units,)``, ``Y: (n, units)``.
    ``W`` and ``b`` are created when the model is built (from ``input_dim`` or the
    first data it sees).  ``activation=None`` means ``"linear"``; ``"step"`` is
    forward-only (it cannot be trained by backpropagation).
    """

    def __init__(
        self,
        units,
        activation=None,
        use_bias=True,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        input_dim=None,
    ):
        self.units = chk.check_int("units", units, low=1)
        self.activation = "linear" if activation is None else activation
        chk.check_name("activation", self.activation, ACTIVATIONS)
        if not isinstance(use_bias, (bool, np.bool_)):
            raise TypeError(f"use_bias must be True or False, got {use_bias!r}")
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.check(kernel_initializer, "kernel_initializer")
        self.bias_initializer = initializers.check(bias_initializer, "bias_initializer")
        self.input_dim = None if input_dim is None else chk.check_int("input_dim", input_dim, low=1)
        self.W: np.ndarray | None = None
        self.b: np.ndarray | None = None

    @property
    def built(self) -> bool:
        return self.W is not None

    def build(self, n_in: int, rng: np.random.Generator, dtype) -> None:
        """Create ``W: (n_in, units)`` and ``b: (units,)`` from the initializers."""
        self.W = initializers.draw(self.kernel_initializer, (n_in, self.units), rng, dtype)
        if self.use_bias:
            self.b = initializers.draw(self.bias_initializer, (self.units,), rng, dtype)
        else:
            # The contract always adds a bias; a bias-free layer keeps it at zero.
            self.b = np.zeros(self.units, dtype=dtype)

    def weights(self) -> list[np.ndarray]:
        """The layer's trainable arrays (views): ``[W, b]``, or ``[W]`` without bias."""
        return [self.W, self.b] if self.use_bias else [self.W]

    def count_params(self, n_in: int | None = None) -> int | None:
        n_in = self.W.shape[0] if self.built else n_in
        if n_in is None:
            return None
        return n_in * self.units + (self.units if self.use_bias else 0)

    def get_config(self) -> dict:
        return {
            "units": self.units,
            "activation": self.activation,
            "use_bias": self.use_bias,
            "kernel_initializer": self.kernel_initializer,
            "bias_initializer": self.bias_initializer,
            "input_dim": self.input_dim,
        }

    def __repr__(self) -> str:
        return f"Dense({self.units}, activation={self.activation!r})"


class Sequential:
    """A linear stack of :class:`Dense` layers.

    ``backend``: a backend name used by every computation of this model, winning
    over ``fastnn.set_backend``/``use_backend`` without changing them; ``None``
    (default) uses the current backend at each call.  ``dtype``: ``"float32"``
    (default) or ``"float64"``.  ``seed``: initial weights (see the module doc).
    """

    def __init__(self, layers=None, backend=None, *, dtype="float32", seed=None, name="sequential"):
        self._backend = dispatch.parse_backend(backend)
        self.dtype = _check_dtype(dtype)
        if seed is None:
            seed = int(np.random.SeedSequence().entropy % (2**63))
        self.seed = chk.check_int("seed", seed, low=0)
        self.name = str(name)
        self._layers: list[Dense] = []
        self.optimizer: optimizers.Optimizer | None = None
        self.loss: str | None = None
        self.metrics: tuple[str, ...] = ()
        self.history: History | None = None
        self.stop_training = False
        #: Stop ``fit`` when the loss becomes NaN/inf (restoring the last weights with a
        #: finite loss).  Set to False to let training run on regardless.
        self.stop_on_nonfinite = True
        if layers is not None:
            if isinstance(layers, Dense):
                layers = [layers]
            if not isinstance(layers, (list, tuple)):
                raise TypeError(
                    f"layers must be a list of Dense layers, got {type(layers).__name__}"
                )
            for layer in layers:
                self.add(layer)

    # ------------------------------------------------------------------ structure
    @property
    def backend(self):
        return self._backend

    @backend.setter
    def backend(self, value):
        self._backend = dispatch.parse_backend(value)

    @property
    def layers(self) -> list[Dense]:
        return list(self._layers)

    @property
    def built(self) -> bool:
        return bool(self._layers) and all(layer.built for layer in self._layers)

    @property
    def input_dim(self) -> int | None:
        if not self._layers:
            return None
        first = self._layers[0]
        return first.W.shape[0] if first.built else first.input_dim

    def add(self, layer) -> None:
        """Append a layer (its ``input_dim``, if given, must match the previous units)."""
        if not isinstance(layer, Dense):
            raise TypeError(
                f"Sequential only holds fastnn.Dense layers, got {type(layer).__name__}"
            )
        if any(layer is other for other in self._layers):
            raise ValueError("this Dense layer is already in the model")
        if (
            self._layers
            and layer.input_dim is not None
            and (layer.input_dim != self._layers[-1].units)
        ):
            raise ValueError(
                f"layer {len(self._layers)} has input_dim={layer.input_dim} but the previous "
                f"layer has {self._layers[-1].units} units"
            )
        if layer.built:
            expected = self._layers[-1].units if self._layers else layer.W.shape[0]
            if layer.W.shape[0] != expected or layer.W.dtype != self.dtype:
                raise ValueError(
                    "a built layer can only join a model with matching shape and dtype"
                )
        self._layers.append(layer)
        # Keras builds as soon as the input size is known (``input_dim`` on the first layer).
        if self.input_dim is not None and not layer.built:
            self._build_layer(len(self._layers) - 1)

    def _build_layer(self, l: int) -> None:
        n_in = self.input_dim if l == 0 else self._layers[l - 1].units
        rng = np.random.default_rng([self.seed, l])
        self._layers[l].build(n_in, rng, self.dtype)

    def build(self, input_dim: int) -> None:
        """Create every layer's weights for inputs with ``input_dim`` features."""
        input_dim = chk.check_int("input_dim", input_dim, low=1)
        if not self._layers:
            raise ValueError("the model has no layers: add Dense layers before building it")
        first = self._layers[0]
        if first.input_dim is not None and first.input_dim != input_dim:
            raise ValueError(
                f"X has {input_dim} features, but Sequential is expecting "
                f"{first.input_dim} features as input."
            )
        if self.built:
            data_checks.check_features(np.empty((0, input_dim)), self.input_dim)
            return
        for l, layer in enumerate(self._layers):
            if not layer.built:
                if l == 0:
                    rng = np.random.default_rng([self.seed, 0])
                    layer.build(input_dim, rng, self.dtype)
                else:
                    self._build_layer(l)

    def _ensure_built(self, n_features: int) -> None:
        if not self._layers:
            raise ValueError("the model has no layers: add Dense layers first")
        if self.built:
            data_checks.check_features(np.empty((0, n_features)), self.input_dim)
        else:
            self.build(n_features)

    def count_params(self) -> int:
        total, n_in = 0, self.input_dim
        for layer in self._layers:
            count = layer.count_params(n_in)
            if count is None:
                raise ValueError("the model is not built yet: call build(input_dim) or fit first")
            total += count
            n_in = layer.units
        return total

    def summary(self, print_fn=print) -> None:
        """Print a table of layers, output shapes and parameter counts (Keras style)."""
        rows = [("Layer (type)", "Output Shape", "Param #")]
        n_in, total = self.input_dim, 0
        for l, layer in enumerate(self._layers):
            count = layer.count_params(n_in)
            total = None if count is None or total is None else total + count
            rows.append(
                (
                    f"dense_{l} (Dense, {layer.activation})",
                    f"(None, {layer.units})",
                    "?" if count is None else f"{count:,}",
                )
            )
            n_in = layer.units
        widths = [max(len(r[i]) for r in rows) + 2 for i in range(3)]
        line = "=" * sum(widths)
        out = [f'Model: "{self.name}"', line.replace("=", "-")]
        out.append("".join(c.ljust(w) for c, w in zip(rows[0], widths)).rstrip())
        out.append(line)
        for r in rows[1:]:
            out.append("".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
        out.append(line)
        if total is None:
            out.append("Total params: ? (the model is not built: call build(input_dim) or fit)")
        else:
            size = total * self.dtype.itemsize
            unit = f"{size / 1024:.2f} KB" if size < 2**20 else f"{size / 2**20:.2f} MB"
            out.append(f"Total params: {total:,} ({unit})")
            out.append(f"Trainable params: {total:,} ({unit})")
            out.append("Non-trainable params: 0 (0.00 B)")
        out.append(f"dtype: {self.dtype.name}, backend: {self._backend or 'current'}")
        print_fn("\n".join(out))

    # ------------------------------------------------------------------ weights
    def get_weights(self) -> list[np.ndarray]:
        """Copies of the weights: ``[W0, b0, W1, b1, ...]`` (no ``b`` for ``use_bias=False``)."""
        return [A.copy() for layer in self._layers if layer.built for A in layer.weights()]

    def _weight_shapes(self, n_in: int) -> list[tuple[int, ...]]:
        shapes = []
        for layer in self._layers:
            shapes.append((n_in, layer.units))
            if layer.use_bias:
                shapes.append((layer.units,))
            n_in = layer.units
        return shapes

    def set_weights(self, weights) -> None:
        """Set all weights from a list shaped like :meth:`get_weights` (builds if needed).

        Values are checked (count, shapes, numeric, finite) before anything is
        changed, then copied and cast to the model dtype.
        """
        if not isinstance(weights, (list, tuple)):
            raise TypeError(f"weights must be a list of arrays, got {type(weights).__name__}")
        if not self._layers:
            raise ValueError("the model has no layers")
        arrays = []
        for i, A in enumerate(weights):
            arr = data_checks.as_numeric(f"weights[{i}]", A)
            data_checks.check_finite(f"weights[{i}]", arr)
            arrays.append(arr)
        if not arrays or arrays[0].ndim != 2:
            raise ValueError("weights[0] must be the first layer's 2-D W of shape (n_in, units)")
        n_in = self.input_dim if self.input_dim is not None else arrays[0].shape[0]
        shapes = self._weight_shapes(n_in)
        if len(arrays) != len(shapes):
            raise ValueError(
                f"expected {len(shapes)} weight arrays (W and b per layer), got {len(arrays)}"
            )
        for i, (A, shape) in enumerate(zip(arrays, shapes)):
            if A.shape != shape:
                raise ValueError(f"weights[{i}] must have shape {shape}, got {A.shape}")
        if not self.built:
            self.build(n_in)
        it = iter(arrays)
        for layer in self._layers:
            np.copyto(layer.W, next(it), casting="unsafe")
            if layer.use_bias:
                np.copyto(layer.b, next(it), casting="unsafe")

    def _params(self) -> list[np.ndarray]:
        """Trained arrays in the contract order ``W0, b0, W1, b1, ...`` (bias always)."""
        return [A for layer in self._layers for A in (layer.W, layer.b)]

    # ------------------------------------------------------------------ compile
    def compile(self, optimizer="sgd", loss=None, metrics=None) -> None:
        """Choose the optimizer (name or instance), the loss name and metrics (``"accuracy"``)."""
        opt = optimizers.get(optimizer)
        if loss is None:
            raise ValueError(
                f"compile needs a loss; valid choices are: "
                f"{', '.join(repr(n) for n in losses.LOSS_NAMES)}"
            )
        loss = losses.get(loss)
        names = metrics_mod.get_list(metrics)
        self.optimizer, self.loss, self.metrics = opt, loss, names
        opt.state = None
        opt.iterations = 0
        if self.built:
            opt.build(self._params())

    def _check_compiled(self, what: str) -> None:
        if self.optimizer is None or self.loss is None:
            raise NotCompiledError(
                f"You must compile the model before calling {what}(): call "
                "model.compile(optimizer=..., loss=...) first."
            )

    # ------------------------------------------------------------------ computing
    def _ops(self):
        return dispatch.get_ops(self._backend)

    def _forward(self, ops, X):
        """(Z, Y) of the last layer for ``X``, through ``ops.dense_forward``."""
        A = X
        Z = None
        for layer in self._layers:
            Z, A = ops.dense_forward(A, layer.W, layer.b, layer.activation)
        return Z, A

    def _check_x(self, x, name="x") -> np.ndarray:
        X = data_checks.check_2d(name, x, self.dtype)
        expected = self.input_dim
        if expected is not None:
            data_checks.check_features(X, expected)
        return X

    def _prepare(self, x, y, xname="x", yname="y"):
        X = self._check_x(x, xname)
        last = self._layers[-1]
        plan = losses.prepare(self.loss, last.activation, y, last.units, self.dtype, yname)
        data_checks.check_consistent_length(X, plan.T)
        return X, plan

    def predict(self, x, batch_size=None) -> np.ndarray:
        """Outputs ``(n, units of the last layer)`` for ``x: (n, n_features)``."""
        if not self._layers:
            raise ValueError("the model has no layers: add Dense layers first")
        if batch_size is not None:
            batch_size = chk.check_int("batch_size", batch_size, low=1)
        X = self._check_x(x)
        self._ensure_built(X.shape[1])
        ops = self._ops()
        # Without a batch size, chunks of CHUNK_ROWS rows bound the hidden layers'
        # temporary activations (a 10,000 x 256 float32 layer is 10 MB per array).
        batch_size = batch_size or CHUNK_ROWS
        if batch_size >= len(X):
            return self._forward(ops, X)[1]
        parts = [self._forward(ops, X[i : i + batch_size])[1] for i in range(0, len(X), batch_size)]
        return np.concatenate(parts)

    def _evaluate_arrays(self, ops, X, plan, batch_size):
        """(mean loss over samples, accuracy) of ``X`` against ``plan.T``."""
        n = len(X)
        step = batch_size or CHUNK_ROWS  # chunks bound the temporaries, as in predict
        total = correct = 0.0
        for i in range(0, n, step):
            Xb, Tb = X[i : i + step], plan.T[i : i + step]
            Z, Y = self._forward(ops, Xb)
            total += losses.batch_loss(ops, plan, Z, Y, Tb) * len(Xb)
            if "accuracy" in self.metrics:
                correct += metrics_mod.count_correct(Z if plan.fused else Y, Tb, plan.head)
        return total / n, correct / n

    def evaluate(self, x, y, batch_size=None, verbose=0):
        """The loss (mean over samples), or ``[loss, accuracy]`` with metrics."""
        self._check_compiled("evaluate")
        if not self._layers:
            raise ValueError("the model has no layers: add Dense layers first")
        if batch_size is not None:
            batch_size = chk.check_int("batch_size", batch_size, low=1)
        _check_verbose(verbose)
        X, plan = self._prepare(x, y)
        self._ensure_built(X.shape[1])
        loss, acc = self._evaluate_arrays(self._ops(), X, plan, batch_size)
        logs = {"loss": loss, **({"accuracy": acc} if "accuracy" in self.metrics else {})}
        if verbose:
            from .progress import format_logs

            print(f"{len(X)}/{len(X)}{format_logs(logs)}")
        return [loss, acc] if "accuracy" in self.metrics else loss

    # ------------------------------------------------------------------ fit
    def fit(
        self,
        x=None,
        y=None,
        batch_size=32,
        epochs=1,
        verbose=1,
        validation_data=None,
        validation_split=0.0,
        shuffle=True,
        seed=None,
        callbacks=None,
    ) -> History:
        """Train for ``epochs`` passes over ``(x, y)`` in mini-batches; returns a :class:`History`.

        ``batch_size`` rows per update (None: 32); each epoch visits the rows in the
        order ``numpy.random.default_rng(seed).permutation`` (one permutation per
        epoch; ``shuffle=False``: in order).  ``validation_split`` holds out the
        *last* fraction of the rows (before shuffling) as validation data, unless
        ``validation_data=(x_val, y_val)`` is given.  Progress: see
        :mod:`fastnn.progress`.

        Everything is validated before any state changes: a call that raises
        leaves weights, optimizer state and ``history`` as they were.  Ctrl-C
        (KeyboardInterrupt) propagates, leaving the weights of the last completed
        chunk of batches and ``model.history`` with the completed epochs.  If the
        loss becomes NaN/inf, training stops with a RuntimeWarning, the weights of
        the last batch whose loss was finite are restored and
        ``history.stopped_on_nonfinite`` is set.
        """
        self._check_compiled("fit")
        if not self._layers:
            raise ValueError("the model has no layers: add Dense layers first")
        batch_size = 32 if batch_size is None else chk.check_int("batch_size", batch_size, low=1)
        epochs = chk.check_int("epochs", epochs, low=0)
        verbose = _check_verbose(verbose)
        if isinstance(validation_split, bool) or not isinstance(validation_split, numbers.Real):
            raise TypeError(
                "validation_split must be a number in [0, 1), got "
                f"{type(validation_split).__name__}"
            )
        if not 0 <= validation_split < 1:
            raise ValueError(f"validation_split must be in [0, 1), got {validation_split}")
        if not isinstance(shuffle, (bool, np.bool_)):
            raise TypeError(f"shuffle must be True or False, got {shuffle!r}")
        if seed is not None:
            seed = chk.check_int("seed", seed, low=0)
        callbacks = [] if callbacks is None else callbacks
        if isinstance(callbacks, Callback):
            callbacks = [callbacks]
        if not isinstance(callbacks, (list, tuple)) or not all(
            isinstance(c, Callback) for c in callbacks
        ):
            raise TypeError("callbacks must be a list of fastnn.callbacks.Callback instances")
        for l, layer in enumerate(self._layers):
            if layer.activation not in DIFFERENTIABLE_ACTIVATIONS:
                raise ValueError(
                    f"layer {l} uses activation {layer.activation!r}, which has no gradient; "
                    f"fit needs one of: {', '.join(repr(a) for a in DIFFERENTIABLE_ACTIVATIONS)} "
                    "(use fastnn.Perceptron for the step-activation learning rule)"
                )
        if x is None or y is None:
            raise ValueError("fit needs training data: fit(x, y, ...)")
        X, plan = self._prepare(x, y)
        val = None
        if validation_data is not None:
            if not isinstance(validation_data, (list, tuple)) or len(validation_data) != 2:
                raise ValueError("validation_data must be a tuple (x_val, y_val)")
            val = self._prepare(*validation_data, xname="x_val", yname="y_val")
        elif validation_split > 0:
            split_at = int(math.floor(len(X) * (1 - validation_split)))
            if split_at < 1 or split_at == len(X):
                raise ValueError(
                    f"validation_split={validation_split} of {len(X)} samples leaves "
                    f"{split_at} for training and {len(X) - split_at} for validation; "
                    "both need at least one"
                )
            val = (X[split_at:], _slice_plan(plan, split_at, None))
            X, plan = X[:split_at], _slice_plan(plan, 0, split_at)
        ops = self._ops()
        # Validated: from here on, state may change.
        self._ensure_built(X.shape[1])
        params = self._params()
        opt = self.optimizer
        if opt.state is None or [S[0].shape for S in opt.state] != [P.shape for P in params]:
            opt.build(params)
        history = History()
        self.history = history
        trainer = _Trainer(self, ops, X, plan, batch_size)
        history.params = {
            "epochs": epochs,
            "steps": trainer.n_batches,
            "verbose": verbose,
            "batch_size": batch_size,
        }
        cbs = [history, *callbacks]
        for cb in cbs:
            cb.set_model(self)
        progress = Progress(verbose, epochs, trainer.n_batches)
        rng = np.random.default_rng(seed)
        N = len(X)
        # Several epochs per call when nothing needs to run between epochs: tiny
        # full-batch nets then make one compiled call per thousands of steps.
        fuse = verbose == 0 and not callbacks and val is None and trainer.aligned
        want_acc = "accuracy" in self.metrics
        self.stop_training = False
        for cb in cbs:
            cb.on_train_begin()
        try:
            epoch = 0
            while epoch < epochs and not self.stop_training:
                group = min(trainer.epochs_per_call(N), epochs - epoch) if fuse else 1
                if group > 1:
                    # One shuffle call for the whole group: the same random stream as
                    # `group` successive rng.permutation(N) calls, without their overhead.
                    orders = np.tile(np.arange(N), (group, 1))
                    if shuffle:
                        orders = rng.permuted(orders, axis=1)
                    loss, acc = trainer.run_epochs(orders.ravel(), epoch)
                    logs = {"loss": loss, **({"accuracy": acc} if want_acc else {})}
                    history.extend(epoch, logs)  # the only callback when fusing
                    epoch += len(loss)
                else:
                    order = rng.permutation(N) if shuffle else np.arange(N)
                    for cb in cbs:
                        cb.on_epoch_begin(epoch)
                    progress.epoch_begin(epoch)
                    loss, acc = trainer.run_epoch(order, epoch, progress, cbs)
                    logs = {"loss": loss, **({"accuracy": acc} if want_acc else {})}
                    if val is not None:
                        if trainer.nonfinite is None:
                            vloss, vacc = self._evaluate_arrays(ops, val[0], val[1], None)
                        else:
                            vloss = vacc = math.nan
                        logs["val_loss"] = vloss
                        if want_acc:
                            logs["val_accuracy"] = vacc
                    progress.epoch_end(logs)
                    for cb in cbs:
                        cb.on_epoch_end(epoch, dict(logs))
                    epoch += 1
                if trainer.nonfinite is not None:
                    history.stopped_on_nonfinite = True
                    history.nonfinite = trainer.nonfinite
                    self.stop_training = True
                    info = trainer.nonfinite
                    what = (
                        f"the loss became non-finite ({info['value']})"
                        if isinstance(info["value"], float)
                        else "the weights became non-finite"
                    )
                    warnings.warn(
                        f"training stopped: {what} at epoch "
                        f"{info['epoch'] + 1}, batch {info['batch'] + 1}. The model holds the "
                        f"weights of the last batch with a finite loss (after "
                        f"{info['restored_updates']} updates in this fit). Lower the learning "
                        "rate, or scale the inputs.",
                        RuntimeWarning,
                        stacklevel=2,
                    )
        except KeyboardInterrupt:
            trainer.rollback()
            progress.interrupted()
            raise
        for cb in cbs:
            cb.on_train_end()
        return history

    # ------------------------------------------------------------------ saving
    def save(self, path) -> None:
        """Save architecture, weights and optimizer state (see :mod:`fastnn.saving`)."""
        from .saving import save_model

        save_model(self, path)

    def get_config(self) -> dict:
        return {
            "name": self.name,
            "dtype": self.dtype.name,
            "seed": self.seed,
            "input_dim": self.input_dim,
            "layers": [layer.get_config() for layer in self._layers],
        }

    def __repr__(self) -> str:
        return f"<Sequential {self.name!r} layers={self._layers} dtype={self.dtype.name}>"


def _check_verbose(verbose) -> int:
    if verbose == "auto":
        return 1
    valid = not isinstance(verbose, bool) and isinstance(verbose, numbers.Integral)
    if not valid or verbose not in (0, 1, 2):
        raise ValueError(f"verbose must be 0, 1, 2 or 'auto', got {verbose!r}")
    return int(verbose)


def _slice_plan(plan: losses.Plan, start, stop) -> losses.Plan:
    return losses.Plan(plan.head, plan.last_activation, plan.T[start:stop])


class _Trainer:
    """One ``fit`` call's calls to ``ops.train_batches``, with rollback points.

    Before each call it snapshots weights, optimizer state and step count, so an
    interrupted call can be undone (``rollback``) and a non-finite loss can be
    traced back to the last weights whose loss was finite: those are rebuilt by
    replaying, from the snapshot, the batches before that point (training is
    deterministic, so the replay reproduces them exactly).
    """

    def __init__(self, model: Sequential, ops, X, plan, batch_size):
        self.model = model
        self.ops = ops
        self.X = X
        self.plan = plan
        N = len(X)
        self.batch_size = min(batch_size, N)
        self.n_batches = -(-N // self.batch_size)
        sizes = np.full(self.n_batches, self.batch_size, dtype=np.float64)
        sizes[-1] = N - self.batch_size * (self.n_batches - 1)
        self.sizes = sizes
        self.no_bias = [l for l, layer in enumerate(model._layers) if not layer.use_bias]
        # Bias-free layers are trained one batch per call, their b reset to zero after it.
        rows = max(CHUNK_ROWS, CHUNK_MACS // sum(layer.W.size for layer in model._layers))
        self.chunk = 1 if self.no_bias else max(1, rows // self.batch_size)
        self.aligned = N % self.batch_size == 0 and not self.no_bias
        layers = model._layers
        self.Ws = [layer.W for layer in layers]
        self.bs = [layer.b for layer in layers]
        self.activations = [layer.activation for layer in layers[:-1]] + [plan.last_activation]
        self.params = model._params()
        self.opt = model.optimizer
        self.dtype = X.dtype
        self.snap = None  # (arrays, iterations, order segment) before the current call
        self.prev = None  # the same for the previous call
        self.in_call = False
        self.nonfinite: dict | None = None
        self.updates = 0  # updates applied in this fit (after rollbacks)

    def _arrays(self):
        return [*self.params, *(A for S in self.opt.state for A in S)]

    def _snapshot(self, segment):
        return ([A.copy() for A in self._arrays()], self.opt.iterations, self.updates, segment)

    def _restore(self, snap):
        for A, saved in zip(self._arrays(), snap[0]):
            np.copyto(A, saved)
        self.opt.iterations = snap[1]
        self.updates = snap[2]

    def rollback(self):
        """Undo a call that did not complete (KeyboardInterrupt inside it)."""
        if self.in_call and self.snap is not None:
            self._restore(self.snap)
        self.in_call = False

    def _call(self, segment):
        # Divergence is detected and reported below; NumPy's own overflow warnings
        # from inside the backend would only bury that report.
        # fit validated the data and the model built the rest in the checked form, so
        # the per-call argument checks of the op edge are skipped (they cost more
        # than hundreds of steps of a tiny net).
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            losses_, correct = self.ops.run_prevalidated(
                "train_batches", self.Ws, self.bs, self.activations, self.X, self.plan.T,
                segment, self.batch_size, self.plan.head, self.opt.name, self.opt.state,
                tuple(self.dtype.type(h) for h in self.opt.hyper()), self.opt.iterations,
            )  # fmt: skip
        n = len(losses_)
        for l in self.no_bias:
            self.bs[l][...] = 0
        return losses_, correct, n

    def _train(self, segment):
        """One call on ``segment`` (row indices); returns (losses, correct) per batch.

        On a non-finite loss, restores the last weights with a finite loss, sets
        ``self.nonfinite`` and returns the batches up to the first non-finite one.
        """
        self.prev, self.snap = self.snap, self._snapshot(segment)
        self.in_call = True
        losses_, correct, n = self._call(segment)
        self.opt.iterations += n
        self.updates += n
        self.in_call = False
        if not self.model.stop_on_nonfinite:
            return losses_, correct
        bad = np.flatnonzero(~np.isfinite(losses_))
        if bad.size:
            first = int(bad[0])
        elif not all(np.isfinite(P).all() for P in self.params):
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
            keep = -(-len(snap[3]) // self.batch_size) - 1
        else:
            snap, keep = self.snap, 0  # the weights fit started with
        self._restore(snap)
        if keep > 0:
            _, _, n = self._call(snap[3][: keep * self.batch_size])
            self.opt.iterations += n
            self.updates += n
        self.nonfinite = {"restored_updates": self.updates}

    def run_epoch(self, order, epoch, progress, callbacks):
        """One epoch in chunks; returns (mean loss over its rows, accuracy)."""
        parts, correct_sum = [], 0.0
        for start in range(0, self.n_batches, self.chunk):
            segment = order[start * self.batch_size : (start + self.chunk) * self.batch_size]
            losses_, correct = self._train(segment)
            parts.append(losses_)
            correct_sum += float(np.sum(correct))
            done = start + len(losses_)
            if self.nonfinite is not None:
                self._record_value(losses_, epoch, start)
                break
            if progress.live or callbacks:
                rows = float(np.sum(self.sizes[:done]))
                running = {"loss": float(np.dot(np.concatenate(parts), self.sizes[:done])) / rows}
                if "accuracy" in self.model.metrics:
                    running["accuracy"] = correct_sum / rows
                progress.update(done, running)
                for cb in callbacks:
                    cb.on_train_batch_end(done - 1, running)
        # Sample-weighted mean: batch losses are means over their rows.
        sizes = self.sizes[:done]
        rows = float(np.sum(sizes))
        return float(np.dot(np.concatenate(parts), sizes)) / rows, correct_sum / rows

    def _record_value(self, losses_, epoch, start):
        bad = np.flatnonzero(~np.isfinite(losses_))
        j = int(bad[0]) if bad.size else len(losses_) - 1
        value = float(losses_[j]) if bad.size else "weights"
        self.nonfinite.update(epoch=epoch, batch=start + j, value=value)

    def epochs_per_call(self, N):
        """Whole epochs of ``N`` rows fused into one call (see :data:`FUSED_MACS`)."""
        macs = N * sum(W.size for W in self.Ws)
        return max(1, CHUNK_ROWS // N, min(FUSED_ROWS // N, FUSED_MACS // macs))

    def run_epochs(self, order, epoch):
        """Whole epochs of full batches in one call; per-epoch (losses, accuracies) arrays."""
        losses_, correct = self._train(order)
        per, m = self.n_batches, len(losses_)
        n_epochs = -(-m // per)
        starts = np.arange(n_epochs) * per
        counts = np.full(n_epochs, per)
        counts[-1] = m - starts[-1]
        # Every batch has batch_size rows here, so the epoch loss is the plain mean.
        loss = np.add.reduceat(losses_, starts) / counts
        acc = np.add.reduceat(correct, starts) / (counts * self.batch_size)
        if self.nonfinite is not None:
            self._record_value(losses_[starts[-1] :], epoch + n_epochs - 1, 0)
        return loss, acc
