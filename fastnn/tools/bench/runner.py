"""``fastnn bench``: fastnn's performance regimes side by side, measured in one process.

Every figure is a ratio taken in the same run: the runners of one case are timed
alternately (round-robin, a new order each repeat; epochs after 0.3 s of idle,
so no runner pays for the pools another left spinning), each after a warm-up call
that absorbs JIT compilation, autotuning and first-touch allocation, and each
reported as the median over the repeats.  Three regimes (the targets come from
the performance issue and are checked in the ``targets`` column):

* ``ops`` -- ``dense_forward`` / ``dense_backward`` per activation at batch
  {1, 32, 256, 1024} x widths {16->16, 128->128, 784->256, 256->10, 1024->1024},
  float32 and float64, plus the losses and optimizer updates, on the ``python``
  (small shapes only), ``numpy``, ``numba`` and ``auto`` backends.
* ``epoch`` -- one Fashion-MNIST epoch of the 784-256-10 ReLU MLP with softmax
  cross-entropy, float32, through ``Sequential.fit`` (SGD at batch 256, Adam at
  batch 32), against a plain hand-written NumPy loop, PyTorch CPU when installed,
  and the GEMM floor: the epoch's matrix-product FLOPs divided by this machine's
  float32 ``A @ A`` (n=2048) rate, measured in the same run.
* ``tiny`` -- full-batch training steps of the tutorial nets (XOR 2-8-1, coffee
  2-3-1, the (10, 15, 5) sigmoid net on 100 samples), per step, in float64 (the
  NumPy tutorials' dtype) for every runner, fastnn's backends and PyTorch alike.

The plain-text table is the default output; ``--json FILE`` writes the raw
numbers and ``--html DIR`` a self-contained report (:mod:`fastnn.tools.bench.report`).

The helpers that build the workloads (:func:`op_call`, :func:`epoch_call`,
:func:`tiny_call`, :func:`numpy_loop_epoch`, ...) are shared with the
pytest-benchmark and asv suites in ``benchmarks/``.
"""

from __future__ import annotations

import datetime
import importlib
import math
import os
import platform
import random
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .fmt import fmt_time

# ---------------------------------------------------------------------------
# Workload definitions
# ---------------------------------------------------------------------------

#: Backends in "ladder" order: reference, vectorized, compiled, measured choice.
BACKENDS: tuple[str, ...] = ("python", "numpy", "numba", "auto")

#: Batch sizes and layer widths (in, out) of the op regime.
OP_BATCHES: tuple[int, ...] = (1, 32, 256, 1024)
OP_WIDTHS: tuple[tuple[int, int], ...] = ((16, 16), (128, 128), (784, 256), (256, 10), (1024, 1024))
QUICK_BATCHES: tuple[int, ...] = (32, 256)
QUICK_WIDTHS: tuple[tuple[int, int], ...] = ((16, 16), (128, 128), (784, 256), (256, 10))

ACTIVATIONS: tuple[str, ...] = ("linear", "sigmoid", "relu", "tanh", "softmax")
QUICK_ACTIVATIONS: tuple[str, ...] = ("relu",)

#: The ``python`` backend loops in the interpreter at roughly 20-50 ns per
#: multiply-add: above this many it takes tenths of seconds per call, so it is
#: only measured on small shapes (its place in the ladder is clear from those).
#: ``FASTNN_BENCH_PYTHON_MAX_MACS`` raises the limit, e.g. to time the 784->256
#: layer at batch 256 (about 51 million multiply-adds: tens of seconds a call).
PYTHON_MAX_MACS = int(os.environ.get("FASTNN_BENCH_PYTHON_MAX_MACS", 600_000))

#: (batch, width) of the loss ops and the parameter shapes of the optimizer updates.
LOSS_SHAPES: tuple[tuple[int, int], ...] = ((256, 10), (1024, 10))
OPTIMIZER_SHAPES: tuple[tuple[int, int], ...] = ((256, 10), (784, 256), (1024, 1024))

#: Fashion-MNIST MLP of the epoch regime.
MLP_LAYERS: tuple[int, ...] = (784, 256, 10)
#: (name, optimizer, batch size) of the epoch regime.
EPOCH_CASES: tuple[tuple[str, str, int], ...] = (("sgd-b256", "sgd", 256), ("adam-b32", "adam", 32))
#: Idle seconds before each timed epoch (see :func:`measure_alternating`).
EPOCH_SETTLE_S = 0.3
#: Samples per epoch in ``--quick`` mode (full mode uses all 60,000).
QUICK_EPOCH_SAMPLES = 4096

