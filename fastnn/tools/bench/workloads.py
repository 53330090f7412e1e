"""The workloads of ``fastnn bench`` and of the suites in ``benchmarks/``.

Each builder returns a zero-argument callable doing one unit of work on data it
built once: an op call (:func:`op_call`), a training epoch of the Fashion-MNIST
MLP (:func:`epoch_call`: fastnn's backends through ``Sequential.fit``, the
hand-written NumPy loop :func:`numpy_loop_epoch`, PyTorch :func:`torch_epoch`),
or ``steps`` full-batch steps of a tutorial net (:func:`tiny_call`).  A builder
raises :class:`Unavailable` when its runner cannot run here.
"""

from __future__ import annotations

import importlib
import math
import os
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from fastnn import initializers
from fastnn.dispatch import timing

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
#: Idle seconds before each timed sample of the tiny nets: the numpy and torch runners
#: leave their libraries' pool threads spinning after a sample, and without a gap the
#: next runner's sample pays for them (so a runner's place in the rounds, not its
#: code, would show in its time).
TINY_SETTLE_S = 0.15
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


def epoch_products(n_rows: int, dims, batch_size: int) -> list[tuple]:
    """The matrix products of one training epoch, as the fused trainers form them.

    Per batch of ``n`` rows (the last one shorter) and layer ``l`` (``dims[l] ->
    dims[l + 1]``): ``("fwd", n, dims[l], dims[l + 1])`` (``A_l W_l``), ``("dW", ...)``
    (``A_l^T dZ_l``) and, for every layer but the first, ``("dX", ...)``
    (``dZ_l W_l^T``).  Returns ``(kind, n, n_in, n_out, count)`` with ``count``
    batches of that size; the FLOPs sum to :func:`epoch_flops`."""
    full, rest = divmod(n_rows, batch_size)
    sizes = [(batch_size, full)] + ([(rest, 1)] if rest else [])
    out = []
    for n, count in sizes:
        if count == 0:
            continue
        for l, (n_in, n_out) in enumerate(zip(dims[:-1], dims[1:])):
            out.append(("fwd", n, n_in, n_out, count))
            out.append(("dW", n, n_in, n_out, count))
            if l > 0:
                out.append(("dX", n, n_in, n_out, count))
    return out


def product_seconds(kind: str, n: int, n_in: int, n_out: int, repeats: int = 5) -> float:
    """Seconds of one product of ``kind`` (see :func:`epoch_products`) in float32 with
    NumPy's BLAS at its current thread setting, operands laid out as in the trainers
    (row-major activations and weights; ``A^T`` a transposed view): the fastest of
    ``repeats`` samples of at least 2 ms each (a floor, not a typical time)."""
    rng = np.random.default_rng(0)
    A = rng.standard_normal((n, n_in), dtype=np.float32)
    W = rng.standard_normal((n_in, n_out), dtype=np.float32)
    D = rng.standard_normal((n, n_out), dtype=np.float32)
    left, right = {"fwd": (A, W), "dW": (A.T, D), "dX": (D, W.T)}[kind]
    out = np.matmul(left, right)

    def product():
        np.matmul(left, right, out=out)

    number = timing.calibrate(product, 2e-3)
    samples = timing.sample_rounds({kind: product}, repeats, number=number)
    return min(samples[kind])


def shape_floor(n_rows: int, dims, epochs: int, batch_size: int) -> float:
    """Seconds of ``epochs`` epochs' matrix products alone, each timed at its own
    shape (:func:`product_seconds`): the GEMM floor of *this* training.  Small
    batches run NumPy's BLAS well below its large-square rate, which the
    ``gemm-floor`` figure assumes."""
    batch_size = min(batch_size, n_rows)
    per_epoch = sum(
        count * product_seconds(kind, n, n_in, n_out)
        for kind, n, n_in, n_out, count in epoch_products(n_rows, dims, batch_size)
    )
    return epochs * per_epoch


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
    W1 = initializers.draw("glorot_uniform", MLP_LAYERS[:2], rng, X.dtype)
    W2 = initializers.draw("glorot_uniform", MLP_LAYERS[1:], rng, X.dtype)
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


