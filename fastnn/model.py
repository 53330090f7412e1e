"""Keras-style networks: layers (:mod:`fastnn.layers`) in a :class:`Sequential` model.

>>> import numpy as np, fastnn
>>> X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
>>> y = np.array([0, 1, 1, 0])
>>> model = fastnn.Sequential([fastnn.Input(shape=(2,)),
...                            fastnn.Dense(8, activation="tanh"),
...                            fastnn.Dense(1, activation="sigmoid")], seed=0)
>>> model.compile(optimizer=fastnn.optimizers.Adam(0.05), loss="binary_crossentropy")
>>> history = model.fit(X, y, epochs=500, verbose=0)          # doctest: +SKIP
>>> (model.predict(X, verbose=0)[:, 0] > 0.5).astype(int)      # doctest: +SKIP
array([0, 1, 1, 0])

Every number is computed by the ops of ``fastnn.get_ops(model.backend)``: layers
call ``dense_forward``, ``fit`` calls ``train_batches`` (which the ``numba``
backend runs as one compiled loop; see :mod:`fastnn.training`), ``evaluate`` the
loss ops.  This module only validates, orders and records.

Conventions:

* ``dtype``: float32 by default (as Keras); ``Sequential(..., dtype="float64")``
  for double precision.  Inputs are cast to the model dtype.
* ``seed`` (model): initial weights.  Dense layer ``l`` (counting Dense layers only)
  draws from ``numpy.random.default_rng([seed, l])`` in float64, then casts, so the
  initial weights depend only on the seed and the layer shapes -- never on the
  backend or dtype.  ``seed=None`` picks a random seed, kept in ``model.seed``.
* ``seed`` (``fit``): the shuffling order (``default_rng(seed).permutation`` per epoch).
  Both default to random seeds, reproducible after ``fastnn.utils.set_random_seed``.
* ``W`` is ``(n_in, units)``, so ``Y = activation(X @ W + b)``.
* ``verbose``: 0, 1, 2, ``"auto"`` (1), or True/False (1/0), as in Keras.
  ``predict`` and ``evaluate`` default to 0 (silent), unlike Keras.
"""

from __future__ import annotations

import math
import numbers
import time
import warnings
from dataclasses import dataclass

import numpy as np

from fastnn.kernels.contract import ALL_DIFFERENTIABLE_ACTIVATIONS

from . import data_checks, dispatch, losses, optimizers, saving, utils
from . import metrics as metrics_mod
from .callbacks import Callback, History
from .dispatch import validation as chk
from .layers import Dense, Dropout, Flatten, Input, Layer, unique_name
from .layers import from_config as layer_from_config
from .progress import Progress, format_logs, format_time
from .training import Chunking, EpochLoop, Trainer, train_options

#: ``fit`` hands the backend at least this many rows per ``train_batches`` call (at
#: least one batch): enough work to amortize a call, short enough that the progress
#: bar moves and Ctrl-C is honoured within a fraction of a second.
CHUNK_ROWS = 8192

#: ... and, when rows are cheap, up to this many forward multiply-adds (rows x
#: weights) per call: about a tenth of a second of BLAS-bound training here, so the
#: fixed cost of a call (snapshot, argument packing, fresh workspaces) is paid rarely.
CHUNK_MACS = 6_000_000_000

#: When whole epochs go to one call (tiny full-batch nets, nothing to run between
#: epochs), a call covers up to this many forward multiply-adds (rows x weights;
#: a few tenths of a second of compiled work at most) and this many rows (the
#: order array: 8 MB), and at least CHUNK_ROWS rows, so the per-call cost
#: (snapshots, argument packing, history) stays far below a step's.
FUSED_MACS = 1 << 27
FUSED_ROWS = 1 << 20

#: Inputs whose largest magnitude exceeds this get the unscaled-input warning.
LARGE_INPUT = 1e4

#: Rows (evenly spaced) the unscaled-input warning looks at.
SCALE_SAMPLE_ROWS = 1024

#: The ``python`` backend's speed on dense layers (multiply-adds per second, order of
#: magnitude): it is the loop-by-loop reference.  A call estimated above
#: :data:`SLOW_SECONDS` at this speed gets a one-time warning.
PYTHON_MACS_PER_SECOND = 1e7
SLOW_SECONDS = 10.0


class NotCompiledError(ValueError, RuntimeError):
    """``fit``/``evaluate`` called before ``compile``."""


class InputScaleWarning(UserWarning):
    """``fit`` got inputs that look unscaled (raw 0..255 pixels, huge values)."""


class SlowBackendWarning(UserWarning):
    """A large computation on the ``python`` reference backend."""


_slow_warned = False


def _warn_if_slow(ops, macs: float, what: str) -> None:
    """Warn once per process when ``macs`` multiply-adds would run on ``python``."""
    global _slow_warned
    seconds = macs / PYTHON_MACS_PER_SECOND
    if _slow_warned or ops.impl.name != "python" or seconds < SLOW_SECONDS:
        return
    _slow_warned = True
    warnings.warn(
        f"{what} on the 'python' backend: about {macs:.2g} multiply-adds, roughly "
        f"{seconds:,.0f} s at its ~{PYTHON_MACS_PER_SECOND:.0e} multiply-adds/s. The python "
        "backend is the readable loop-by-loop reference, hundreds to thousands of times "
        "slower than 'numpy' or 'numba'; pass backend='numba' (or 'numpy') for real work.",
        SlowBackendWarning,
        stacklevel=3,
    )


def _check_dtype(dtype) -> np.dtype:
    try:
        dt = np.dtype(dtype)
    except TypeError:
        dt = None
    if dt not in chk.FLOAT_DTYPES:
        raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
    return dt


def check_verbose(verbose) -> int:
    """Keras' ``verbose``: 0, 1, 2, ``"auto"`` (1), True (1) or False (0)."""
    if verbose == "auto" and isinstance(verbose, str):
        return 1
    if isinstance(verbose, (bool, np.bool_)):
        return int(verbose)
    if not isinstance(verbose, numbers.Integral) or verbose not in (0, 1, 2):
        raise ValueError(f"verbose must be 0, 1, 2, 'auto', True or False, got {verbose!r}")
    return int(verbose)


