"""The fused, compiled ``train_batches`` of the numba backend against the contract.

The reference is the contract's default composition
(:meth:`fastnn.kernels.contract.Ops.train_batches`) run on the ``python`` backend's
primitive ops, which evaluate each op in double precision and round once: an
independent implementation of the same numbers.  Both compiled loops are checked
(the batch-minor one for small widths and the BLAS one), for every head, optimizer
and dtype, on 1-, 2- and 3-layer stacks with widths down to 1 and a partial last
batch; weights, biases, optimizer state, per-batch losses and correct counts are
compared after several updates.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("numba")

import fastnn  # noqa: E402
from fastnn.kernels.contract import (  # noqa: E402
    HEADS,
    OPTIMIZERS,
    Ops,
    StepBackwardError,
)
from fastnn.kernels.numba import blas, mathfn, train  # noqa: E402
from fastnn.kernels.numba.train import TrainMixin  # noqa: E402

# Tolerances after a few (<= 8) updates, relative to the python reference.
#
# float64: the fused loop sums in another order (batch-minor loops, BLAS blocking,
#   reassociated reductions), uses FMA and its own exp/log (<= 1 ulp).  Each of those
#   is ~1e-16 relative; an update maps an O(u) gradient error to an O(lr * u)
#   parameter error and a few updates do not amplify it beyond ~1e-14.  rtol 1e-10
#   / atol 1e-12 leaves a margin of 10^4 and still catches a float32 round trip (1e-7).
# float32: the reference rounds each op's result once from double precision, the
#   fused loop rounds every operation (unit roundoff 6e-8) over reductions of up to
#   ~16 terms, and Adam divides by sqrt(v) ~ |g|, which turns the gradient's relative
#   error into an absolute update error of about lr * 1e-6.  rtol 1e-4 / atol 1e-5
#   covers that with margin; a wrong term or index is off by orders more.
TOLERANCES = {
    np.float64: {"rtol": 1e-10, "atol": 1e-12},
    np.float32: {"rtol": 1e-4, "atol": 1e-5},
}

HYPER = {"sgd": (0.1, 0.9), "adam": (0.05, 0.9, 0.999, 1e-7), "rmsprop": (0.01, 0.9, 0.5, 1e-7)}

# (layer widths, hidden activations): 1, 2 and 3 layers, width-1 hidden and output
# layers (the k == 1 decision thresholds) and every differentiable activation
# somewhere in a hidden layer.
ARCHITECTURES = [
    ((3, 2), ()),
    ((2, 3, 1), ("relu",)),
    ((3, 5, 3), ("tanh",)),
    ((4, 1, 6, 2), ("sigmoid", "relu")),
    ((2, 6, 4, 3), ("softmax", "linear")),
]


def output_activation(head: str) -> str:
    """The last layer's activation that goes with ``head`` (logit heads take logits)."""
    return {
        "softmax_cross_entropy": "linear",
        "sigmoid_cross_entropy": "linear",
        "mse": "tanh",
        "binary_crossentropy": "sigmoid",
        "categorical_crossentropy": "softmax",
    }[head]


def make_problem(dims, head, optimizer, dtype, N, seed):
    """Weights, targets and optimizer state for a stack of ``dims`` (fresh arrays)."""
    rng = np.random.default_rng(seed)
    L = len(dims) - 1
    X = rng.normal(size=(N, dims[0])).astype(dtype)
    k = dims[-1]
    if head == "softmax_cross_entropy":
        T = rng.integers(0, k, N).astype(np.int64)
    elif head == "categorical_crossentropy":
        # soft targets: rows on the simplex
        T = rng.random((N, k)).astype(dtype)
        T /= T.sum(axis=1, keepdims=True)
    elif head == "mse":
        T = rng.normal(size=(N, k)).astype(dtype)
    else:
        T = (rng.random((N, k)) > 0.5).astype(dtype)
    Ws = [
        (rng.normal(size=(dims[l], dims[l + 1])) / np.sqrt(dims[l])).astype(dtype) for l in range(L)
    ]
    bs = [(0.1 * rng.normal(size=dims[l + 1])).astype(dtype) for l in range(L)]
    names = OPTIMIZERS[optimizer][0]
    # Non-zero starting state, so a kernel that ignored or reset it would show.
    state = []
    for l in range(L):
        for p in (Ws[l], bs[l]):
            entries = [(0.01 * rng.normal(size=p.shape)).astype(dtype) for _ in names]
            if optimizer == "adam":
                entries[1] = np.abs(entries[1])  # v >= 0
            if optimizer == "rmsprop":
                entries[0] = np.abs(entries[0])  # ms >= 0
            state.append(tuple(entries))
    return X, T, Ws, bs, state