#: The ``regularized`` variant of the MLP: dropout rate after the hidden layer and
#: the L2 coefficient of both kernels.
REGULARIZED_DROPOUT, REGULARIZED_L2 = 0.3, 1e-4


def fastnn_mlp(backend: str, optimizer: str, seed: int = 0, dtype=np.float32,
               regularized: bool = False):  # fmt: skip
    """The 784-256-10 ReLU/softmax MLP as a compiled ``fastnn.Sequential`` on ``backend``;
    ``regularized``: with Dropout and L2 (:data:`REGULARIZED_DROPOUT`, :data:`REGULARIZED_L2`)."""
    _require_backend(backend)
    model_mod, optim_mod = _require_model()
    hidden, classes = MLP_LAYERS[1], MLP_LAYERS[2]
    import fastnn

    l2 = fastnn.regularizers.L2(REGULARIZED_L2) if regularized else None
    layers = [
        model_mod.Dense(hidden, activation="relu", input_dim=MLP_LAYERS[0], kernel_regularizer=l2),
        model_mod.Dense(classes, activation="softmax", kernel_regularizer=l2),
    ]
    if regularized:
        layers.insert(1, fastnn.Dropout(REGULARIZED_DROPOUT, seed=seed))
    model = model_mod.Sequential(layers, backend=backend)
    opt = optim_mod.SGD(learning_rate=0.1) if optimizer == "sgd" else optim_mod.Adam(1e-3)
    model.compile(optimizer=opt, loss="sparse_categorical_crossentropy")
    return model


def epoch_call(
    runner: str, X: np.ndarray, y: np.ndarray, optimizer: str, batch_size: int, seed: int = 0,
    regularized: bool = False,
) -> Callable[[], object]:  # fmt: skip
    """One training epoch as a callable.

    ``runner``: a fastnn backend (through ``Sequential.fit``), ``numpy-loop`` or ``torch``;
    ``regularized``: the fastnn MLP with Dropout and L2 (:func:`fastnn_mlp`).
    """
    if runner == "numpy-loop":
        return numpy_loop_epoch(X, y, optimizer, batch_size, seed)
    if runner == "torch":
        return torch_epoch(X, y, optimizer, batch_size, seed)
    steady_auto(runner, X.dtype)
    model = fastnn_mlp(runner, optimizer, seed, X.dtype, regularized)
    counter = iter(range(1 << 62))

    def epoch():
        # a new shuffling seed per epoch, as successive epochs of one fit would use
        return model.fit(X, y, batch_size=batch_size, epochs=1, verbose=0, seed=next(counter))

    if runner == "auto":
        epoch.mark_timed, epoch.info = trained_since_mark(model.backend)
    return epoch


def trained_since_mark(backend: str):
    """``(mark, info)`` for an ``auto`` runner: ``mark()`` when the timed calls begin;
    ``info()`` -> ``{"trained": {backend: batches}}``, the batches each backend's
    ``train_batches`` trained since then (which code ``auto`` ran while timed)."""
    import fastnn

    ops = fastnn.get_ops(backend)
    start: dict[str, int] = {}

    def mark() -> None:
        start.clear()
        start.update(ops.trained_batches())

    def info() -> dict:
        now = ops.trained_batches()
        return {"trained": {b: n - start.get(b, 0) for b, n in now.items() if n > start.get(b, 0)}}

    return mark, info


def steady_auto(runner: str, dtype) -> None:
    """For ``auto``: wait until numba's trainers for ``dtype`` are built
    (:mod:`fastnn.dispatch.coldstart`), so the bench measures auto's steady state,
    not numpy standing in while a background build (a fresh cache, any kernel
    edit) runs.  The cold start is ``benchmarks/cold_start.py``'s measurement."""
    if runner == "auto":
        from fastnn.dispatch import coldstart

        coldstart.wait_until_ready(dtype)


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
    steady_auto(runner, X.dtype)
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