def _slice_plan(plan: losses.Plan, start, stop) -> losses.Plan:
    return losses.Plan(plan.head, plan.last_activation, plan.T[start:stop])


def _dense_targets(plan: losses.Plan, k: int) -> np.ndarray:
    T = plan.T
    return np.eye(k, dtype=np.float64)[T] if T.ndim == 1 else T


@dataclass
class FitRun:
    """One ``fit`` call's validated arguments and data."""

    X: np.ndarray
    plan: losses.Plan
    val: tuple | None  # (X_val, plan_val, sample_weight_val or None)
    batch_size: int
    epochs: int
    initial_epoch: int
    verbose: int
    shuffle: bool
    seed: int | None
    callbacks: list
    sample_weight: np.ndarray | None = None  # (n,) of the model dtype


class Sequential:
    """A linear stack of layers: :class:`~fastnn.Dense`, :class:`~fastnn.Flatten`,
    optionally led by :class:`~fastnn.Input`.

    ``backend``: a backend name used by every computation of this model, winning
    over ``fastnn.set_backend``/``use_backend`` without changing them; ``None``
    (default) uses the current backend at each call.  ``dtype``: ``"float32"``
    (default) or ``"float64"``.  ``seed``: initial weights (see the module doc).
    ``name``: default ``sequential``, ``sequential_1``, ... (Keras style).
    """

    def __init__(self, layers=None, backend=None, *, dtype="float32", seed=None, name=None):
        self._backend = dispatch.parse_backend(backend)
        self.dtype = _check_dtype(dtype)
        if seed is None:
            seed = utils.next_seed()
        self.seed = chk.check_int("seed", seed, low=0)
        if name is not None and (not isinstance(name, str) or not name):
            raise TypeError(f"name must be a non-empty string, got {name!r}")
        self.name = unique_name("sequential") if name is None else name
        self._layers: list[Layer] = []
        self._input_shape: tuple[int, ...] | None = None
        self.optimizer: optimizers.Optimizer | None = None
        self.loss: str | losses.Loss | None = None
        self.metrics: tuple[metrics_mod.Metric, ...] = ()
        self.history: History | None = None
        self.stop_training = False
        #: Stop ``fit`` when the loss becomes NaN/inf (restoring the last weights with a
        #: finite loss).  Set to False to let training run on regardless.
        self.stop_on_nonfinite = True
        self._scale_warned = False
        if layers is not None:
            if isinstance(layers, (Layer, Input)):
                layers = [layers]
            if not isinstance(layers, (list, tuple)):
                raise TypeError(
                    f"layers must be a list of fastnn layers, got {type(layers).__name__}"
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
    def layers(self) -> list[Layer]:
        """The layers (Dense, Flatten, ...) in order; a leading Input is not listed."""
        return list(self._layers)

    @property
    def dense_layers(self) -> list[Dense]:
        """The Dense layers only: what the contract's ``train_batches`` trains."""
        return [layer for layer in self._layers if isinstance(layer, Dense)]

    @property
    def built(self) -> bool:
        dense = self.dense_layers
        return bool(dense) and all(layer.built for layer in dense)

    @property
    def input_shape(self) -> tuple | None:
        """``(None, *per-sample shape)`` once known."""
        if self._input_shape is not None:
            return (None, *self._input_shape)
        return None if self.input_dim is None else (None, self.input_dim)

    @property
    def _flattens(self) -> bool:
        """True if a Flatten comes before the first Dense (inputs may be N-D)."""
        for layer in self._layers:
            if isinstance(layer, Flatten):
                return True
            if isinstance(layer, Dense):
                return False
        return False

    @property
    def input_dim(self) -> int | None:
        """Features per sample after flattening (the first Dense layer's inputs)."""
        if self._input_shape is not None:
            return math.prod(self._input_shape)
        dense = self.dense_layers
        if not dense:
            return None
        return dense[0].W.shape[0] if dense[0].built else dense[0].input_dim

    def add(self, layer) -> None:
        """Append a layer (an :class:`Input` only as the first entry)."""
        if isinstance(layer, Input):
            if self._layers or self._input_shape is not None:
                raise ValueError("fastnn.Input can only be the first entry of a Sequential model")
            self._set_input_shape(layer.per_sample)
            return
        if not isinstance(layer, Layer):
            raise TypeError(
                "Sequential only holds fastnn.Dense layers and the other fastnn layers "
                f"(Flatten; Input first), got {type(layer).__name__}"
            )
        self._check_new_layer(layer)
        if layer.input_shape is not None and self._input_shape is None and not self.dense_layers:
            self._set_input_shape(layer.input_shape)
        elif isinstance(layer, Dense) and layer.input_dim is not None and not self.dense_layers:
            if self._input_shape is None:
                self._set_input_shape((layer.input_dim,))
        self._layers.append(layer)
        if isinstance(layer, Dense):
            self._check_dense_input(layer)
        # Keras builds as soon as the input size is known (Input, input_dim, input_shape).
        if self.input_dim is not None and isinstance(layer, Dense) and not layer.built:
            self._build_dense(len(self.dense_layers) - 1)

    def _set_input_shape(self, shape) -> None:
        self._input_shape = tuple(shape)

    def _check_new_layer(self, layer) -> None:
        if any(layer is other for other in self._layers):
            raise ValueError(f"layer {layer.name!r} is already in the model")
        if any(layer.name == other.name for other in self._layers):
            raise ValueError(
                f"the model already has a layer named {layer.name!r}; layer names must be unique"
            )
        dense = self.dense_layers
        if isinstance(layer, Dense) and dense and layer.input_dim is not None:
            if layer.input_dim != dense[-1].units:
                raise ValueError(
                    f"layer {layer.name!r} has input_dim={layer.input_dim} but the previous "
                    f"layer has {dense[-1].units} units"
                )
        if isinstance(layer, Dense) and layer.built:
            expected = dense[-1].units if dense else (self.input_dim or layer.W.shape[0])
            if layer.W.shape[0] != expected or layer.W.dtype != self.dtype:
                raise ValueError(
                    "a built layer can only join a model with matching shape and dtype"
                )

    def _check_dense_input(self, layer: Dense) -> None:
        """A first Dense layer fed N-D samples needs a Flatten before it."""
        first = self.dense_layers[0] is layer
        shape = self._input_shape
        if first and shape is not None and len(shape) > 1 and not self._flattens:
            self._layers.pop()
            raise ValueError(
                f"Dense takes one feature axis but the model's input shape is {shape}; add "
                "fastnn.Flatten() before the first Dense layer"
            )
        n_in = self.input_dim
        if first and layer.input_dim is not None and n_in is not None and layer.input_dim != n_in:
            self._layers.pop()
            raise ValueError(
                f"layer {layer.name!r} has input_dim={layer.input_dim} but the model's inputs "
                f"have {n_in} features"
            )

    def _build_dense(self, l: int, n_in: int | None = None) -> None:
        dense = self.dense_layers
        if n_in is None:
            n_in = self.input_dim if l == 0 else dense[l - 1].units
        dense[l].build(n_in, np.random.default_rng([self.seed, l]), self.dtype)

    def build(self, input_dim: int) -> None:
        """Create every layer's weights for inputs with ``input_dim`` features (flattened)."""
        input_dim = chk.check_int("input_dim", input_dim, low=1)
        dense = self.dense_layers
        if not dense:
            raise ValueError("the model has no Dense layers: add some before building it")
        expected = self.input_dim
        if expected is not None and expected != input_dim:
            raise ValueError(
                f"X has {input_dim} features, but Sequential is expecting "
                f"{expected} features as input."
            )
        for l, layer in enumerate(dense):
            if not layer.built:
                self._build_dense(l, input_dim if l == 0 else None)

    def _ensure_built(self, n_features: int) -> None:
        if not self.dense_layers:
            raise ValueError("the model has no Dense layers: add Dense layers first")
        if self.built:
            data_checks.check_features(np.empty((0, n_features)), self.input_dim)
        else:
            self.build(n_features)

    def get_layer(self, name=None, index=None) -> Layer:
        """A layer by ``name`` or by ``index`` into :attr:`layers` (Keras' ``get_layer``)."""
        if (name is None) == (index is None):
            raise ValueError("get_layer needs exactly one of name= or index=")
        if index is not None:
            index = chk.check_int("index", index)
            if not -len(self._layers) <= index < len(self._layers):
                raise ValueError(
                    f"index {index} is out of range: the model has {len(self._layers)} layers"
                )
            return self._layers[index]
        for layer in self._layers:
            if layer.name == name:
                return layer
        names = ", ".join(repr(layer.name) for layer in self._layers) or "none"
        raise ValueError(f"no layer named {name!r}; the layers are: {names}")

    def count_params(self) -> int:
        total, n_in = 0, self.input_dim
        for layer in self.dense_layers:
            count = layer.count_params(n_in)
            if count is None:
                raise ValueError("the model is not built yet: call build(input_dim) or fit first")
            total += count
            n_in = layer.units
        return total

    def _backend_label(self) -> str:
        """The backend that computes, resolved (``numba``, ``numpy (auto)``, ...)."""
        try:
            ops = dispatch.get_ops(self._backend)
        except (ValueError, ImportError) as exc:
            return f"{self._backend or 'current'} (unavailable: {exc})"
        label = ops.impl.name
        if ops.name != label:
            label += f" ({ops.name})"
        if self._backend is None:
            label += ", the current backend"
        return label

    def summary(self, print_fn=print) -> None:
        """Print a table of layers, output shapes and parameter counts (Keras style)."""
        rows = [("Layer (type)", "Output Shape", "Param #")]
        n_in, total, frozen = self.input_dim, 0, 0
        for layer in self._layers:
            if isinstance(layer, Dense):
                count = layer.count_params(n_in)
                total = None if count is None or total is None else total + count
                frozen += 0 if layer.trainable or count is None else count
                kind, shape = f"Dense, {layer.activation}", f"(None, {layer.units})"
                n_in = layer.units
            else:
                count, kind = 0, type(layer).__name__
                shape = "(None, ?)" if n_in is None else f"(None, {n_in})"
            rows.append((f"{layer.name} ({kind})", shape, "?" if count is None else f"{count:,}"))
        print_fn(
            "\n".join(
                _summary_lines(self.name, rows, (total, frozen), self.dtype, self._backend_label())
            )
        )

    # ------------------------------------------------------------------ weights
    def get_weights(self) -> list[np.ndarray]:
        """Copies of the weights: ``[W0, b0, W1, b1, ...]`` (no ``b`` for ``use_bias=False``)."""
        return [A.copy() for layer in self.dense_layers if layer.built for A in layer.weights()]

    def _weight_shapes(self, n_in: int) -> list[tuple[int, ...]]:
        shapes = []
        for layer in self.dense_layers:
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
        if not self.dense_layers:
            raise ValueError("the model has no Dense layers")
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
        for layer in self.dense_layers:
            np.copyto(layer.W, next(it), casting="unsafe")
            if layer.use_bias:
                np.copyto(layer.b, next(it), casting="unsafe")

    def _params(self) -> list[np.ndarray]:
        """Trained arrays in the contract order ``W0, b0, W1, b1, ...`` (bias always)."""
        return [A for layer in self.dense_layers for A in (layer.W, layer.b)]

    # ------------------------------------------------------------------ compile
    def compile(self, optimizer="sgd", loss=None, metrics=None) -> None:
        """Choose the optimizer (name or instance), the loss (name or :mod:`fastnn.losses`
        object) and the metrics (names or :mod:`fastnn.metrics` objects).

        Raises ValueError when the loss cannot meet the last layer's output (a
        cross-entropy on probabilities after a non-probability activation), naming the
        fix (see :func:`fastnn.losses.check_output`)."""
        opt = optimizers.get(optimizer)
        if loss is None:
            raise ValueError(
                f"compile needs a loss; valid choices are: "
                f"{', '.join(repr(n) for n in losses.LOSS_NAMES)} or a fastnn.losses object"
            )
        loss = losses.get(loss)
        if self.dense_layers:
            last = self.dense_layers[-1]
            losses.check_output(loss, last.activation, last.name)
        chosen = metrics_mod.get_list(metrics)
        self.optimizer, self.loss, self.metrics = opt, loss, chosen
        opt.state = None
        opt.iterations = 0
        if self.built:
            opt.build(self._params())

    @property
    def metrics_names(self) -> list[str]:
        """``["loss", *metric names]``: the order of ``evaluate``'s list."""
        return ["loss", *(m.name for m in self.metrics)]

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
        """(Z, Y) of the last layer for ``X``, through ``ops.dense_forward`` (Dropout is
        the identity outside ``fit``)."""
        A = X
        Z = None
        for layer in self.dense_layers:
            kw = {} if layer.negative_slope is None else {"negative_slope": layer.negative_slope}
            Z, A = ops.dense_forward(A, layer.W, layer.b, layer.activation, **kw)
        return Z, A

    def _check_x(self, x, name="x") -> np.ndarray:
        if self._flattens:
            x = self._flatten_input(x, name)
        X = data_checks.check_2d(name, x, self.dtype)
        expected = self.input_dim
        if expected is not None:
            data_checks.check_features(X, expected)
        return X

    def _flatten_input(self, x, name):
        """``(n, d1, d2, ...)`` samples as ``(n, d1*d2*...)`` rows (a leading Flatten)."""
        try:
            arr = np.asarray(x)
        except (ValueError, TypeError):
            return x  # check_2d reports it
        if arr.ndim <= 2:
            return arr
        shape = self._input_shape
        if shape is not None and tuple(arr.shape[1:]) != shape and len(shape) > 1:
            raise ValueError(
                f"{name} has samples of shape {arr.shape[1:]}, but the model expects {shape}"
            )
        return arr.reshape(arr.shape[0], -1)

    def _prepare(self, x, y, xname="x", yname="y"):
        X = self._check_x(x, xname)
        last = self.dense_layers[-1]
        plan = losses.prepare(self.loss, last.activation, y, last.units, self.dtype, yname)
        data_checks.check_consistent_length(X, plan.T)
        return X, plan

    def predict(self, x, batch_size=None, verbose=0) -> np.ndarray:
        """Outputs ``(n, units of the last layer)`` for ``x: (n, n_features)`` (or
        ``(n, d1, d2, ...)`` behind a Flatten).  ``verbose=1`` prints one Keras-style
        line of steps and time (steps of ``batch_size``, default 32, as Keras counts)."""
        if not self.dense_layers:
            raise ValueError("the model has no Dense layers: add Dense layers first")
        if batch_size is not None:
            batch_size = chk.check_int("batch_size", batch_size, low=1)
        verbose = check_verbose(verbose)
        X = self._check_x(x)
        self._ensure_built(X.shape[1])
        ops = self._ops()
        _warn_if_slow(ops, len(X) * self.count_params(), "predict")
        t0 = time.perf_counter()
        # Without a batch size, chunks of CHUNK_ROWS rows bound the hidden layers'
        # temporary activations (a 10,000 x 256 float32 layer is 10 MB per array).
        step = batch_size or CHUNK_ROWS
        if step >= len(X):
            out = self._forward(ops, X)[1]
        else:
            out = np.concatenate(
                [self._forward(ops, X[i : i + step])[1] for i in range(0, len(X), step)]
            )
        if verbose:
            steps = -(-len(X) // (batch_size or 32))
            print(f"{steps}/{steps} - {format_time(time.perf_counter() - t0, steps)}")
        return out

    def __call__(self, x) -> np.ndarray:
        """``model(x)``: the predictions as an array (``predict(x)``, silent)."""
        return self.predict(x)

    def _penalty(self, ops) -> float:
        """The kernel regularizers' penalty of the current weights (Keras adds it to
        every reported loss: training, ``evaluate``, ``val_loss``)."""
        total = 0.0
        for layer in self.dense_layers:
            reg = layer.kernel_regularizer
            if reg is not None and layer.trainable and reg.pair() != (0.0, 0.0):
                l1, l2 = reg.pair()
                total += ops.penalty(layer.W, np.zeros_like(layer.W), l1, l2)
        return total

    def _measure(self, ops, X, plan, batch_size, chosen, with_loss=True, weights=None) -> dict:
        """Mean loss (if ``with_loss``; weighted by ``weights: (n,)`` as Keras'
        ``sample_weight``, plus the regularizers' penalty) and ``chosen`` metrics of
        ``X`` against ``plan.T``."""
        n, k = len(X), self.dense_layers[-1].units
        step = batch_size or CHUNK_ROWS  # chunks bound the temporaries, as in predict
        sums = dict.fromkeys((["loss"] if with_loss else []) + [m.name for m in chosen], 0.0)
        for i in range(0, n, step):
            Xb, Tb = X[i : i + step], plan.T[i : i + step]
            Z, Y = self._forward(ops, Xb)
            if with_loss:
                wb = None if weights is None else weights[i : i + step]
                sums["loss"] += losses.batch_loss(ops, plan, Z, Y, Tb, wb) * len(Xb)
            if not chosen:
                continue
            dense_T = _dense_targets(_slice_plan(plan, i, i + step), k)
            labels = Tb if Tb.ndim == 1 else metrics_mod.labels_of(Tb)
            for m in chosen:
                if m.counted_by_trainer(k):
                    sums[m.name] += metrics_mod.count_correct(Z if plan.fused else Y, Tb, plan.head)
                else:
                    sums[m.name] += float(np.sum(m.values(Y, dense_T, labels)))
        logs = {key: value / n for key, value in sums.items()}
        if with_loss:
            logs["loss"] += self._penalty(ops)
        return logs

    def evaluate(self, x=None, y=None, batch_size=None, verbose=0, sample_weight=None,
                 return_dict=False):  # fmt: skip
        """The loss (mean over samples), or ``[loss, *metrics]`` with metrics, or with
        ``return_dict=True`` ``{"loss": ..., <metric name>: ...}``.  ``verbose=1`` prints
        one line: ``steps/steps - loss: ...`` (steps of ``batch_size``, default 32).

        ``sample_weight: (n,)``: the loss is ``sum(w_i * loss_i) / n`` (Keras); metrics
        stay unweighted.  The kernel regularizers' penalty is added to the loss."""
        self._check_compiled("evaluate")
        if not self.dense_layers:
            raise ValueError("the model has no Dense layers: add Dense layers first")
        if batch_size is not None:
            batch_size = chk.check_int("batch_size", batch_size, low=1)
        verbose = check_verbose(verbose)
        if x is None or y is None:
            raise ValueError("evaluate needs data: evaluate(x, y)")
        X, plan = self._prepare(x, y)
        weights = losses.check_sample_weight(sample_weight, len(X), self.dtype)
        self._ensure_built(X.shape[1])
        ops = self._ops()
        _warn_if_slow(ops, len(X) * self.count_params(), "evaluate")
        logs = self._measure(ops, X, plan, batch_size, self.metrics, weights=weights)
        if verbose:
            steps = -(-len(X) // (batch_size or 32))
            print(f"{steps}/{steps}{format_logs(logs)}")
        if return_dict:
            return logs
        return list(logs.values()) if self.metrics else logs["loss"]

    # ------------------------------------------------------------------ fit
    def fit(
        self,
        x=None,
        y=None,
        batch_size=None,
        epochs=1,
        verbose="auto",
        validation_data=None,
        validation_split=0.0,
        shuffle=True,
        seed=None,
        callbacks=None,
        initial_epoch=0,
        class_weight=None,
        sample_weight=None,
    ) -> History:
        """Train for ``epochs`` passes over ``(x, y)`` in mini-batches; returns a :class:`History`.

        ``batch_size`` rows per update (None: 32); each epoch visits the rows in the
        order ``numpy.random.default_rng(seed).permutation`` (one permutation per
        epoch; ``shuffle=False``: in order).  ``validation_split`` holds out the
        *last* fraction of the rows (before shuffling) as validation data, unless
        ``validation_data=(x_val, y_val)`` is given.  ``initial_epoch``: the epoch to
        start at (resuming; epochs ``initial_epoch .. epochs-1`` run).  Progress: see
        :mod:`fastnn.progress`; callbacks and batch hooks: :mod:`fastnn.training`.

        Everything is validated before any state changes: a call that raises
        leaves weights, optimizer state and ``history`` as they were.  Ctrl-C
        (KeyboardInterrupt) propagates, leaving the weights of the last completed
        chunk of batches and ``model.history`` with the completed epochs.  If the
        loss becomes NaN/inf, training stops with a RuntimeWarning, the weights of
        the last batch whose loss was finite are restored and
        ``history.stopped_on_nonfinite`` is set.

        ``sample_weight: (n,)`` weighs each row's loss (Keras: a batch's loss is
        ``sum(w_i * loss_i) / batch_size``); ``class_weight={class: weight}`` does the
        same by class (missing classes weigh 1); not both.  ``validation_data`` may be
        ``(x_val, y_val, sample_weight_val)``.  Metrics stay unweighted.  Dropout
        layers, ``trainable=False`` layers, kernel regularizers and the optimizer's
        options go to the backend's fused ``train_batches`` (see
        :mod:`fastnn.training`).
        """
        run = self._validate_fit(
            x, y, batch_size, epochs, verbose, validation_data, validation_split, shuffle,
            seed, callbacks, initial_epoch, class_weight, sample_weight,
        )  # fmt: skip
        loop = self._plan_epochs(run)
        loop.run()
        return self.history

    def _validate_fit(
        self, x, y, batch_size, epochs, verbose, validation_data, validation_split, shuffle,
        seed, callbacks, initial_epoch, class_weight=None, sample_weight=None,
    ) -> FitRun:  # fmt: skip
        """Step 1 of ``fit``: check every argument and the data; change nothing."""
        self._check_compiled("fit")
        if not self.dense_layers:
            raise ValueError("the model has no Dense layers: add Dense layers first")
        batch_size = 32 if batch_size is None else chk.check_int("batch_size", batch_size, low=1)
        epochs = chk.check_int("epochs", epochs, low=0)
        initial_epoch = chk.check_int("initial_epoch", initial_epoch, low=0)
        verbose = check_verbose(verbose)
        if isinstance(validation_split, bool) or not isinstance(validation_split, numbers.Real):
            raise TypeError(
                "validation_split must be a number in [0, 1), got "
                f"{type(validation_split).__name__}"
            )
        if not 0 <= validation_split < 1:
            raise ValueError(f"validation_split must be in [0, 1), got {validation_split}")
        if not isinstance(shuffle, (bool, np.bool_)):
            raise TypeError(f"shuffle must be True or False, got {shuffle!r}")
        seed = utils.next_seed() if seed is None else chk.check_int("seed", seed, low=0)
        callbacks = _check_callbacks(callbacks)
        self._check_trainable_layers()
        if x is None or y is None:
            raise ValueError("fit needs training data: fit(x, y, ...)")
        X, plan = self._prepare(x, y)
        weights = self._fit_weights(plan, class_weight, sample_weight)
        self._warn_unscaled(x, X)
        X, plan, weights, val = self._validation_data(
            X, plan, weights, validation_data, validation_split
        )
        return FitRun(X, plan, val, batch_size, epochs, initial_epoch, verbose, bool(shuffle),
                      seed, callbacks, weights)  # fmt: skip

    def _check_trainable_layers(self) -> None:
        """Differentiable activations, a loss that fits the output, Dropout placement."""
        for layer in self.dense_layers:
            if layer.activation not in ALL_DIFFERENTIABLE_ACTIVATIONS:
                raise ValueError(
                    f"layer {layer.name!r} uses activation {layer.activation!r}, which has no "
                    f"gradient; fit needs one of: "
                    f"{', '.join(repr(a) for a in ALL_DIFFERENTIABLE_ACTIVATIONS)} "
                    "(use fastnn.Perceptron for the step-activation learning rule)"
                )
        last = self.dense_layers[-1]
        losses.check_output(self.loss, last.activation, last.name)
        seen_dense = False
        for i, layer in enumerate(self._layers):
            seen_dense = seen_dense or isinstance(layer, Dense)
            if not isinstance(layer, Dropout):
                continue
            if not seen_dense:
                raise ValueError(
                    f"Dropout layer {layer.name!r} comes before the first Dense layer: fastnn "
                    "drops hidden units only (put it after a hidden Dense layer)"
                )
            if not any(isinstance(later, Dense) for later in self._layers[i + 1 :]):
                raise ValueError(
                    f"Dropout layer {layer.name!r} comes after the last Dense layer: the output "
                    "is never dropped (put it between hidden Dense layers)"
                )

    def _fit_weights(self, plan, class_weight, sample_weight):
        """Per-row loss weights from ``sample_weight`` or ``class_weight`` (or None)."""
        if class_weight is not None and sample_weight is not None:
            raise ValueError(
                "fit got both class_weight and sample_weight; pass one (multiply the class "
                "weights into sample_weight to combine them)"
            )
        if class_weight is not None:
            k = self.dense_layers[-1].units
            return losses.class_weight_to_sample_weight(class_weight, plan, k, self.dtype)
        return losses.check_sample_weight(sample_weight, len(plan.T), self.dtype)

    def _validation_data(self, X, plan, weights, validation_data, validation_split):
        """``(X, plan, weights, val)`` with ``val = (X_val, plan_val, weights_val)`` or None."""
        if validation_data is not None:
            if not isinstance(validation_data, (list, tuple)) or len(validation_data) not in (2, 3):
                raise ValueError(
                    "validation_data must be a tuple (x_val, y_val) or (x_val, y_val, "
                    "sample_weight_val)"
                )
            X_val, plan_val = self._prepare(*validation_data[:2], xname="x_val", yname="y_val")
            w_val = None
            if len(validation_data) == 3:
                w_val = losses.check_sample_weight(
                    validation_data[2], len(X_val), self.dtype, "sample_weight_val"
                )
            return X, plan, weights, (X_val, plan_val, w_val)
        if validation_split <= 0:
            return X, plan, weights, None
        split_at = int(math.floor(len(X) * (1 - validation_split)))
        if split_at < 1 or split_at == len(X):
            raise ValueError(
                f"validation_split={validation_split} of {len(X)} samples leaves "
                f"{split_at} for training and {len(X) - split_at} for validation; "
                "both need at least one"
            )
        w_val = None if weights is None else weights[split_at:]
        val = (X[split_at:], _slice_plan(plan, split_at, None), w_val)
        w_train = None if weights is None else weights[:split_at]
        return X[:split_at], _slice_plan(plan, 0, split_at), w_train, val

    def _warn_unscaled(self, x, X) -> None:
        """Warn once per model when inputs look unscaled (raw pixels, huge values)."""
        if self._scale_warned or X.size == 0:
            return
        kind = getattr(x, "dtype", None)
        integers = kind is not None and np.dtype(kind).kind in "iu"
        # A heuristic needs no full pass over a large X (that would cost a fraction of an
        # epoch on every fit call): evenly spaced rows show raw pixels or huge features.
        rows = X[:: max(1, len(X) // SCALE_SAMPLE_ROWS)]
        top = float(max(rows.max(), -rows.min()))
        if not ((integers and top > 1) or top > LARGE_INPUT):
            return
        self._scale_warned = True
        what = (
            f"integers up to {top:g} (dtype {np.dtype(kind)})"
            if integers
            else f"|x| up to {top:.3g}"
        )
        pixels = 128 <= top <= 255  # 8-bit images; small integers are counts or codes
        fix = "x / 255.0 for 0..255 pixels" if pixels else "standardize each feature"
        warnings.warn(
            f"fit got unscaled inputs: x holds {what}. Unscaled inputs train to worse "
            f"accuracy or diverge; scale them first ({fix}, e.g. "
            + ("x = x / 255.0)." if pixels else "x = (x - x.mean(0)) / x.std(0))."),
            InputScaleWarning,
            stacklevel=4,
        )

    def _plan_epochs(self, run: FitRun) -> EpochLoop:
        """Step 2 of ``fit``: build, set up optimizer, trainer, history and callbacks."""
        ops = self._ops()
        self._ensure_built(run.X.shape[1])
        params = self._params()
        opt = self.optimizer
        if opt.state is None or [S[0].shape for S in opt.state] != [P.shape for P in params]:
            opt.build(params)
        n_epochs = max(run.epochs - run.initial_epoch, 0)
        _warn_if_slow(ops, 3.0 * len(run.X) * self.count_params() * n_epochs, "fit")
        history = History()
        self.history = history
        per_batch = any(cb.wants_batch_hooks for cb in run.callbacks)
        chunking = Chunking(CHUNK_ROWS, CHUNK_MACS, FUSED_MACS, FUSED_ROWS)
        trainer = Trainer(
            ops, self.dense_layers, run.X, run.plan, run.batch_size, opt, chunking,
            stop_on_nonfinite=self.stop_on_nonfinite, per_batch=per_batch,
            options=train_options(self._layers, run.seed, run.sample_weight),
        )  # fmt: skip
        history.params = {"epochs": run.epochs, "steps": trainer.n_batches,
                          "verbose": run.verbose, "batch_size": run.batch_size}  # fmt: skip
        cbs = [*run.callbacks, history]
        for cb in cbs:
            cb.set_model(self)
            cb.set_params(dict(history.params))
        k = self.dense_layers[-1].units
        counted = [m.name for m in self.metrics if m.counted_by_trainer(k)]
        extra = [m for m in self.metrics if not m.counted_by_trainer(k)]
        # Several epochs per call when nothing needs to run between epochs: tiny
        # full-batch nets then make one compiled call per thousands of steps.
        fuse = (run.verbose == 0 and not run.callbacks and run.val is None and not extra
                and trainer.aligned)  # fmt: skip
        progress = Progress(run.verbose, run.epochs, trainer.n_batches)
        self.stop_training = False
        return EpochLoop(
            self, trainer, cbs, history, progress, self._epoch_logs(ops, run, counted, extra),
            run.seed, epochs=run.epochs, first_epoch=run.initial_epoch,
            shuffle=run.shuffle, fuse=fuse, counted_names=counted,
        )  # fmt: skip

    def _epoch_logs(self, ops, run: FitRun, counted, extra):
        """Step 3's measurements: ``logs_for(loss, acc, diverged)`` for the epoch loop."""

        def logs_for(loss, acc, diverged):
            logs = {"loss": loss}
            for m in self.metrics:
                logs[m.name] = acc if m.name in counted else math.nan
            if extra and not diverged:
                logs.update(self._measure(ops, run.X, run.plan, None, extra, with_loss=False))
            if run.val is not None:
                if diverged:
                    val = dict.fromkeys(["loss", *(m.name for m in self.metrics)], math.nan)
                else:
                    X_val, plan_val, w_val = run.val
                    val = self._measure(ops, X_val, plan_val, None, self.metrics, weights=w_val)
                logs.update({f"val_{key}": value for key, value in val.items()})
            return logs

        return logs_for

    # ------------------------------------------------------------------ saving
    def save(self, filepath) -> None:
        """Save architecture, weights and optimizer state to one ``.npz`` archive.

        ``.npz`` is appended when ``filepath`` has no suffix; ``.keras``/``.h5`` are
        refused (fastnn does not write Keras files).  See :mod:`fastnn.saving`.
        """
        from . import __version__

        path = saving.resolve_path(filepath)
        if not self.built:
            raise ValueError(
                "the model is not built yet (it has no weights to save): call build(input_dim), "
                "fit or predict first"
            )
        meta = {
            "format": saving.FORMAT,
            "format_version": saving.FORMAT_VERSION,
            "fastnn_version": __version__,
            "config": self.get_config(),
            "compile": None,
        }
        arrays = saving.layer_arrays(self.dense_layers)
        opt = self.optimizer
        if opt is not None:
            meta["compile"] = {
                "loss": losses.serialize(self.loss),
                "metrics": [_metric_entry(m) for m in self.metrics],
                "optimizer": {
                    "name": optimizers.key_of(opt),
                    "config": opt.get_config(),
                    "iterations": int(opt.iterations) if opt.state is not None else 0,
                },
            }
            for p, S in enumerate(opt.state or ()):
                for s, A in enumerate(S):
                    arrays[f"opt_{p}_{s}"] = A
        arrays[saving.META] = saving.encode_json(meta)
        saving.write_archive(path, arrays)

    def save_weights(self, filepath) -> None:
        """Save the weights only (``.npz``; suffix rules as :meth:`save`)."""
        path = saving.resolve_path(filepath, "weights")
        if not self.built:
            raise ValueError("the model is not built yet: it has no weights to save")
        arrays = saving.layer_arrays(self.dense_layers)
        meta = {
            "format": saving.WEIGHTS_FORMAT,
            "format_version": 1,
            "layers": [layer.name for layer in self.dense_layers],
        }
        arrays[saving.WEIGHTS_META] = saving.encode_json(meta)
        saving.write_archive(path, arrays)

    def load_weights(self, filepath) -> None:
        """Load weights written by :meth:`save_weights` (or :meth:`save`) into this
        model, which must have the same Dense layer shapes (layer names may differ)."""
        path = saving.existing_path(filepath)
        with saving.loading(path, "fastnn weights"):
            arrays = saving.read_archive(path)
            if saving.WEIGHTS_META in arrays:
                saving.decode_meta(
                    arrays, saving.WEIGHTS_META, saving.WEIGHTS_FORMAT, 1, "fastnn weights"
                )
            else:  # a full model file: take its weights, ignore the rest
                saving.decode_meta(arrays, saving.META, saving.FORMAT, saving.FORMAT_VERSION)
                arrays = {k: v for k, v in arrays.items() if not k.startswith("opt_")}
            first = arrays.get("W_0")
            saving.expect(first is not None and first.ndim == 2, "array 'W_0' is missing")
            n_in = self.input_dim if self.input_dim is not None else first.shape[0]
            self._take_layer_weights(arrays, n_in, staged=True)

    def _take_layer_weights(self, arrays, n_in, staged=False) -> None:
        """Pop, check and copy ``W_<l>``/``b_<l>`` into the (built) Dense layers."""
        taken = []
        for l, layer in enumerate(self.dense_layers):
            W = saving.take_array(arrays, f"W_{l}", (n_in, layer.units), self.dtype)
            b = saving.take_array(arrays, f"b_{l}", (layer.units,), self.dtype)
            taken.append((W, b))
            n_in = layer.units
        if staged:
            saving.expect(not any(k.startswith(("W_", "b_")) for k in arrays),
                          f"it holds more layers than the model: {sorted(arrays)}")  # fmt: skip
        if not self.built:
            self.build(taken[0][0].shape[0])
        for layer, (W, b) in zip(self.dense_layers, taken):
            np.copyto(layer.W, W)
            np.copyto(layer.b, b if layer.use_bias else 0)

    def get_config(self) -> dict:
        """Keras-style configuration: ``{"name", "dtype", "seed", "input_shape",
        "input_dim", "layers": [{"class_name", "config"}, ...]}``."""
        return {
            "name": self.name,
            "dtype": self.dtype.name,
            "seed": self.seed,
            "input_shape": None if self._input_shape is None else list(self._input_shape),
            "input_dim": self.input_dim,
            "layers": [
                {"class_name": type(layer).__name__, "config": layer.get_config()}
                for layer in self._layers
            ],
        }

    @classmethod
    def from_config(cls, config: dict, backend=None) -> Sequential:
        """A new, unbuilt-or-freshly-initialized model from :meth:`get_config`'s dict
        (weights are drawn from the saved ``seed``, not copied)."""
        if not isinstance(config, dict):
            raise TypeError(f"config must be a dict, got {type(config).__name__}")
        model = cls(backend=backend, dtype=config.get("dtype", "float32"),
                    seed=config.get("seed"), name=config.get("name"))  # fmt: skip
        shape = config.get("input_shape")
        if shape is not None:
            model.add(Input(shape=tuple(shape)))
        for entry in config.get("layers", []):
            if isinstance(entry, dict) and "class_name" not in entry:
                entry = {"class_name": "Dense", "config": entry}  # format version 1
            model.add(layer_from_config(entry))
        if config.get("input_dim") is not None and not model.built:
            model.build(config["input_dim"])
        return model

    def __repr__(self) -> str:
        return f"<Sequential {self.name!r} layers={self._layers} dtype={self.dtype.name}>"


def _params_size(count: int, dtype) -> str:
    size = count * dtype.itemsize
    return f"{size:.2f} B" if size < 1024 else (
        f"{size / 1024:.2f} KB" if size < 2**20 else f"{size / 2**20:.2f} MB"
    )  # fmt: skip


def _summary_lines(name, rows, counts, dtype, backend) -> list[str]:
    """The summary table; ``counts``: (total or None, non-trainable)."""
    total, frozen = counts
    widths = [max(len(r[i]) for r in rows) + 2 for i in range(3)]
    line = "=" * sum(widths)
    out = [f'Model: "{name}"', line.replace("=", "-")]
    out.append("".join(c.ljust(w) for c, w in zip(rows[0], widths)).rstrip())
    out.append(line)
    for r in rows[1:]:
        out.append("".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
    out.append(line)
    if total is None:
        out.append("Total params: ? (the model is not built: call build(input_dim) or fit)")
    else:
        trained = total - frozen
        out.append(f"Total params: {total:,} ({_params_size(total, dtype)})")
        out.append(f"Trainable params: {trained:,} ({_params_size(trained, dtype)})")
        out.append(f"Non-trainable params: {frozen:,} ({_params_size(frozen, dtype)})")
    out.append(f"dtype: {dtype.name}, backend: {backend}")
    return out


def _check_callbacks(callbacks) -> list:
    callbacks = [] if callbacks is None else callbacks
    if isinstance(callbacks, Callback):
        callbacks = [callbacks]
    if not isinstance(callbacks, (list, tuple)) or not all(
        isinstance(c, Callback) for c in callbacks
    ):
        raise TypeError("callbacks must be a list of fastnn.callbacks.Callback instances")
    for cb in callbacks:
        cb.check_hooks()
    return list(callbacks)


def _metric_entry(metric) -> str | dict:
    """How a metric is saved: its name when compile got that name, else class + config."""
    plain = metrics_mod.METRICS.get(metric.name)
    if plain is type(metric) and metric.get_config() == type(metric)(name=metric.name).get_config():
        return metric.name
    return {"class_name": type(metric).__name__, "config": metric.get_config()}


# ---------------------------------------------------------------------- loading
def load_model(filepath, backend=None) -> Sequential:
    """Load a model written by ``Sequential.save`` (see :mod:`fastnn.saving`).

    ``backend``: the loaded model's ``backend`` (None: the current backend at each
    call); files do not tie a model to a backend.  Raises ``ValueError`` for a
    file that is truncated, corrupt, not a fastnn model, from a newer format, or
    that holds object arrays.  A path without a suffix also finds ``path + ".npz"``.
    """
    path = saving.existing_path(filepath)
    with saving.loading(path):
        arrays = saving.read_archive(path)
        meta = saving.decode_meta(arrays, saving.META, saving.FORMAT, saving.FORMAT_VERSION)
        model = _model_from_meta(meta, backend)
        model._take_layer_weights(arrays, model.input_dim)
        if meta.get("compile") is not None:
            _restore_compile(model, meta["compile"], arrays)
        saving.expect(not arrays, f"it holds unexpected arrays: {sorted(arrays)}")
    return model


def _model_from_meta(meta: dict, backend) -> Sequential:
    config = meta.get("config")
    saving.expect(isinstance(config, dict), "its architecture is missing")
    layer_configs = config.get("layers")
    saving.expect(isinstance(layer_configs, list) and layer_configs, "it lists no layers")
    input_dim = config.get("input_dim")
    saving.expect(isinstance(input_dim, int) and input_dim >= 1, "its input_dim is invalid")
    try:
        # The weights come from the file: build from the config, then overwrite.
        return Sequential.from_config(config, backend=backend)
    except (KeyError, TypeError, ValueError) as exc:
        raise saving.FileError(f"its architecture is invalid ({exc})") from None


def _restore_compile(model: Sequential, compiled: dict, arrays: dict) -> None:
    try:
        opt_meta = compiled["optimizer"]
        opt = optimizers.from_config(opt_meta["name"], opt_meta["config"])
        chosen = [_metric_from_entry(m) for m in compiled["metrics"] or []]
        model.compile(opt, compiled["loss"], chosen or None)
        iterations = int(opt_meta["iterations"])
    except (KeyError, TypeError, ValueError) as exc:
        raise saving.FileError(f"its training configuration is invalid ({exc})") from None
    for p, S in enumerate(opt.state):
        for s, A in enumerate(S):
            name = f"opt_{p}_{s}"
            if name not in arrays:
                saving.expect(iterations == 0, f"optimizer state {name!r} is missing")
                continue
            saved = saving.take_array(arrays, name, A.shape, A.dtype, "optimizer state")
            np.copyto(A, saved)
    opt.iterations = iterations


def _metric_from_entry(entry):
    if isinstance(entry, str):
        return entry
    classes = {cls.__name__: cls for cls in metrics_mod.METRICS.values()}
    if not isinstance(entry, dict) or entry.get("class_name") not in classes:
        raise ValueError(f"unknown metric {entry!r}")
    return classes[entry["class_name"]](**entry.get("config", {}))