#: Threads PyTorch may use (the machines this is tuned for have 2 cores).
TORCH_THREADS = 2

#: Steps timed per call in the tiny-net regime: enough that the fused numba
#: path is measured over its in-compiled-code epoch loop, not one dispatch.
TINY_STEPS = 500


@dataclass(frozen=True)
class TinyNet:
    """A tutorial network trained full-batch: layer widths, activations, loss, optimizer."""

    name: str
    layers: tuple[int, ...]
    activations: tuple[str, ...]
    loss: str
    optimizer: str
    learning_rate: float
    n_samples: int


TINY_NETS: tuple[TinyNet, ...] = (
    TinyNet("xor-2-8-1", (2, 8, 1), ("sigmoid", "sigmoid"), "mse", "sgd", 0.5, 4),
    TinyNet(
        "coffee-2-3-1", (2, 3, 1), ("sigmoid", "sigmoid"), "binary_crossentropy", "adam", 0.01, 200
    ),
    TinyNet("net-10-15-5", (10, 15, 5), ("sigmoid", "sigmoid"), "mse", "sgd", 0.1, 100),
)

#: Targets of the performance issue: (regime, runner, reference, max time ratio, label).
#: A reference ``"best"`` means the fastest of the ``numpy`` and ``numba`` backends.
TARGETS: dict[str, tuple[tuple[str, str, float, str], ...]] = {
    "ops": (
        ("numba", "numpy", 1 / 0.95, "numba >= 0.95x numpy speed"),
        ("auto", "best", 1 / 0.95, "auto >= 0.95x best backend"),
    ),
    "epoch:sgd-b256": (
        ("numba", "torch", 0.65, "numba <= 0.65x torch"),
        ("numba", "numpy-loop", 0.85, "numba <= 0.85x numpy loop"),
        ("numba", "gemm-floor", 1.3, "numba <= 1.3x GEMM floor"),
    ),
    "epoch:adam-b32": (("numba", "torch", 0.6, "numba <= 0.6x torch"),),
    "tiny:xor-2-8-1": (
        ("numba", "numpy", 1 / 20, "numba <= 1/20 numpy"),
        ("numba", "torch", 1 / 200, "numba <= 1/200 torch"),
    ),
    "tiny:coffee-2-3-1": (
        ("numba", "numpy", 1 / 20, "numba <= 1/20 numpy"),
        ("numba", "torch", 1 / 200, "numba <= 1/200 torch"),
    ),
    "tiny:net-10-15-5": (
        ("numba", "numpy", 1 / 5, "numba <= 1/5 numpy"),
        ("numba", "torch", 1 / 50, "numba <= 1/50 torch"),
    ),
}


class Unavailable(Exception):
    """A runner that cannot run here; the message says why (shown as ``n/a: ...``)."""


def backend_unavailable_reason(backend: str) -> str | None:
    """None if fastnn's ``backend`` works here, else why not."""
    import fastnn

    if backend == "auto" or backend in fastnn.available_backends():
        return None
    return f"{backend} backend not available"


def _require_backend(backend: str) -> None:
    reason = backend_unavailable_reason(backend)
    if reason:
        raise Unavailable(reason)


def _require_model():
    try:
        return importlib.import_module("fastnn.model"), importlib.import_module("fastnn.optimizers")
    except ImportError as exc:
        raise Unavailable(f"fastnn model API not available ({exc})") from exc


def _require_torch():
    try:
        import torch
    except ImportError as exc:
        raise Unavailable("PyTorch not installed") from exc
    torch.set_num_threads(TORCH_THREADS)
    return torch


def python_ok(op: str, shape: tuple[int, ...]) -> bool:
    """Whether the ``python`` backend is measured for ``op`` at ``shape``.

    Dense ops cost ``n in out`` multiply-adds; the elementwise ops (losses,
    optimizer updates) a few interpreted operations per element, counted as 8.
    """
    if op in ("dense_forward", "dense_backward"):
        return math.prod(shape) <= PYTHON_MAX_MACS
    return 8 * math.prod(shape) <= PYTHON_MAX_MACS


def dense_flops(op: str, n: int, n_in: int, n_out: int) -> float:
    """Matrix-product FLOPs of one dense op.

    Forward: ``X @ W``; backward: ``dZ @ W.T`` and ``X.T @ dZ``.
    """
    return (2.0 if op == "dense_forward" else 4.0) * n * n_in * n_out