def copy_problem(Ws, bs, state):
    states = [tuple(a.copy() for a in s) for s in state]
    return [W.copy() for W in Ws], [b.copy() for b in bs], states


def run_both(dims, hidden, head, optimizer, dtype, order, batch_size, step, N=13, seed=0):
    """Train copies of one problem with the reference and the fused loop."""
    X, T, Ws, bs, state = make_problem(dims, head, optimizer, dtype, N, seed)
    acts = [*hidden, output_activation(head)]
    ref_ops = fastnn.get_ops("python").impl
    hyper = HYPER[optimizer]
    Wr, br, sr = copy_problem(Ws, bs, state)
    expected = Ops.train_batches(
        ref_ops, Wr, br, acts, X, T, order, batch_size, head, optimizer, sr, hyper, step
    )
    Wf, bf, sf = copy_problem(Ws, bs, state)
    got = Fused().train_batches(
        Wf, bf, acts, X, T, order, batch_size, head, optimizer, sf, hyper, step
    )
    return (Wr, br, sr, expected), (Wf, bf, sf, got)


class Fused(TrainMixin, Ops):
    """Only the fused method matters here; the primitives are never called by it."""

    name = "fused-test"

    def dense_forward(self, *args):
        raise AssertionError("the fused loop must not call primitive ops")

    dense_backward = loss = softmax_cross_entropy = sigmoid_cross_entropy = dense_forward
    sgd_update = adam_update = rmsprop_update = penalty = dropout_mask = dense_forward


@pytest.fixture(params=["small", "gemm", "gemm-2threads", "gemm-3threads", "gemm-npdot"])
def path(request, monkeypatch):
    """Force the batch-minor loop or the BLAS loop, whatever the widths; the BLAS loop
    serial, split over 2 or 3 threads (3 leaves uneven row and column slices, and
    slices of no rows when a batch is smaller than 3), and with its ``np.dot``
    fallback (no NumPy CBLAS found: serial)."""
    monkeypatch.setattr(train, "SMALL_WIDTH", 10**9 if request.param == "small" else 0)
    monkeypatch.setattr(train, "SMALL_MACS", 10**18 if request.param == "small" else 0)
    threads = {"gemm-2threads": 2, "gemm-3threads": 3}.get(request.param, 1)
    monkeypatch.setattr(train, "parallel_threads", lambda: threads)
    if request.param == "gemm-npdot":
        monkeypatch.setattr(train, "numpy_gemm_address", lambda dtype: 0)
    return request.param


