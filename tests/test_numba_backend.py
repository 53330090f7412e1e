"""The ``numba`` backend specifically: both code paths against a naive reference,
numerics at the extremes, compile options, threads and warm-up.

The cross-backend agreement tests cover small shapes (the fused small-shape
kernels).  Here the shapes also leave the small path (BLAS + fused epilogue)
and :data:`VECTOR_EXP_MIN` (NumPy's SIMD ``exp``/``tanh`` around the kernels), with
odd sizes, width 1 and batch 1.  The reference is a naive float64 NumPy
implementation written here from the contract's formulas, independent of the
backend code; inputs are rounded to the tested dtype first, so the only
differences are the backend's own rounding.

Tolerances follow from standard error bounds rather than from observed output:
a dot product of ``k`` terms computed in any order (BLAS blocking, FMA, vector
lanes) is within ``k * u * sum|terms|`` of the exact value (``u`` the unit
roundoff), so :func:`_product_atol` allows ``2 k u`` times the sum of absolute
terms plus a few ulp for the elementwise work; activations are 1-Lipschitz
(softmax 2-Lipschitz in the max norm), so they add their own few-ulp rounding
to the propagated bound.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import textwrap
import threading
import warnings

import numpy as np
import pytest

import fastnn

pytestmark = pytest.mark.skipif(
    "numba" not in fastnn.available_backends(), reason="numba backend not installed"
)

DTYPES = (np.float32, np.float64)
ACTS = ("linear", "sigmoid", "relu", "tanh", "softmax")


def _numba_modules():
    from fastnn.kernels.numba import (
        blas,
        gemm,
        kernels,
        layout,
        ops,
        scalar,
        train,
        train_gemm,
        train_small,
    )

    return ops, kernels, gemm, train, scalar, blas, layout, train_gemm, train_small


def _impl():
    return fastnn.get_ops("numba").impl


def _u(dtype) -> float:
    """Unit roundoff of ``dtype`` (half an ulp of 1)."""
    return float(np.finfo(dtype).eps) / 2


# --------------------------------------------------------------------------------------
# naive float64 reference (the contract's formulas, written out here)
# --------------------------------------------------------------------------------------


def _ref_activation(Z, act):
    if act == "linear":
        return Z.copy()
    if act == "relu":
        return np.where(Z > 0, Z, 0.0)
    if act == "sigmoid":
        return np.array([[1 / (1 + math.exp(-z)) if z >= 0 else math.exp(z) / (1 + math.exp(z))
                          for z in row] for row in Z]).reshape(Z.shape)  # fmt: skip
    if act == "tanh":
        return np.tanh(Z)
    if act == "softmax":
        E = np.exp(Z - Z.max(axis=1, keepdims=True))
        return E / E.sum(axis=1, keepdims=True)
    if act == "step":
        return (Z >= 0).astype(np.float64)
    raise AssertionError(act)


def _ref_activation_backward(dY, Z, Y, act):
    if act == "linear":
        return dY.copy()
    if act == "relu":
        return np.where(Z > 0, dY, 0.0)
    if act == "sigmoid":
        return dY * Y * (1 - Y)
    if act == "tanh":
        return dY * (1 - Y * Y)
    if act == "softmax":
        return Y * (dY - (dY * Y).sum(axis=1, keepdims=True))
    raise AssertionError(act)


def _product_atol(absprod, terms, dtype):
    """Elementwise error bound of a ``terms``-term product sum with ``|A|@|B| = absprod``."""
    u = _u(dtype)
    return 2 * (terms + 2) * u * absprod + 4 * u


def _layer(rng, n, n_in, n_out, dtype):
    X = rng.standard_normal((n, n_in)).astype(dtype)
    W = (rng.standard_normal((n_in, n_out)) / math.sqrt(n_in)).astype(dtype)
    b = (0.5 * rng.standard_normal(n_out)).astype(dtype)
    return X, W, b


def _small(n, n_in, n_out):
    ops, *_ = _numba_modules()
    return ops._small(n, n_in, n_out)


def _vec_min():
    ops, *_ = _numba_modules()
    return ops.VECTOR_EXP_MIN


# (n, in, out): 1x1, width 1, batch 1, odd sizes; the ids say which path each hits
# (thresholds asserted in test_shapes_cover_every_path).
SHAPES = [
    (1, 1, 1),
    (1, 7, 1),
    (5, 1, 3),
    (1, 784, 256),
    (3, 17, 29),
    (33, 129, 131),  # BLAS path, output >= VECTOR_EXP_MIN: NumPy exp/tanh inside
    (9, 1000, 70),  # BLAS path, small output: all-Numba epilogue
    (257, 255, 1),  # BLAS path, one output unit
    (2, 3000, 101),  # BLAS path, long reduction
    (1, 6000, 3),  # BLAS path, one row (dW is an outer product), tiny output
]


def test_shapes_cover_every_path():
    vec = _vec_min()
    assert any(_small(*s) for s in SHAPES)
    assert any(not _small(n, i, o) and n * o >= vec for n, i, o in SHAPES)
    assert any(not _small(n, i, o) and n * o < vec for n, i, o in SHAPES)
    assert any(not _small(n, i, o) and n == 1 for n, i, o in SHAPES)
    for n, n_in in ((2, 32), (2, 200), (64, 200)):  # test_huge_logits_sigmoid_softmax
        assert _small(n, n_in, 64) == (n_in == 32)
        assert (n * 64 >= vec) == (n == 64)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("act", (*ACTS, "step"))
def test_dense_forward_matches_naive(shape, act, dtype):
    _check_forward(shape, act, dtype)


def _check_forward(shape, act, dtype):
    n, n_in, n_out = shape
    rng = np.random.default_rng(n * 7919 + n_in * 31 + n_out)
    X, W, b = _layer(rng, n, n_in, n_out, dtype)
    Z, Y = _impl().dense_forward(X, W, b, act)
    for A in (Z, Y):
        assert A.dtype == dtype and A.shape == (n, n_out) and A.flags.c_contiguous
    X64, W64, b64 = X.astype(np.float64), W.astype(np.float64), b.astype(np.float64)
    Zref = X64 @ W64 + b64
    z_atol = _product_atol(np.abs(X64) @ np.abs(W64) + np.abs(b64), n_in + 1, dtype)
    np.testing.assert_allclose(Z, Zref, rtol=0, atol=z_atol.max())
    if act == "step":
        # compare against the backend's own Z: the threshold decision is exact
        np.testing.assert_array_equal(Y, (Z >= 0).astype(dtype))
        return
    # 1-Lipschitz activations (softmax: 2 in the max norm) carry Z's error, plus
    # their own rounding: a few ulp of libm exp/tanh and one division.
    y_atol = 2 * z_atol.max() + 16 * _u(dtype)
    np.testing.assert_allclose(Y, _ref_activation(Zref, act), rtol=0, atol=y_atol)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("act", ACTS)
def test_dense_backward_matches_naive(shape, act, dtype):
    _check_backward(shape, act, dtype)


def _check_backward(shape, act, dtype):
    n, n_in, n_out = shape
    rng = np.random.default_rng(n * 131 + n_in * 17 + n_out)
    X, W, b = _layer(rng, n, n_in, n_out, dtype)
    Z64 = X.astype(np.float64) @ W.astype(np.float64) + b
    Z = Z64.astype(dtype)
    Y = _ref_activation(Z.astype(np.float64), act).astype(dtype)
    dY = rng.standard_normal((n, n_out)).astype(dtype)
    dX, dW, db = _impl().dense_backward(dY, X, W, Z, Y, act)
    for A, s in ((dX, (n, n_in)), (dW, (n_in, n_out)), (db, (n_out,))):
        assert A.dtype == dtype and A.shape == s and A.flags.c_contiguous
    f64 = [A.astype(np.float64) for A in (dY, X, W, Z, Y)]
    dY64, X64, W64, Z64, Y64 = f64
    dZ = _ref_activation_backward(dY64, Z64, Y64, act)
    # |dZ| bound incl. its own rounding (softmax: a row sum of n_out terms first)
    absdZ = np.abs(dZ) + _product_atol(np.abs(dY64 * Y64).sum(axis=1, keepdims=True) * Y64,
                                       n_out, dtype) + 8 * _u(dtype) * np.abs(dY64)  # fmt: skip
    atol_dX = (
        _product_atol(absdZ @ np.abs(W64).T, n_out, dtype) + (absdZ - np.abs(dZ)) @ np.abs(W64).T
    )
    atol_dW = _product_atol(np.abs(X64).T @ absdZ, n, dtype) + np.abs(X64).T @ (absdZ - np.abs(dZ))
    atol_db = _product_atol(absdZ.sum(axis=0), n, dtype) + (absdZ - np.abs(dZ)).sum(axis=0)
    np.testing.assert_allclose(dX, dZ @ W64.T, rtol=0, atol=atol_dX.max())
    np.testing.assert_allclose(dW, X64.T @ dZ, rtol=0, atol=atol_dW.max())
    np.testing.assert_allclose(db, dZ.sum(axis=0), rtol=0, atol=atol_db.max())


def test_step_backward_raises():
    from fastnn.kernels.contract import StepBackwardError

    X, W, b = _layer(np.random.default_rng(0), 2, 3, 4, np.float32)
    Z, Y = _impl().dense_forward(X, W, b, "step")
    with pytest.raises(StepBackwardError, match="step"):
        _impl().dense_backward(np.ones_like(Y), X, W, Z, Y, "step")


# --------------------------------------------------------------------------------------
# extremes: no overflow, no warnings, inf/NaN semantics kept (fastmath flags)
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
# (2, 32): fused small-shape path; (2, 200): BLAS + Numba epilogue; (64, 200): BLAS +
# NumPy's exp (asserted in test_shapes_cover_every_path's thresholds)
@pytest.mark.parametrize("n, n_in", [(2, 32), (2, 200), (64, 200)])
def test_huge_logits_sigmoid_softmax(n, n_in, dtype):
    # X = 0 so Z equals the bias exactly: logits of +-1000 and 1e30.
    n_out = 64
    X = np.zeros((n, n_in), dtype=dtype)
    W = np.zeros((n_in, n_out), dtype=dtype)
    b = np.zeros(n_out, dtype=dtype)
    b[0], b[1], b[2] = 1000, -1000, 1e30
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _, S = _impl().dense_forward(X, W, b, "sigmoid")
        _, P = _impl().dense_forward(X, W, b, "softmax")
    assert np.all(np.isfinite(S)) and np.all(np.isfinite(P))
    assert S[0, 0] == 1 and S[0, 1] == 0 and S[0, 2] == 1 and S[0, 3] == 0.5
    # softmax: the 1e30 logit takes all the mass, exactly
    np.testing.assert_array_equal(P[:, 2], 1)
    assert np.count_nonzero(P) == n


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_infinite_logits(dtype):
    # -inf logits have probability exactly 0 and sigmoid 0.
    impl = _impl()
    X = np.zeros((2, 1), dtype=dtype)
    W = np.zeros((1, 3), dtype=dtype)
    b = np.array([-np.inf, 0.0, 0.0], dtype=dtype)
    _, P = impl.dense_forward(X, W, b, "softmax")
    np.testing.assert_array_equal(P, [[0, 0.5, 0.5]] * 2)
    _, S = impl.dense_forward(X, W, b, "sigmoid")
    np.testing.assert_array_equal(S, [[0, 0.5, 0.5]] * 2)
    # a NaN logit makes its row's loss and gradient NaN: never silently finite
    Z = np.array([[np.nan, 0.0, 1.0]], dtype=dtype)
    value, dZ = impl.softmax_cross_entropy(Z, np.array([1]))
    assert math.isnan(value) and np.all(np.isnan(dZ))
    # a -inf logit of a wrong class contributes nothing to the loss or gradient
    Z = np.array([[-np.inf, 0.0, 0.0]], dtype=dtype)
    value, dZ = impl.softmax_cross_entropy(Z, np.array([1]))
    assert value == pytest.approx(math.log(2), rel=4 * _u(dtype))
    np.testing.assert_array_equal(dZ, [[0, -0.5, 0.5]])


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_softmax_cross_entropy_large_logits(dtype):
    Z = np.array([[1e4, 0.0, -1e4], [0.0, 0.0, 0.0]], dtype=dtype)
    value, dZ = _impl().softmax_cross_entropy(Z, np.array([2, 1]))
    # row 0: -log softmax = 2e4 exactly; row 1: log 3
    assert value == pytest.approx((2e4 + math.log(3)) / 2, rel=4 * _u(dtype))
    np.testing.assert_allclose(
        dZ, [[0.5, 0, -0.5], [1 / 6, 1 / 6 - 0.5, 1 / 6]], rtol=0, atol=4 * _u(dtype)
    )


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_loss_clip_semantics(dtype):
    # Y exactly 0 and 1 (log(0) territory), and inside the clip: values finite, gradient
    # zero where the clip is active, = formula elsewhere (hand-computed).
    impl = _impl()
    eps = dtype(1e-7)
    Y = np.array([[0.0, 1.0, 0.25]], dtype=dtype)
    T = np.array([[1.0, 0.0, 1.0]], dtype=dtype)
    value, dY = impl.loss("binary_crossentropy", Y, T)
    p0, p1 = float(eps), float(dtype(1) - eps)
    expected = -(math.log(p0) + math.log(1 - p1) + math.log(0.25)) / 3
    assert value == pytest.approx(expected, rel=16 * _u(dtype))
    np.testing.assert_allclose(dY, [[0, 0, (0.25 - 1) / (0.25 * 0.75) / 3]], rtol=8 * _u(dtype))
    value, dY = impl.loss("categorical_crossentropy", Y, T)
    assert value == pytest.approx(-(math.log(p0) + math.log(0.25)), rel=16 * _u(dtype))
    np.testing.assert_allclose(dY, [[0, 0, -1 / 0.25]], rtol=8 * _u(dtype))
    value, dY = impl.loss("mse", Y, T)
    assert value == pytest.approx((1 + 1 + 0.75**2) / 3, rel=8 * _u(dtype))
    np.testing.assert_allclose(dY, [[-2 / 3, 2 / 3, -1.5 / 3]], rtol=8 * _u(dtype))


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("shape", [(1, 1), (3, 1), (7, 13), (256, 10)])
def test_losses_and_heads_match_naive(shape, dtype):
    rng = np.random.default_rng(shape[0] * 100 + shape[1])
    impl = _impl()
    n, k = shape
    Y = rng.uniform(0.001, 0.999, shape).astype(dtype)
    T = rng.uniform(0, 1, shape).astype(dtype)
    Z = (4 * rng.standard_normal(shape)).astype(dtype)
    labels = rng.integers(0, k, n)
    Y64, T64, Z64 = (A.astype(np.float64) for A in (Y, T, Z))
    # float64 reference formulas; values are means of O(1) terms: a few ulp each
    # (libm log/exp), gradients are elementwise: a few ulp.
    tol = dict(rtol=32 * _u(dtype), atol=32 * _u(dtype))
    approx = dict(rel=tol["rtol"], abs=tol["atol"])
    cases = {
        "mse": (np.mean((Y64 - T64) ** 2), 2 * (Y64 - T64) / Y.size),
        "binary_crossentropy": (
            -np.mean(T64 * np.log(Y64) + (1 - T64) * np.log(1 - Y64)),
            (Y64 - T64) / (Y64 * (1 - Y64)) / Y.size,
        ),
        "categorical_crossentropy": (-np.sum(T64 * np.log(Y64)) / n, -T64 / Y64 / n),
    }
    for name, (value_ref, dY_ref) in cases.items():
        value, dY = impl.loss(name, Y, T)
        assert isinstance(value, float) and dY.dtype == dtype
        assert value == pytest.approx(value_ref, rel=tol["rtol"]), name
        # dY's relative error: the division chain rounds ~4 times
        np.testing.assert_allclose(dY, dY_ref, rtol=tol["rtol"], atol=0, err_msg=name)
    S = Z64 - Z64.max(axis=1, keepdims=True)
    lse = np.log(np.exp(S).sum(axis=1))
    value, dZ = impl.softmax_cross_entropy(Z, labels)
    assert value == pytest.approx(np.mean(lse - S[np.arange(n), labels]), **approx)
    onehot = np.eye(k)[labels]
    np.testing.assert_allclose(dZ, (np.exp(S - lse[:, None]) - onehot) / n, **tol)
    value, dZ = impl.sigmoid_cross_entropy(Z, T)
    sig = 1 / (1 + np.exp(-Z64))
    ref = np.mean(np.maximum(Z64, 0) - Z64 * T64 + np.log1p(np.exp(-np.abs(Z64))))
    assert value == pytest.approx(ref, **approx)
    np.testing.assert_allclose(dZ, (sig - T64) / Z.size, **tol)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("shape", [(1,), (7,), (3, 5), (33, 65)])
def test_optimizers_match_naive(shape, dtype):
    rng = np.random.default_rng(sum(shape))
    impl = _impl()
    c = np.dtype(dtype).type
    p, g, vel, m = (rng.standard_normal(shape).astype(dtype) for _ in range(4))
    v = np.abs(rng.standard_normal(shape)).astype(dtype)
    p64, g64, vel64, m64, v64 = (A.astype(np.float64) for A in (p, g, vel, m, v))
    # each updated element is a handful of roundings in dtype: ~8 ulp of the largest term
    tol = dict(rtol=16 * _u(dtype), atol=16 * _u(dtype))
    P, V = p.copy(), vel.copy()
    impl.sgd_update(P, g, V, c(0.1), c(0.9))
    vel_ref = 0.9 * vel64 - 0.1 * g64
    np.testing.assert_allclose(V, vel_ref, **tol)
    np.testing.assert_allclose(P, p64 + vel_ref, **tol)
    P, M, Vv = p.copy(), m.copy(), v.copy()
    step, lr, b1, b2, eps = 3, c(0.01), c(0.9), c(0.999), c(1e-7)
    impl.adam_update(P, g, M, Vv, step, lr, b1, b2, eps)
    lr, b1, b2, eps = (float(x) for x in (lr, b1, b2, eps))  # the dtype-rounded values
    m_ref = b1 * m64 + (1 - b1) * g64
    v_ref = b2 * v64 + (1 - b2) * g64 * g64
    ratio = (m_ref / (1 - b1**step)) / (np.sqrt(v_ref / (1 - b2**step)) + eps)
    p_ref = p64 - lr * ratio
    np.testing.assert_allclose(M, m_ref, **tol)
    np.testing.assert_allclose(Vv, v_ref, **tol)
    # The bias corrections are computed in dtype, as the numpy backend does:
    # 1 - b2**3 = 0.003 keeps b2**3's absolute rounding (u), i.e. ~330 u relative,
    # halved by the square root; the step lr * ratio inherits that relative error.
    step_atol = lr * np.abs(ratio).max() * 512 * _u(dtype) + 16 * _u(dtype)
    np.testing.assert_allclose(P, p_ref, rtol=16 * _u(dtype), atol=step_atol)


# --------------------------------------------------------------------------------------
# compile options: cache=True everywhere, safe fastmath, no float64 in float32 loops
# --------------------------------------------------------------------------------------


def _dispatchers():
    from numba.core.registry import CPUDispatcher

    found = {}
    for module in _numba_modules():
        for name, obj in vars(module).items():
            if isinstance(obj, CPUDispatcher) and obj.py_func.__module__ == module.__name__:
                found[f"{module.__name__}.{name}"] = obj
    return found


def test_every_kernel_is_cached_with_safe_options():
    kernels = _dispatchers()
    assert len(kernels) >= 20, sorted(kernels)
    for name, d in kernels.items():
        assert type(d._cache).__name__ != "NullCache", f"{name} lacks cache=True"
        flags = d.targetoptions.get("fastmath")
        flags = getattr(flags, "flags", flags) or set()
        assert not {"fast", "nnan", "ninf"} & set(flags), f"{name}: fastmath {flags}"
        if ".train" not in name:
            # the primitive ops stay serial (one thread pool: NumPy's BLAS)
            assert not d.targetoptions.get("parallel"), f"{name} uses parallel=True"


def test_backend_kernels_share_config():
    from fastnn.kernels.numba import config

    for name, d in _dispatchers().items():
        if ".train" in name:
            continue  # options of the fused training loops are their own modules'
        assert d.targetoptions.get("error_model") == "numpy", name
        assert d.targetoptions.get("nogil") is True, name
        reduction = name.endswith((".row_sum", ".gemm_nt", "._sum64", ".abs_sum", ".square_sum"))
        expected = config.FASTMATH_REDUCE if reduction else config.FASTMATH
        assert d.targetoptions.get("fastmath") == expected, name
    # reassociation may cancel digits outside pure sums (b2 v + (1 - b2) g^2)
    assert "reassoc" not in config.FASTMATH


@pytest.mark.parametrize("kernel", ["bias_activation", "activation_backward", "adam_step",
                                    "sgd_step", "normalize_rows", "sigmoid_from_exp"])  # fmt: skip
def test_float32_kernels_stay_float32(kernel):
    """No float64 arithmetic (``fpext``/``double`` ops) in float32 elementwise loops.

    ``bias_activation`` is compiled for relu and ``activation_backward`` for tanh (the
    code a compile-time constant): the exponentials of sigmoid, softmax, elu, gelu,
    softplus and silu are evaluated in float64 on purpose (``mathfn.fast_exp``: one
    rounding).
    """
    from numba import njit

    from fastnn.kernels.numba import config, kernels
    from fastnn.kernels.numba.codes import RELU, TANH

    # A private, uncached copy so the LLVM IR is available even when the cached
    # build was loaded from disk.
    fn = njit(**dict(config.JIT, cache=False))(getattr(kernels, kernel).py_func)
    if kernel == "bias_activation":
        # the activation code a compile-time constant: only relu's loop remains
        epilogue = fn

        def relu_epilogue(Z, b, act, Y, slope):
            epilogue(Z, b, RELU, Y, slope, None)

        fn = njit(**dict(config.JIT, cache=False))(relu_epilogue)
    if kernel == "activation_backward":
        backward = fn

        def tanh_backward(dY, Z, Y, act, dZ, db, slope):
            backward(dY, Z, Y, TANH, dZ, db, slope, None)

        fn = njit(**dict(config.JIT, cache=False))(tanh_backward)
    a2 = np.ones((3, 4), np.float32)
    a1 = np.ones(4, np.float32)
    one = np.float32(1)
    args = {
        "bias_activation": (a2, a1, RELU, a2.copy(), one),
        "activation_backward": (a2, a2, a2, TANH, a2.copy(), a1.copy(), one),
        "adam_step": (a1, a1, a1.copy(), a1.copy(), *([one] * 6)),
        "sgd_step": (a1, a1, a1.copy(), one, one, False),
        "normalize_rows": (a2.copy(),),
        "sigmoid_from_exp": (a2, a2.copy()),
    }[kernel]
    fn(*args)
    ir = fn.inspect_llvm(fn.signatures[0])
    assert "fpext float" not in ir and "fmul double" not in ir and "fadd double" not in ir


# --------------------------------------------------------------------------------------
# threads and runtime controls
# --------------------------------------------------------------------------------------


@pytest.fixture
def restore_threads():
    from fastnn.dispatch import runtime

    saved = runtime._requested
    before = fastnn.get_num_threads()
    yield
    fastnn.set_num_threads(saved if saved is not None else before)
    runtime._requested = saved


def test_set_num_threads_round_trip(restore_threads):
    import numba
    from threadpoolctl import threadpool_info

    for n in (1, 2):
        fastnn.set_num_threads(n)
        assert fastnn.get_num_threads() == n
        blas = [p for p in threadpool_info() if p["user_api"] == "blas"]
        assert blas and all(p["num_threads"] == n for p in blas), blas
        # SciPy's OpenBLAS (used by np.dot inside njit) is limited too
        assert any("scipy" in p["filepath"] for p in blas) or len(blas) >= 1
        assert numba.get_num_threads() == min(n, numba.config.NUMBA_NUM_THREADS)


@pytest.mark.parametrize("bad", [0, -1, 1.5, "2", True, None])
def test_set_num_threads_rejects(bad, restore_threads):
    before = fastnn.get_num_threads()
    with pytest.raises((TypeError, ValueError), match="positive integer"):
        fastnn.set_num_threads(bad)
    assert fastnn.get_num_threads() == before


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("act", ("relu", "softmax", "tanh"))
def test_results_same_for_one_and_two_threads(act, dtype, restore_threads):
    """With 1 and with 2 threads (BLAS splits the products between them), forward and
    backward stay within the naive reference's error bounds, hence within twice
    those bounds of each other."""
    for threads in (1, 2):
        fastnn.set_num_threads(threads)
        for shape in ((128, 300, 200), (1, 784, 256), (33, 129, 131)):
            _check_forward(shape, act, dtype)
            _check_backward(shape, act, dtype)


def test_concurrent_calls_from_threads():
    """Kernels release the GIL and share no state: concurrent calls give serial results."""
    rng = np.random.default_rng(9)
    impl = _impl()
    jobs = [_layer(rng, 40, 130, 120, np.float32) for _ in range(4)]
    expected = [impl.dense_forward(X, W, b, "sigmoid") for X, W, b in jobs]
    errors, results = [], {}

    def work(k):
        try:
            for _ in range(20):
                results[k] = impl.dense_forward(*jobs[k], "sigmoid")
        except BaseException as exc:  # noqa: BLE001 -- reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for k, (Z, Y) in enumerate(expected):
        np.testing.assert_array_equal(results[k][0], Z)
        np.testing.assert_array_equal(results[k][1], Y)


def test_threading_layer_is_thread_safe_when_available():
    import numba

    from fastnn.kernels.numba.config import select_threading_layer

    layer = select_threading_layer()
    if os.environ.get("NUMBA_THREADING_LAYER"):
        assert layer == numba.config.THREADING_LAYER
    else:
        try:
            import numba.np.ufunc.omppool  # noqa: F401

            has_safe = True
        except ImportError:
            has_safe = False
        assert (layer == "threadsafe") == has_safe


def test_warmup_compiles_everything_needed():
    from fastnn.dispatch import runtime

    with pytest.raises(ValueError, match="float32 or float64"):
        fastnn.warmup(dtypes=("int32",))
    assert fastnn.warmup(backend="numpy") >= 0
    seconds = fastnn.warmup()
    assert isinstance(seconds, float) and seconds > 0
    before = {name: list(d.signatures) for name, d in _dispatchers().items()}
    # everything a training touches, through the public edge, at both dtypes and paths
    ops = fastnn.get_ops("numba")
    for dtype in DTYPES:
        runtime._warm_ops(ops, np.dtype(dtype))
        for n, n_in, n_out in ((1, 784, 256), (256, 784, 256), (256, 256, 10), (3, 3, 3)):
            X, W, b = _layer(np.random.default_rng(0), n, n_in, n_out, dtype)
            for act in ACTS:
                Z, Y = ops.dense_forward(X, W, b, act)
                ops.dense_backward(np.ones_like(Y), X, W, Z, Y, act)
        runtime._warm_train(ops, np.dtype(dtype))
    after = {name: list(d.signatures) for name, d in _dispatchers().items()}
    assert after == before


# --------------------------------------------------------------------------------------
# fresh processes: import compiles nothing; a second process loads from the disk cache
# --------------------------------------------------------------------------------------


def _run(code, cache_dir):
    """Run ``code`` in a fresh interpreter; ``cache_dir``: its ``NUMBA_CACHE_DIR``
    (None: this process's cache)."""
    env = dict(os.environ)
    if cache_dir is not None:
        env["NUMBA_CACHE_DIR"] = str(cache_dir)
    env.pop("FASTNN_BACKEND", None)
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_import_compiles_nothing(tmp_path):
    out = _run(
        """
        import sys
        import fastnn
        assert "numba" not in sys.modules, "import fastnn imported numba"
        fastnn.set_num_threads(1)
        assert "numba" not in sys.modules, "set_num_threads imported numba"
        fastnn.get_ops("numba")  # the dispatcher loads the backend
        from numba.core.registry import CPUDispatcher
        from fastnn.kernels.numba import kernels, gemm, scalar, train_gemm, train_small
        modules = (kernels, gemm, scalar, train_gemm, train_small)
        compiled = [n for m in modules for n, d in vars(m).items()
                    if isinstance(d, CPUDispatcher) and d.signatures]
        assert not compiled, compiled
        import numba
        print(numba.get_num_threads())
        """,
        tmp_path,
    )
    # the pending thread count reached Numba when the dispatcher loaded the backend
    assert out.strip() == "1"


def test_second_process_loads_kernels_from_cache():
    """After this process's float64 warm-up (compiled and stored here, or loaded from
    Numba's on-disk cache: either way the cache then holds every kernel), a second
    process's warm-up and everything a training calls load from that cache: every
    dispatcher it called, op kernels and training loops, reports cache hits and not
    one miss, and nothing compiles after ``warmup()``.  The cache is the suite's own,
    as in use (``NUMBA_CACHE_DIR`` or Numba's default beside the sources), so the
    compile is paid once per suite; :func:`test_warmup_compiles_everything_needed`
    checks the in-process half, :func:`test_every_kernel_is_cached_with_safe_options`
    that every kernel asks for the cache."""
    fastnn.warmup(dtypes=("float64",))
    code = """
        import numpy as np
        import fastnn
        from fastnn.dispatch import runtime
        from numba.core.registry import CPUDispatcher
        from fastnn.kernels.numba import kernels, gemm, train, train_gemm, train_small
        seconds = fastnn.warmup(dtypes=("float64",))
        def dispatchers():
            return {f"{m.__name__}.{n}": d
                    for m in (kernels, gemm, train, train_gemm, train_small)
                    for n, d in vars(m).items() if isinstance(d, CPUDispatcher)}
        before = {n: list(d.signatures) for n, d in dispatchers().items()}
        ops = fastnn.get_ops("numba")
        rng = np.random.default_rng(0)
        for n, n_in, n_out in ((1, 784, 256), (256, 784, 256), (256, 256, 10), (3, 3, 3)):
            X = rng.standard_normal((n, n_in))
            W = rng.standard_normal((n_in, n_out))
            b = np.zeros(n_out)
            for act in ("linear", "sigmoid", "relu", "tanh", "softmax"):
                Z, Y = ops.dense_forward(X, W, b, act)
                ops.dense_backward(np.ones_like(Y), X, W, Z, Y, act)
        runtime._warm_train(ops, np.dtype("float64"))
        after = {n: list(d.signatures) for n, d in dispatchers().items()}
        called = {n: d for n, d in dispatchers().items() if d.signatures}
        compiled = [n for n, d in called.items()
                    if d.stats.cache_misses or len(d.stats.cache_hits) < len(d.signatures)]
        print(int(after == before), len(called), sum(".train" in n for n in called),
              ",".join(compiled) or "-")
        """
    same, n_called, n_trainers, compiled = _run(code, None).split()
    # Fewer dispatchers hold signatures there than here: kernels only called from
    # other kernels are part of their callers' cached machine code.
    assert int(n_called) >= 20 and int(n_trainers) >= 4, (n_called, n_trainers)
    assert compiled == "-", f"compiled in the second process, not loaded: {compiled}"
    assert same == "1", "a kernel compiled after warmup()"