def op_call(
    backend: str, op: str, dtype, shape: tuple[int, ...], name: str | None = None, seed: int = 0
) -> Callable[[], object]:
    """A zero-argument callable running one op on fresh random data (built once, here).

    * ``dense_forward`` / ``dense_backward``: ``shape = (n, in, out)``, ``name`` the activation;
    * ``loss`` (``name`` in mse, binary_crossentropy, categorical_crossentropy),
      ``softmax_cross_entropy``, ``sigmoid_cross_entropy``: ``shape = (n, k)``;
    * ``sgd_update`` / ``adam_update``: ``shape`` the parameter's shape.

    Raises :class:`Unavailable` when the backend is not installed here.
    """
    import fastnn

    _require_backend(backend)
    ops = fastnn.get_ops(backend)
    dtype = np.dtype(dtype)
    rng = np.random.default_rng(seed)

    def rand(*s, scale=1.0):
        return (scale * rng.standard_normal(s)).astype(dtype)

    if op in ("dense_forward", "dense_backward"):
        n, n_in, n_out = shape
        activation = name or "relu"
        X = rand(n, n_in)
        W = rand(n_in, n_out, scale=1 / math.sqrt(n_in))
        b = rand(n_out, scale=0.1)
        if op == "dense_forward":
            return lambda: ops.dense_forward(X, W, b, activation)
        Z, Y = fastnn.get_ops("numpy").dense_forward(X, W, b, activation)
        dY = rand(n, n_out)
        return lambda: ops.dense_backward(dY, X, W, Z, Y, activation)
    if op == "loss":
        n, k = shape
        Y = rng.uniform(0.01, 0.99, (n, k)).astype(dtype)
        if name == "categorical_crossentropy":
            Y /= Y.sum(axis=1, keepdims=True)
            T = np.eye(k, dtype=dtype)[rng.integers(0, k, n)]
        else:
            T = rng.uniform(0, 1, (n, k)).astype(dtype)
        return lambda: ops.loss(name, Y, T)
    if op == "softmax_cross_entropy":
        n, k = shape
        Z = rand(n, k)
        labels = rng.integers(0, k, n)
        return lambda: ops.softmax_cross_entropy(Z, labels)
    if op == "sigmoid_cross_entropy":
        n, k = shape
        Z = rand(n, k)
        T = rng.uniform(0, 1, (n, k)).astype(dtype)
        return lambda: ops.sigmoid_cross_entropy(Z, T)
    if op in ("sgd_update", "adam_update"):
        # Tiny gradients keep the parameters bounded however often the update repeats.
        param = rand(*shape)
        grad = rand(*shape, scale=1e-6)
        if op == "sgd_update":
            velocity = np.zeros_like(param)
            return lambda: ops.sgd_update(param, grad, velocity, 0.01, 0.9)
        m, v = np.zeros_like(param), np.zeros_like(param)
        return lambda: ops.adam_update(param, grad, m, v, 1, 1e-3, 0.9, 0.999, 1e-7)
    raise ValueError(f"unknown op {op!r}")


# --- training data and epoch runners -----------------------------------------


def training_data(
    n_samples: int | None = None, dtype=np.float32
) -> tuple[np.ndarray, np.ndarray, str]:
    """``(X, y, source)``: Fashion-MNIST training images ``(N, 784)`` in [0, 1] and int64 labels.

    Falls back to random data of the same shape (the timing of a dense epoch does
    not depend on pixel values) when the dataset loader or files are missing;
    ``source`` says which was used.
    """
    dtype = np.dtype(dtype)
    try:
        from fastnn.datasets import load_fashion_mnist

        (x, y), _ = load_fashion_mnist(dtype=dtype.name, download=False)
        X = np.ascontiguousarray(np.asarray(x).reshape(len(x), -1), dtype=dtype)
        if X.max() > 1.5:  # raw bytes: scale to [0, 1] as the tutorials do
            X /= 255
        source = "Fashion-MNIST"
    except (ImportError, OSError, ValueError, TypeError) as exc:
        rng = np.random.default_rng(0)
        X = rng.random((60_000, MLP_LAYERS[0]), dtype=np.float64).astype(dtype)
        y = rng.integers(0, MLP_LAYERS[-1], 60_000)
        source = f"random data of Fashion-MNIST's shape (dataset unavailable: {exc})"
    y = np.asarray(y).astype(np.int64)
    if n_samples is not None:
        X, y = X[:n_samples], y[:n_samples]
    return X, y, source