def assert_matches(reference, fused, dtype):
    Wr, br, sr, (loss_r, correct_r) = reference
    Wf, bf, sf, (loss_f, correct_f) = fused
    tol = TOLERANCES[dtype]
    for l, (A, B) in enumerate(zip(Wf, Wr)):
        assert A.dtype == np.dtype(dtype)
        np.testing.assert_allclose(A, B, err_msg=f"W{l}", **tol)
    for l, (A, B) in enumerate(zip(bf, br)):
        assert A.dtype == np.dtype(dtype)
        np.testing.assert_allclose(A, B, err_msg=f"b{l}", **tol)
    for p, (sa, sb) in enumerate(zip(sf, sr)):
        for s, (A, B) in enumerate(zip(sa, sb)):
            np.testing.assert_allclose(A, B, err_msg=f"state[{p}][{s}]", **tol)
    assert loss_f.dtype == np.float64 and correct_f.dtype == np.float64
    assert loss_f.shape == loss_r.shape
    np.testing.assert_allclose(loss_f, loss_r, err_msg="losses", **tol)
    np.testing.assert_array_equal(correct_f, correct_r, err_msg="correct")


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("optimizer", list(OPTIMIZERS))
@pytest.mark.parametrize("head", HEADS)
@pytest.mark.parametrize("arch", ARCHITECTURES, ids=lambda a: "-".join(map(str, a[0])))
def test_matches_contract_default(arch, head, optimizer, dtype, path):
    dims, hidden = arch
    # 13 rows, batches of 4 with a partial last batch of 1, plus repeated rows; Adam's
    # count continues from step=3 (bias correction uses 3 + j + 1 for batch j).
    order = np.concatenate([np.random.default_rng(1).permutation(13), [5, 5, 0, 12]])
    order = order.astype(np.int64)
    reference, fused = run_both(dims, hidden, head, optimizer, dtype, order, 4, step=3)
    assert len(fused[3][0]) == 5  # 17 rows in batches of 4
    assert_matches(reference, fused, dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("head", HEADS)
def test_repeated_and_reordered_batches(head, dtype, path):
    """Batches repeating the previous one's rows (full-batch epochs without
    shuffling: the small loop then keeps the gathered batch), then the same rows
    reordered, a different set and back: every batch must see its own rows."""
    dims, hidden = (3, 5, 4), ("tanh",)
    ident = np.arange(6)
    order = np.concatenate(
        [ident, ident, ident[::-1], ident[::-1], [0, 1, 2, 3, 4, 0], ident]
    ).astype(np.int64)
    reference, fused = run_both(dims, hidden, head, "sgd", dtype, order, 6, step=0, N=6)
    assert len(fused[3][0]) == 6
    assert_matches(reference, fused, dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("optimizer", list(OPTIMIZERS))
def test_batch_of_one_and_whole_set(optimizer, dtype, path):
    """Sample-by-sample training (batch 1) and one full batch larger than ``order``."""
    dims, hidden = (3, 4, 1), ("sigmoid",)
    order = np.arange(6, dtype=np.int64)
    for batch_size in (1, 50):
        reference, fused = run_both(
            dims, hidden, "binary_crossentropy", optimizer, dtype, order, batch_size, step=0
        )
        assert_matches(reference, fused, dtype)


@pytest.mark.parametrize(
    "dims, path",
    [((2, 8, 1), "small"), ((2, 3, 1), "small"), ((10, 15, 5), "small"), ((8, 64, 2), "small"),
     ((30, 64, 1), "gemm"), ((64, 64, 10), "gemm"), ((80, 70, 10), "gemm")],
)  # fmt: skip
def test_path_by_width_and_work_per_row(dims, path):
    """The tutorials' nets take the batch-minor loop; digits- and breast-cancer-sized
    nets (narrow, but >= 2,000 multiply-adds per row) and wide ones take BLAS."""
    assert train.choose_path(dims) == path


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("optimizer", list(OPTIMIZERS))
def test_wide_layers_use_blas_loop(optimizer, dtype):
    """A net wider than SMALL_WIDTH takes the BLAS loop unforced (numpy backend as
    reference: it is checked against the python backend op by op elsewhere, and the
    python loops would take minutes at these widths)."""
    dims = (80, train.SMALL_WIDTH + 6, 10)
    assert train.choose_path(dims) == "gemm"
    X, T, Ws, bs, state = make_problem(dims, "softmax_cross_entropy", optimizer, dtype, 150, 3)
    order = np.random.default_rng(4).permutation(150).astype(np.int64)
    acts = ["relu", "linear"]
    hyper = HYPER[optimizer]
    Wr, br, sr = copy_problem(Ws, bs, state)
    expected = Ops.train_batches(
        fastnn.get_ops("numpy").impl, Wr, br, acts, X, T, order, 32,
        "softmax_cross_entropy", optimizer, sr, hyper, 0,
    )  # fmt: skip
    Wf, bf, sf = copy_problem(Ws, bs, state)
    got = Fused().train_batches(
        Wf, bf, acts, X, T, order, 32, "softmax_cross_entropy", optimizer, sf, hyper, 0
    )
    # 80-term reductions: float32 atol scaled as for any longer dot product.
    tol = dict(TOLERANCES[dtype])
    tol["atol"] *= 5
    for A, B in zip(Wf + bf, Wr + br):
        np.testing.assert_allclose(A, B, **tol)
    np.testing.assert_allclose(got[0], expected[0], **tol)
    np.testing.assert_array_equal(got[1], expected[1])


def test_consecutive_calls_equal_one_call():
    """Splitting ``order`` at a batch boundary and passing ``step`` on gives the same
    training as one call (Adam's bias correction continues)."""
    dims, hidden = (3, 5, 2), ("tanh",)
    order = np.random.default_rng(2).permutation(13).astype(np.int64)
    X, T, Ws, bs, state = make_problem(dims, "softmax_cross_entropy", "adam", np.float64, 13, 0)
    acts = [*hidden, "linear"]
    args = ("softmax_cross_entropy", "adam")
    W1, b1, s1 = copy_problem(Ws, bs, state)
    whole = Fused().train_batches(W1, b1, acts, X, T, order, 4, *args, s1, HYPER["adam"], 0)
    W2, b2, s2 = copy_problem(Ws, bs, state)
    first = Fused().train_batches(W2, b2, acts, X, T, order[:8], 4, *args, s2, HYPER["adam"], 0)
    second = Fused().train_batches(W2, b2, acts, X, T, order[8:], 4, *args, s2, HYPER["adam"], 2)
    np.testing.assert_array_equal(np.concatenate([first[0], second[0]]), whole[0])
    for A, B in zip(W1 + b1, W2 + b2):
        np.testing.assert_array_equal(A, B)


def test_step_activation_raises_and_changes_nothing():
    dims = (3, 4, 1)
    X, T, Ws, bs, state = make_problem(dims, "mse", "sgd", np.float64, 5, 0)
    W0, b0, s0 = copy_problem(Ws, bs, state)
    order = np.arange(5, dtype=np.int64)
    with pytest.raises(StepBackwardError):
        Fused().train_batches(Ws, bs, ["step", "linear"], X, T, order, 2, "mse", "sgd", state,
                              HYPER["sgd"], 0)  # fmt: skip
    for A, B in zip(Ws + bs, W0 + b0):
        np.testing.assert_array_equal(A, B)
    for sa, sb in zip(state, s0):
        np.testing.assert_array_equal(sa[0], sb[0])


def test_empty_order_trains_nothing():
    dims = (3, 2)
    X, T, Ws, bs, state = make_problem(dims, "mse", "adam", np.float32, 5, 0)
    W0 = Ws[0].copy()
    losses, correct = Fused().train_batches(
        Ws, bs, ["linear"], X, T, np.zeros(0, np.int64), 4, "mse", "adam", state,
        HYPER["adam"], 0,
    )  # fmt: skip
    assert losses.shape == (0,) and correct.shape == (0,)
    np.testing.assert_array_equal(Ws[0], W0)


def test_numpy_blas_located_for_both_dtypes():
    """NumPy wheels bundle OpenBLAS with ILP64 CBLAS symbols; the fused loop finds them
    (or reports 0 and falls back, never a bogus address)."""
    for dtype in (np.float32, np.float64):
        address = train.numpy_gemm_address(dtype)
        assert isinstance(address, int) and address >= 0
    cfg = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
    if cfg.get("name") == "scipy-openblas" and "64" in str(cfg.get("openblas configuration", "")):
        assert train.numpy_gemm_address(np.float32) != 0


def test_numba_backend_uses_fused_loop():
    """The registered numba backend trains through this module's method."""
    impl = fastnn.get_ops("numba").impl
    assert type(impl).train_batches is TrainMixin.train_batches


# ------------------------------------------------------------ compiled exp / log
# Independent reference: NumPy's exp/log/log1p (libm, correctly rounded to ~0.5 ulp).


def _special_and_random(rng):
    return np.concatenate(
        [
            rng.uniform(-750, 715, 20000),
            rng.normal(size=20000) * 3,
            [-np.inf, np.inf, np.nan, 0.0, -0.0, -745.2, -745.0, -708.5, 709.7, 709.8, 1e-300],
        ]
    )


def test_exp64_within_two_ulp_and_special_values():
    rng = np.random.default_rng(0)
    x = _special_and_random(rng)
    got = _apply(mathfn.exp64, x)
    with np.errstate(over="ignore", under="ignore"):
        expected = np.exp(x)
    same_class = (np.isnan(got) == np.isnan(expected)) & (np.isinf(got) == np.isinf(expected))
    assert same_class.all()
    finite = np.isfinite(expected)
    # Subnormal results have absolute precision 5e-324; elsewhere 2 ulp.
    err = np.abs(got[finite] - expected[finite])
    assert (err <= 2 * np.spacing(expected[finite]) + 1e-323).all()


def test_log64_and_log1p_within_two_ulp_and_special_values():
    rng = np.random.default_rng(1)
    x = np.concatenate(
        [np.exp(rng.uniform(-744, 709, 20000)), rng.random(5000), [5e-324, 1e-310, 1.0, 2.0]]
    )
    got = _apply(mathfn.log64, x)
    expected = np.log(x)
    assert (np.abs(got - expected) <= 2 * np.spacing(np.abs(expected)) + 1e-300).all()
    special = np.array([0.0, -0.0, -1.0, np.inf, np.nan, -np.inf])
    np.testing.assert_array_equal(
        _apply(mathfn.log64, special), [-np.inf, -np.inf, np.nan, np.inf, np.nan, np.nan]
    )
    u = np.concatenate([np.exp(-rng.uniform(0, 745, 20000)), [0.0, 1.0, 1e-300]])
    got = _apply_log1p(u)
    expected = np.log1p(u)
    assert (np.abs(got - expected) <= 2 * np.spacing(np.abs(expected)) + 1e-320).all()


def _apply(fn, x):
    from numba import njit

    @njit
    def loop(x, out):
        for i in range(x.shape[0]):
            out[i] = fn(x[i])

    out = np.empty_like(x)
    loop(x, out)
    return out


def _apply_log1p(x):
    from numba import njit

    log1p = mathfn.fast_log1p

    @njit
    def loop(x, out):
        for i in range(x.shape[0]):
            out[i] = log1p(x[i])

    out = np.empty_like(x)
    loop(x, out)
    return out


def test_serial_blas_context_restores_the_setting_after_overlapping_uses():
    """Two threads training at once each limit NumPy's BLAS to one thread; the
    setting must stay 1 until the last one finishes, then return to what it was."""
    import threading

    lib = blas.numpy_blas()
    if lib is None:
        pytest.skip("NumPy's bundled OpenBLAS not found (another BLAS build)")
    get = lib.scipy_openblas_get_num_threads64_
    before = get()
    lib.scipy_openblas_set_num_threads64_(2)
    try:
        first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()
        seen = {}

        def first():
            with blas.SerialBlas():
                first_in.set()
                second_in.wait(5)
            first_out.set()

        def second():
            first_in.wait(5)
            with blas.SerialBlas():
                second_in.set()
                first_out.wait(5)
                seen["after_first_exit"] = get()

        threads = [threading.Thread(target=first), threading.Thread(target=second)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        assert seen["after_first_exit"] == 1
        assert get() == 2
    finally:
        lib.scipy_openblas_set_num_threads64_(before)


# ------------------------------------------------------------------ fused options (issue 10)

#: (optimizer, complete hyper, hidden activations, keyword options) per case: each
#: option of train_batches alone, and the combinations the fused loops special-case
#: (plain SGD folds its step, L2 and weight decay into the weight-gradient product;
#: an L1 term or momentum turns that off).
OPTION_CASES = {
    "sgd-fold-l2-decay": (
        "sgd",
        (0.1, 0.0, 0, 0.05),
        ("relu", "tanh"),
        {"penalties": [(0.0, 0.01), None, (0.0, 0.1)]},
    ),
    "sgd-fold-l1": (
        "sgd",
        (0.1, 0.0),
        ("relu", "tanh"),
        {"penalties": [(0.01, 0.02), None, (0.0, 0.1)], "penalty_per_row": True},
    ),
    "sgd-nesterov-decay": ("sgd", (0.1, 0.9, 1, 0.02), ("relu", "sigmoid"), {}),
    "adam-outside-decay": ("adam", (0.01, 0.9, 0.999, 1e-8, 0.02, 1), ("tanh", "relu"), {}),
    "rmsprop": ("rmsprop", (0.01, 0.9, 0.0, 1e-7, 0.0), ("relu", "tanh"), {}),
    "rmsprop-momentum-decay": ("rmsprop", (0.01, 0.9, 0.5, 1e-7, 0.02), ("relu", "relu"), {}),
    "trainable": (
        "adam",
        (0.01, 0.9, 0.999, 1e-7),
        ("relu", "tanh"),
        {"trainable": [False, False, True, False, True, True]},
    ),
    "frozen-bias": (
        "sgd",
        (0.1, 0.0),
        ("relu", "relu"),
        {"trainable": [True, False, True, True, True, False], "penalties": [(0.0, 0.05)] * 3},
    ),
    "lrs": ("sgd", (0.1, 0.9), ("relu", "tanh"), {"lrs": np.linspace(0.2, 0.05, 5)}),
    "epoch-size": ("adam", (0.01, 0.9, 0.999, 1e-7, 0, 1), ("relu", "tanh"), {"epoch_size": 13}),
    "dropout": ("sgd", (0.1, 0.0), ("relu", "tanh"), {"dropout": [0.3, 0.5, None], "seed": 7}),
    "dropout-adam-l2": (
        "adam",
        (0.01, 0.9, 0.999, 1e-7),
        ("sigmoid", "relu"),
        {"dropout": [0.2, None, None], "penalties": [(0.0, 0.01)] * 3, "seed": 2**64 - 3},
    ),
    "sample-weight": ("sgd", (0.1, 0.9), ("relu", "tanh"), {"sample_weight": "uniform"}),
    "new-activations": ("sgd", (0.1, 0.9), ("gelu", "silu"), {}),
    "elu-softplus": ("adam", (0.01, 0.9, 0.999, 1e-7), ("elu", "softplus"), {}),
    "leaky-slopes": (
        "sgd",
        (0.1, 0.9),
        ("leaky_relu", "leaky_relu"),
        {"negative_slopes": [0.1, -0.3, None]},
    ),
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("head", ["softmax_cross_entropy", "mse"])
@pytest.mark.parametrize("case", list(OPTION_CASES))
def test_options_fused_match_composition(case, head, dtype, path):
    """Every train_batches option, fused in each loop (small, BLAS serial / 2 / 3
    threads / np.dot), against the contract's composition on the python backend."""
    optimizer, hyper, hidden, kw = OPTION_CASES[case]
    dims = (4, 6, 5, 3)
    N = 13
    X, T, Ws, bs, _ = make_problem(dims, head, "sgd", dtype, N, seed=5)
    n_state = len(OPTIMIZERS[optimizer][0])
    state = [tuple(np.zeros_like(p) for _ in range(n_state)) for pair in zip(Ws, bs) for p in pair]
    rng = np.random.default_rng(6)
    order = rng.permutation(N)
    if "epoch_size" in kw:
        order = np.concatenate([order, rng.permutation(N)])
    order = order.astype(np.int64)
    kw = dict(kw)
    if kw.get("sample_weight") == "uniform":
        kw["sample_weight"] = rng.uniform(0.0, 2.0, N).astype(dtype)
    acts = [*hidden, output_activation(head)]
    Wr, br, sr = copy_problem(Ws, bs, state)
    expected = Ops.train_batches(
        fastnn.get_ops("python").impl, Wr, br, acts, X, T, order, 4, head, optimizer, sr,
        hyper, 3, **kw,
    )  # fmt: skip
    Wf, bf, sf = copy_problem(Ws, bs, state)
    got = Fused().train_batches(Wf, bf, acts, X, T, order, 4, head, optimizer, sf, hyper, 3, **kw)
    assert len(got[0]) == (8 if "epoch_size" in kw else 4)
    assert_matches((Wr, br, sr, expected), (Wf, bf, sf, got), dtype)
    params = [q for pair in zip(Ws, bs) for q in pair]
    trained = [q for pair in zip(Wf, bf) for q in pair]
    for p, flag in enumerate(kw.get("trainable", [])):
        if not flag:  # frozen: bit for bit untouched, state too
            np.testing.assert_array_equal(trained[p], params[p])
            assert not any(A.any() for A in sf[p])


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_compile_trainers_builds_the_specializations_calls_use(dtype, monkeypatch):
    """After ``compile_trainers`` (what ``fastnn warmup`` and auto's background build
    run), no ``train_batches`` call compiles another specialization, whatever the
    flags of the caller's arrays (read-only data, writable labels, fresh hyper)."""
    train.compile_trainers(dtype)
    loops = (train.train_small, train.train_gemm, train.train_gemm_par)
    before = [len(f.signatures) for f in loops]
    X, T, Ws, bs, state = make_problem((3, 5, 2), "softmax_cross_entropy", "adam", dtype, 13, 0)
    X_ro = X.copy()
    X_ro.flags.writeable = False
    order = np.random.default_rng(1).permutation(13)  # int64, writable
    for width, threads in ((10**9, 1), (0, 1), (0, 2)):
        monkeypatch.setattr(train, "SMALL_WIDTH", width)
        monkeypatch.setattr(train, "SMALL_MACS", width)
        monkeypatch.setattr(train, "parallel_threads", lambda t=threads: t)
        for data in (X, X_ro):
            for head, targets in (("softmax_cross_entropy", T), ("mse", np.ones((13, 2), dtype))):
                acts = ["relu", "linear" if head != "mse" else "tanh"]
                for kw in ({}, {"penalties": [(0.0, 0.01), None]}):  # plain and option builds
                    train.TrainMixin.train_batches(
                        Fused(), *copy_problem(Ws, bs, state)[:2], acts, data, targets, order, 4,
                        head, "adam", copy_problem(Ws, bs, state)[2], (0.01, 0.9, 0.99, 1e-7), 0,
                        **kw,
                    )  # fmt: skip
    assert [len(f.signatures) for f in loops] == before


@pytest.mark.parametrize(
    "kw, hidden, plain",
    [
        ({}, "relu", True),
        ({"trainable": [True] * 4}, "sigmoid", True),
        ({"negative_slopes": [0.5, None]}, "leaky_relu", True),
        ({"penalties": [(0.0, 0.01), None]}, "relu", False),
        ({"dropout": [0.2, None], "seed": 3}, "relu", False),
        ({"sample_weight": np.ones(13)}, "relu", False),
        ({"trainable": [False, True, True, True]}, "relu", False),
        ({}, "gelu", False),
        ({"negative_slopes": [-0.5, None]}, "leaky_relu", False),
    ],
    ids=["plain", "all-trainable", "positive-slope", "penalty", "dropout", "weights", "frozen",
         "needs-z", "negative-slope"],
)  # fmt: skip
def test_plain_calls_take_the_pruned_build(kw, hidden, plain):
    """``features``: None (the build without the option paths) exactly when no option
    path would run; positive leaky slopes and explicit all-True flags stay plain."""
    opts = train.options(np.dtype(np.float64), [hidden, "softmax"], 13, None, kw)
    assert (train.features(opts) is None) == plain


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("threads", [1, 2])
def test_option_build_gives_a_plain_call_the_same_numbers(dtype, threads, monkeypatch):
    """The option paths pruned from the plain build change no number: a plain call run
    through the build with every option path compiled in gives the same result."""
    monkeypatch.setattr(train, "SMALL_WIDTH", 0)
    monkeypatch.setattr(train, "SMALL_MACS", 0)
    monkeypatch.setattr(train, "parallel_threads", lambda: threads)
    X, T, Ws, bs, state = make_problem((5, 7, 3), "softmax_cross_entropy", "adam", dtype, 13, 4)
    order = np.random.default_rng(2).permutation(13)
    results = []
    for feat in (lambda opts: None, lambda opts: True):
        monkeypatch.setattr(train, "features", feat)
        Wf, bf, sf = copy_problem(Ws, bs, state)
        out = Fused().train_batches(Wf, bf, ["relu", "softmax"], X, T, order, 4,
                                    "softmax_cross_entropy", "adam", sf,
                                    (0.01, 0.9, 0.99, 1e-7), 0)  # fmt: skip
        results.append((Wf, bf, out))
    (W0, b0, out0), (W1, b1, out1) = results
    for A, B in zip([*W0, *b0, *out0], [*W1, *b1, *out1]):
        # the same operations on the same data: equal bit for bit on the development
        # machine; the stated tolerance leaves LLVM room to contract differently
        np.testing.assert_allclose(A, B, **TOLERANCES[dtype])
