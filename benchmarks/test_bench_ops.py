"""Ops per backend, grouped by op and shape: ``python`` (small shapes), ``numpy``,
``numba``, ``auto`` and PyTorch as a peer for the dense ops."""

import numpy as np
import pytest
from conftest import QUICK, build_or_skip, warm

from fastnn.tools.bench import runner as bench

BACKENDS = list(bench.BACKENDS)
DTYPES = ["float32"] if QUICK else ["float32", "float64"]
DENSE_SHAPES = (
    [(32, 128, 128), (256, 784, 256)]
    if QUICK
    else [
        (n, n_in, n_out)
        for n_in, n_out in bench.OP_WIDTHS
        for n in (32, 256, 1024)
        if n * n_in * n_out <= 1024 * 1024 * 1024
    ]
)
# ReLU (the hidden layers) and softmax (the output layer, a row reduction); every
# activation is in `fastnn bench`
ACTIVATIONS = ["relu"] if QUICK else ["relu", "softmax"]
LOSS_OPS = [("softmax_cross_entropy", None), ("loss", "mse")]
if not QUICK:
    LOSS_OPS += [
        ("sigmoid_cross_entropy", None),
        ("loss", "binary_crossentropy"),
        ("loss", "categorical_crossentropy"),
    ]
UPDATE_SHAPES = [(256, 10)] if QUICK else [(256, 10), (784, 256), (1024, 1024)]


def _shape_id(shape):
    return "x".join(map(str, shape))


def _op(benchmark, backend, op, dtype, shape, name=None):
    if backend == "python" and not bench.python_ok(op, shape):
        pytest.skip("python backend is benchmarked at small shapes only")
    call = warm(build_or_skip(lambda: bench.op_call(backend, op, dtype, shape, name)))
    label = f"{op}[{name}]" if name else op
    benchmark.group = f"{label} {dtype} {_shape_id(shape)}"
    benchmark.extra_info["backend"] = backend
    benchmark(call)


def _torch_dense(op, dtype, shape, activation):
    torch = pytest.importorskip("torch")
    torch.set_num_threads(bench.TORCH_THREADS)
    n, n_in, n_out = shape
    gen = torch.Generator().manual_seed(0)
    tdtype = torch.float32 if dtype == "float32" else torch.float64
    X = torch.randn(n, n_in, generator=gen, dtype=tdtype)
    W = torch.randn(n_in, n_out, generator=gen, dtype=tdtype) / n_in**0.5
    b = torch.randn(n_out, generator=gen, dtype=tdtype)
    act = {"relu": torch.relu, "sigmoid": torch.sigmoid, "softmax": lambda Z: Z.softmax(1)}
    if op == "dense_forward":

        def forward():
            with torch.no_grad():
                Z = torch.addmm(b, X, W)
                return Z, act[activation](Z)

        return forward
    Z = torch.addmm(b, X, W)
    Y = act[activation](Z)
    dY = torch.randn(n, n_out, generator=gen, dtype=tdtype)

    def backward():
        # the same math as the op contract, written with torch tensors
        with torch.no_grad():
            if activation == "relu":
                dZ = dY * (Z > 0)
            elif activation == "sigmoid":
                dZ = dY * Y * (1 - Y)
            else:
                dZ = Y * (dY - (dY * Y).sum(1, keepdim=True))
            return dZ @ W.T, X.T @ dZ, dZ.sum(0)

    return backward


@pytest.mark.parametrize("shape", DENSE_SHAPES, ids=_shape_id)
@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("op", ["dense_forward", "dense_backward"])
@pytest.mark.parametrize("backend", [*BACKENDS, "torch"])
def test_dense(benchmark, backend, op, dtype, activation, shape):
    if backend == "torch":
        call = warm(_torch_dense(op, dtype, shape, activation))
        benchmark.group = f"{op}[{activation}] {dtype} {_shape_id(shape)}"
        benchmark(call)
        return
    _op(benchmark, backend, op, dtype, shape, activation)


@pytest.mark.parametrize("shape", [(256, 10)] if QUICK else [(256, 10), (1024, 10)], ids=_shape_id)
@pytest.mark.parametrize("op,name", LOSS_OPS, ids=lambda x: x or "")
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("backend", BACKENDS)
def test_loss(benchmark, backend, dtype, op, name, shape):
    _op(benchmark, backend, op, dtype, shape, name)


@pytest.mark.parametrize("shape", UPDATE_SHAPES, ids=_shape_id)
@pytest.mark.parametrize("op", ["sgd_update", "adam_update"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("backend", BACKENDS)
def test_update(benchmark, backend, dtype, op, shape):
    _op(benchmark, backend, op, dtype, shape)


def test_gemm_rate(benchmark):
    """The machine's matrix-product rate, the yardstick of every GFLOP/s figure."""
    n = 512 if QUICK else 2048
    A = np.random.default_rng(0).standard_normal((n, n)).astype(np.float32)
    warm(lambda: A @ A)
    benchmark.group = f"reference: float32 A @ A n={n}"
    benchmark.extra_info["flops"] = 2 * n**3
    benchmark(lambda: A @ A)