def epoch_flops(n_samples: int, layers: tuple[int, ...] = MLP_LAYERS) -> float:
    """Matrix-product FLOPs of one training epoch of a dense stack.

    Per layer and sample: forward ``2 in out``, weight gradient ``2 in out``, and
    the input gradient ``2 in out`` for every layer but the first (whose input is
    data).  For 784-256-10 on 60,000 samples: ~49 GFLOP.
    """
    total = 0.0
    for l, (n_in, n_out) in enumerate(zip(layers[:-1], layers[1:])):
        total += (4.0 if l == 0 else 6.0) * n_in * n_out
    return total * n_samples


def _glorot(rng, n_in, n_out, dtype):
    limit = math.sqrt(6 / (n_in + n_out))
    return rng.uniform(-limit, limit, (n_in, n_out)).astype(dtype)


def numpy_loop_epoch(
    X: np.ndarray, y: np.ndarray, optimizer: str, batch_size: int, seed: int = 0
) -> Callable[[], float]:
    """A plain hand-written NumPy training loop for the 784-256-10 MLP (the peer to beat).

    Returns a callable running one epoch (shuffle, gather each batch, ReLU
    forward, fused softmax cross-entropy, backward, SGD lr 0.1 or Adam lr 1e-3
    update) and returning the mean batch loss.  Parameters persist across calls.
    """
    dtype = X.dtype.type
    rng = np.random.default_rng(seed)
    W1 = _glorot(rng, MLP_LAYERS[0], MLP_LAYERS[1], X.dtype)
    W2 = _glorot(rng, MLP_LAYERS[1], MLP_LAYERS[2], X.dtype)
    b1 = np.zeros(MLP_LAYERS[1], X.dtype)
    b2 = np.zeros(MLP_LAYERS[2], X.dtype)
    params = [W1, b1, W2, b2]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    lr = dtype(0.1 if optimizer == "sgd" else 1e-3)
    beta1, beta2, eps, one = dtype(0.9), dtype(0.999), dtype(1e-7), dtype(1)
    state = {"step": 0}
    N = len(X)

    def epoch() -> float:
        order = rng.permutation(N)
        total = 0.0
        n_batches = 0
        for start in range(0, N, batch_size):
            rows = order[start : start + batch_size]
            Xb, yb = X[rows], y[rows]
            n = len(rows)
            Z1 = Xb @ W1
            Z1 += b1
            A1 = np.maximum(Z1, 0)
            Z2 = A1 @ W2
            Z2 += b2
            # softmax cross-entropy on logits, shifted by the row maximum (no overflow)
            S = Z2 - Z2.max(axis=1, keepdims=True)
            E = np.exp(S)
            sumE = E.sum(axis=1)
            idx = np.arange(n)
            total += float(np.mean(np.log(sumE) - S[idx, yb]))
            dZ2 = E / sumE[:, None]
            dZ2[idx, yb] -= 1
            dZ2 /= n
            dW2 = A1.T @ dZ2
            db2 = dZ2.sum(axis=0)
            dZ1 = dZ2 @ W2.T
            dZ1 *= Z1 > 0
            dW1 = Xb.T @ dZ1
            db1 = dZ1.sum(axis=0)
            grads = [dW1, db1, dW2, db2]
            if optimizer == "sgd":
                for p, g in zip(params, grads):
                    p -= lr * g
            else:
                state["step"] += 1
                t = state["step"]
                c1, c2 = one / (one - beta1**t), one / (one - beta2**t)
                for p, g, mp, vp in zip(params, grads, m, v):
                    mp *= beta1
                    mp += (one - beta1) * g
                    vp *= beta2
                    vp += (one - beta2) * (g * g)
                    p -= lr * (mp * c1) / (np.sqrt(vp * c2) + eps)
            n_batches += 1
        return total / max(n_batches, 1)

    return epoch


def torch_epoch(
    X: np.ndarray, y: np.ndarray, optimizer: str, batch_size: int, seed: int = 0
) -> Callable[[], float]:
    """The idiomatic PyTorch CPU loop (``nn.Sequential`` + ``optim``) for the same MLP and epoch."""
    torch = _require_torch()
    from torch import nn

    torch.manual_seed(seed)
    model = nn.Sequential(
        nn.Linear(MLP_LAYERS[0], MLP_LAYERS[1]), nn.ReLU(), nn.Linear(MLP_LAYERS[1], MLP_LAYERS[2])
    )
    if X.dtype == np.float64:
        model = model.double()
    if optimizer == "sgd":
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
    else:
        opt = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)
    loss_fn = nn.CrossEntropyLoss()
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    gen = torch.Generator().manual_seed(seed)
    N = len(X)

    def epoch() -> float:
        perm = torch.randperm(N, generator=gen)
        total = 0.0
        n_batches = 0
        for start in range(0, N, batch_size):
            rows = perm[start : start + batch_size]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(Xt[rows]), yt[rows])
            loss.backward()
            opt.step()
            total += loss.item()
            n_batches += 1
        return total / max(n_batches, 1)

    return epoch


def fastnn_mlp(backend: str, optimizer: str, seed: int = 0, dtype=np.float32):
    """The 784-256-10 ReLU/softmax MLP as a compiled ``fastnn.Sequential`` on ``backend``."""
    _require_backend(backend)
    model_mod, optim_mod = _require_model()
    hidden, classes = MLP_LAYERS[1], MLP_LAYERS[2]
    model = model_mod.Sequential(
        [
            model_mod.Dense(hidden, activation="relu", input_dim=MLP_LAYERS[0]),
            model_mod.Dense(classes, activation="softmax"),
        ],
        backend=backend,
    )
    opt = optim_mod.SGD(learning_rate=0.1) if optimizer == "sgd" else optim_mod.Adam(1e-3)
    model.compile(optimizer=opt, loss="sparse_categorical_crossentropy")
    return model


def epoch_call(
    runner: str, X: np.ndarray, y: np.ndarray, optimizer: str, batch_size: int, seed: int = 0
) -> Callable[[], object]:
    """One training epoch as a callable.

    ``runner``: a fastnn backend (through ``Sequential.fit``), ``numpy-loop`` or ``torch``.
    """
    if runner == "numpy-loop":
        return numpy_loop_epoch(X, y, optimizer, batch_size, seed)
    if runner == "torch":
        return torch_epoch(X, y, optimizer, batch_size, seed)
    model = fastnn_mlp(runner, optimizer, seed, X.dtype)
    counter = iter(range(1 << 62))

    def epoch():
        # a new shuffling seed per epoch, as successive epochs of one fit would use
        return model.fit(X, y, batch_size=batch_size, epochs=1, verbose=0, seed=next(counter))

    return epoch


# --- tiny nets ----------------------------------------------------------------


def tiny_data(net: TinyNet, dtype=np.float64, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Full-batch training data of a tutorial net: ``X (n, in)``, ``T (n, out)``.

    Uses the package's own generators (:mod:`fastnn.datasets`) when present; the
    timing of a training step depends only on the shapes, not on the values.
    """
    dtype = np.dtype(dtype)
    if net.name.startswith("xor"):
        X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=dtype)
        T = np.array([[0], [1], [1], [0]], dtype=dtype)
        return X, T
    try:
        datasets = importlib.import_module("fastnn.datasets")
    except ImportError:
        datasets = None
    rng = np.random.default_rng(seed)
    if net.name.startswith("coffee"):
        if datasets is not None and hasattr(datasets, "coffee_roasting"):
            X, T = datasets.coffee_roasting(net.n_samples, dtype=dtype.name)
        else:
            X = np.column_stack(
                [rng.uniform(150, 285, net.n_samples), rng.uniform(11.5, 15.5, net.n_samples)]
            )
            T = ((X[:, :1] > 175) & (X[:, :1] < 260) & (X[:, 1:] > 12) & (X[:, 1:] < 15)) * 1.0
        # standardized features, as the tutorial's normalization layer does
        X = (X - X.mean(axis=0)) / X.std(axis=0)
        return X.astype(dtype), T.astype(dtype)
    if datasets is not None and hasattr(datasets, "random_regression"):
        return datasets.random_regression(
            net.n_samples, net.layers[0], net.layers[-1], seed, dtype.name
        )
    X = rng.standard_normal((net.n_samples, net.layers[0])).astype(dtype)
    T = rng.uniform(0, 1, (net.n_samples, net.layers[-1])).astype(dtype)
    return X, T


def tiny_call(runner: str, net: TinyNet, steps: int = TINY_STEPS, dtype=np.float64, seed: int = 0):
    """A callable running ``steps`` full-batch training steps of ``net`` on ``runner``
    (a fastnn backend or ``torch``)."""
    X, T = tiny_data(net, dtype, seed)
    if runner == "torch":
        torch = _require_torch()
        from torch import nn

        torch.manual_seed(seed)
        mods = []
        for n_in, n_out in zip(net.layers[:-1], net.layers[1:]):
            mods += [nn.Linear(n_in, n_out), nn.Sigmoid()]
        model = nn.Sequential(*mods)
        if X.dtype == np.float64:
            model = model.double()
        cls = torch.optim.SGD if net.optimizer == "sgd" else torch.optim.Adam
        opt = cls(model.parameters(), lr=net.learning_rate)
        loss_fn = nn.MSELoss() if net.loss == "mse" else nn.BCELoss()
        Xt, Tt = torch.from_numpy(X), torch.from_numpy(T)

        def run():
            for _ in range(steps):
                opt.zero_grad(set_to_none=True)
                loss = loss_fn(model(Xt), Tt)
                loss.backward()
                opt.step()

        return run
    _require_backend(runner)
    model_mod, optim_mod = _require_model()
    layers = [
        model_mod.Dense(net.layers[1], activation=net.activations[0], input_dim=net.layers[0]),
        *(model_mod.Dense(w, activation=a) for w, a in zip(net.layers[2:], net.activations[1:])),
    ]
    # the data's dtype (float64 by default, like the NumPy tutorials and the torch peer)
    model = model_mod.Sequential(layers, backend=runner, dtype=X.dtype.name)
    cls = optim_mod.SGD if net.optimizer == "sgd" else optim_mod.Adam
    model.compile(optimizer=cls(learning_rate=net.learning_rate), loss=net.loss)
    n = len(X)
    return lambda: model.fit(X, T, batch_size=n, epochs=steps, verbose=0, shuffle=False)


# ---------------------------------------------------------------------------
# Measurement
# ---------------------------------------------------------------------------


@dataclass
class Case:
    """One workload measured on several runners.

    ``seconds[runner]`` is the median time of one unit (one call, one epoch, one
    step); ``status[runner]`` is ``"ok"`` or ``"n/a: reason"``.
    """

    regime: str
    name: str
    params: dict
    flops: float | None = None
    seconds: dict[str, float] = field(default_factory=dict)
    status: dict[str, str] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.regime}:{self.name}"

    def to_json(self) -> dict:
        return {
            "regime": self.regime,
            "name": self.name,
            "params": self.params,
            "flops": self.flops,
            "seconds": self.seconds,
            "status": self.status,
            "targets": evaluate_targets(self),
        }


def measure_alternating(
    calls: dict[str, Callable[[], object]],
    repeats: int,
    min_time: float,
    units: float = 1.0,
    settle: float = 0.0,
) -> dict[str, float]:
    """Median seconds per unit of each callable, timed round-robin.

    Each callable is called once untimed (warm-up: JIT compile, autotune, first
    allocation), then (if ``min_time > 0``) timed once to choose how many calls make
    one sample of at least ``min_time`` seconds; then ``repeats`` samples are taken
    in turn, in a new (seeded) order every round so no runner always follows the
    same neighbour.  ``units`` is the number of units (e.g. steps) one call
    performs.  ``settle`` seconds of idle precede each sample: thread pools left
    spin-waiting by the previous runner (OpenBLAS's idle threads spin about 0.1 s)
    then no longer share the cores with the next one.
    """
    names = list(calls)
    for name in names:
        calls[name]()
    number = dict.fromkeys(names, 1)
    if min_time > 0:  # long units (epochs) skip the calibration call: one call per sample
        for name in names:
            t0 = time.perf_counter()
            calls[name]()
            dt = time.perf_counter() - t0
            number[name] = max(1, math.ceil(min_time / max(dt, 1e-9)))
    samples: dict[str, list[float]] = {name: [] for name in names}
    shuffler = random.Random(0)
    for _ in range(repeats):
        order = names[:]
        shuffler.shuffle(order)
        for name in order:
            fn, count = calls[name], number[name]
            if settle:
                time.sleep(settle)
            t0 = time.perf_counter()
            for _ in range(count):
                fn()
            samples[name].append((time.perf_counter() - t0) / (count * units))
    return {name: statistics.median(s) for name, s in samples.items()}


def gemm_rate(dtype, n: int = 2048, repeats: int = 5) -> float:
    """This machine's matrix-product rate in FLOP/s: median of ``A @ A`` for ``A: (n, n)``."""
    A = np.random.default_rng(0).standard_normal((n, n)).astype(dtype)
    A @ A  # warm-up: BLAS threads start, pages touched
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        A @ A
        times.append(time.perf_counter() - t0)
    return 2.0 * n**3 / statistics.median(times)


def _run_case(
    case: Case,
    builders: dict[str, Callable[[], Callable]],
    repeats,
    min_time,
    units=1.0,
    settle=0.0,
):
    """Build each runner's callable (recording ``n/a`` for unavailable ones) and measure."""
    calls = {}
    for runner, build in builders.items():
        try:
            calls[runner] = build()
        except Unavailable as exc:
            case.status[runner] = f"n/a: {exc}"
    if calls:
        try:
            times = measure_alternating(calls, repeats, min_time, units, settle)
        except Unavailable as exc:  # raised lazily on first call by some runners
            for runner in calls:
                case.status[runner] = f"n/a: {exc}"
            return case
        for runner, t in times.items():
            case.seconds[runner] = t
            case.status[runner] = "ok"
    return case


def op_cases(quick: bool) -> list[tuple[str, str | None, tuple[int, ...], str]]:
    """(op, name, shape, dtype) of the op regime."""
    batches = QUICK_BATCHES if quick else OP_BATCHES
    widths = QUICK_WIDTHS if quick else OP_WIDTHS
    acts = QUICK_ACTIVATIONS if quick else ACTIVATIONS
    dtypes = ("float32",) if quick else ("float32", "float64")
    cases = []
    for dtype in dtypes:
        for op in ("dense_forward", "dense_backward"):
            for act in acts:
                for n_in, n_out in widths:
                    for n in batches:
                        cases.append((op, act, (n, n_in, n_out), dtype))
        loss_shapes = LOSS_SHAPES[:1] if quick else LOSS_SHAPES
        for shape in loss_shapes:
            cases.append(("softmax_cross_entropy", None, shape, dtype))
            cases.append(("sigmoid_cross_entropy", None, shape, dtype))
            for loss in ("mse", "binary_crossentropy", "categorical_crossentropy"):
                if quick and loss != "mse":
                    continue
                cases.append(("loss", loss, shape, dtype))
        for shape in OPTIMIZER_SHAPES[:2] if quick else OPTIMIZER_SHAPES:
            cases.append(("sgd_update", None, shape, dtype))
            cases.append(("adam_update", None, shape, dtype))
    return cases


def _op_label(op, name, shape, dtype) -> str:
    dims = "x".join(map(str, shape))
    if op in ("dense_forward", "dense_backward"):
        n, n_in, n_out = shape
        dims = f"{n}x{n_in}->{n_out}"
    label = f"{op}[{name}]" if name else op
    return f"{label} {dims} {dtype}"


def run_ops(quick: bool, log=print) -> list[Case]:
    repeats, min_time = (3, 0.01) if quick else (5, 0.03)
    cases = []
    for op, name, shape, dtype in op_cases(quick):
        flops = dense_flops(op, *shape) if op.startswith("dense") else None
        case = Case("ops", _op_label(op, name, shape, dtype), {
            "op": op, "name": name, "shape": list(shape), "dtype": dtype,
        }, flops)  # fmt: skip
        builders = {}
        for backend in BACKENDS:
            if backend == "python" and not python_ok(op, shape):
                case.status[backend] = "n/a: python backend measured at small shapes only"
                continue
            builders[backend] = lambda b=backend, a=(op, dtype, shape, name): op_call(b, *a)
        _run_case(case, builders, repeats, min_time)
        cases.append(case)
        log(f"  {case.name}: " + ", ".join(f"{k} {fmt_time(v)}" for k, v in case.seconds.items()))
    return cases


def run_epochs(quick: bool, gemm32: float, log=print) -> list[Case]:
    n_samples = QUICK_EPOCH_SAMPLES if quick else None
    X, y, source = training_data(n_samples)
    log(f"  data: {source}, {len(X)} samples")
    repeats = 3
    cases = []
    for name, optimizer, batch_size in EPOCH_CASES:
        flops = epoch_flops(len(X))
        case = Case("epoch", name, {
            "optimizer": optimizer, "batch_size": batch_size, "samples": len(X),
            "layers": list(MLP_LAYERS), "dtype": "float32", "data": source,
        }, flops)  # fmt: skip
        runners = ["numba", "numpy", "auto", "numpy-loop", "torch"]
        if quick:
            runners.remove("auto")
        builders = {
            r: (lambda r=r, o=optimizer, bs=batch_size: epoch_call(r, X, y, o, bs)) for r in runners
        }
        # Epochs measure training, not pool switches (alternate_pools.py measures those):
        # each sample starts once the previous runner's idle threads stopped spinning.
        _run_case(case, builders, repeats, min_time=0.0, settle=EPOCH_SETTLE_S)
        case.seconds["gemm-floor"] = flops / gemm32
        case.status["gemm-floor"] = "ok"
        cases.append(case)
        log(f"  {case.name}: " + ", ".join(f"{k} {fmt_time(v)}" for k, v in case.seconds.items()))
    return cases


def run_tiny(quick: bool, log=print) -> list[Case]:
    cases = []
    steps = TINY_STEPS // 5 if quick else TINY_STEPS
    for net in TINY_NETS:
        case = Case("tiny", net.name, {
            "layers": list(net.layers), "activations": list(net.activations), "loss": net.loss,
            "optimizer": net.optimizer, "samples": net.n_samples, "dtype": "float64",
            "steps_per_call": steps,
        })  # fmt: skip
        builders = {
            r: (lambda r=r, net=net: tiny_call(r, net, steps)) for r in ("numba", "numpy", "torch")
        }
        _run_case(case, builders, repeats=3, min_time=0.02, units=steps)
        cases.append(case)
        log(f"  {case.name}: " + ", ".join(f"{k} {fmt_time(v)}" for k, v in case.seconds.items()))
    return cases


# ---------------------------------------------------------------------------
# Targets, table, machine details
# ---------------------------------------------------------------------------


def _reference_time(case: Case, ref: str) -> float | None:
    if ref == "best":
        times = [case.seconds[b] for b in ("numpy", "numba") if b in case.seconds]
        return min(times) if times else None
    return case.seconds.get(ref)


def evaluate_targets(case: Case) -> list[dict]:
    """Each target of this case: runner, reference, limit, measured ratio, PASS/FAIL/n/a."""
    targets = TARGETS.get("ops" if case.regime == "ops" else case.key, ())
    out = []
    for runner, ref, limit, label in targets:
        t, t_ref = case.seconds.get(runner), _reference_time(case, ref)
        if t is None or t_ref is None:
            missing = runner if t is None else ref
            why = case.status.get(missing, "not measured")
            out.append({"runner": runner, "reference": ref, "limit": limit, "label": label,
                        "ratio": None, "status": f"n/a ({missing}: {why})"})  # fmt: skip
            continue
        ratio = t / t_ref
        out.append({"runner": runner, "reference": ref, "limit": limit, "label": label,
                    "ratio": ratio, "status": "PASS" if ratio <= limit else "FAIL"})  # fmt: skip
    return out


def _version(mod: str) -> str | None:
    try:
        from importlib.metadata import version

        return version(mod)
    except Exception:  # noqa: BLE001 - not installed, or no metadata
        return None


def machine_info() -> dict:
    """CPU, cores, BLAS libraries (threadpoolctl) and package versions of this run."""
    import fastnn

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        from threadpoolctl import threadpool_info

        pools = [
            {
                k: p.get(k)
                for k in ("user_api", "internal_api", "version", "num_threads", "filepath")
            }
            for p in threadpool_info()
        ]
    except ImportError:
        pools = []
    versions = {"python": platform.python_version(), "fastnn": fastnn.__version__}
    for mod in ("numpy", "scipy", "numba", "torch", "threadpoolctl", "matplotlib"):
        versions[mod] = _version(mod)
    try:
        loadavg = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        loadavg = "-"
    return {
        "loadavg": loadavg,
        "cpu": cpu,
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "blas": pools,
        "versions": versions,
        "backends": fastnn.available_backends(),
    }


def run(quick: bool = False, regimes=("ops", "epoch", "tiny"), log=print) -> dict:
    """Measure the requested regimes; returns the JSON-serializable results."""
    import fastnn

    try:
        fastnn.set_num_threads(os.cpu_count() or 1)
    except (AttributeError, ImportError):
        pass  # runtime module not available: libraries keep their defaults
    machine = machine_info()  # before measuring: the load average says who else is running
    log("measuring GEMM rate (A @ A, n=2048) ...")
    gemm = {"float32": gemm_rate(np.float32), "float64": gemm_rate(np.float64)}
    cases: list[Case] = []
    if "ops" in regimes:
        log("ops ...")
        cases += run_ops(quick, log)
    if "epoch" in regimes:
        log("epochs ...")
        cases += run_epochs(quick, gemm["float32"], log)
    if "tiny" in regimes:
        log("tiny nets ...")
        cases += run_tiny(quick, log)
    data = {
        "format": 1,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "quick": quick,
        "machine": machine,
        "gemm": gemm,
        "cases": [c.to_json() for c in cases],
    }
    return data
