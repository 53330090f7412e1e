"""The dispatcher (backend selection) and the validating edge (CheckedOps)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading

import numpy as np
import pytest

import fastnn
from fastnn.dispatch import CHOICES, ENV_VAR
from fastnn.kernels.contract import ACTIVATIONS, LOSSES

# The python and numpy backends need nothing beyond NumPy: always available.
A, B = "python", "numpy"


def run_python(code: str, env_extra: dict[str, str] | None = None, cwd="/"):
    """Run ``code`` in a fresh interpreter (same venv) and return the completed process."""
    env = {k: v for k, v in os.environ.items() if k != ENV_VAR}
    env.update(env_extra or {})
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=120,
    )


# -- selection ------------------------------------------------------------------------


def test_available_backends():
    names = fastnn.available_backends()
    assert isinstance(names, list)
    assert names[:2] == [A, B]  # registry order; numba follows when importable
    assert set(names) <= {"python", "numpy", "numba"}
    assert "auto" not in names


def test_get_ops_by_name(backend):
    ops = fastnn.get_ops(backend)
    assert ops.name == backend and ops.impl.name == backend
    assert fastnn.get_ops(backend) is ops  # one object per backend
    assert backend in repr(ops)


def test_get_ops_auto():
    ops = fastnn.get_ops("auto")
    assert ops.name == "auto"
    assert ops.impl.name == ("numba" if "numba" in fastnn.available_backends() else "numpy")


def test_set_and_get_backend(restore_backend):
    for name in (A, B, "auto", A):
        fastnn.set_backend(name)
        assert fastnn.get_backend() == name
        assert fastnn.get_ops().name == name
    fastnn.set_backend(" NumPy ")  # names are case- and space-insensitive
    assert fastnn.get_backend() == "numpy"


def request_backend(how: str, name) -> None:
    if how == "use_backend":
        with fastnn.use_backend(name):
            pass
    else:
        getattr(fastnn, how)(name)


@pytest.mark.parametrize("how", ["set_backend", "get_ops", "use_backend"])
@pytest.mark.parametrize("bad", ["tensorflow", "", "numpy2"])
def test_unknown_name_lists_available(restore_backend, how, bad):
    fastnn.set_backend(A)
    with pytest.raises(ValueError, match="unknown backend") as info:
        request_backend(how, bad)
    for name in (*fastnn.available_backends(), "auto"):
        assert name in str(info.value)
    # A failed request leaves the setting unchanged.
    assert fastnn.get_backend() == A


def test_non_string_name(restore_backend):
    with pytest.raises(TypeError, match="string"):
        fastnn.set_backend(3)
    with pytest.raises(TypeError, match="string"):
        fastnn.get_ops(np.float64)


def test_use_backend_nesting_and_exceptions(restore_backend):
    fastnn.set_backend(A)
    with fastnn.use_backend(B) as ops:
        assert ops.impl.name == B
        assert fastnn.get_backend() == B
        with fastnn.use_backend(A):
            assert fastnn.get_backend() == A
            assert fastnn.get_ops().impl.name == A
        assert fastnn.get_backend() == B
        with pytest.raises(RuntimeError, match="boom"):
            with fastnn.use_backend("auto"):
                assert fastnn.get_backend() == "auto"
                raise RuntimeError("boom")
        assert fastnn.get_backend() == B
    assert fastnn.get_backend() == A
    # An invalid name fails before entering and changes nothing.
    with pytest.raises(ValueError):
        with fastnn.use_backend("nope"):
            pass
    assert fastnn.get_backend() == A


def test_set_backend_inside_use_backend(restore_backend):
    """The scoped choice wins inside the block; the default shows again after it."""
    fastnn.set_backend(A)
    with fastnn.use_backend(B):
        fastnn.set_backend("auto")
        assert fastnn.get_backend() == B
    assert fastnn.get_backend() == "auto"


def test_threads_are_isolated(restore_backend):
    fastnn.set_backend(A)
    barrier = threading.Barrier(2, timeout=30)
    seen: dict[str, list[str]] = {A: [], B: []}
    errors: list[BaseException] = []

    def worker(name):
        try:
            # A new thread starts from the process default, not another thread's scope.
            seen[name].append(fastnn.get_backend())
            with fastnn.use_backend(name):
                for _ in range(5):
                    barrier.wait()  # both threads are inside their blocks here
                    seen[name].append(fastnn.get_backend())
                    seen[name].append(fastnn.get_ops().impl.name)
        except BaseException as exc:  # reported in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(name,)) for name in (B, A)]
    with fastnn.use_backend("auto"):
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert fastnn.get_backend() == "auto"
    assert not errors, errors
    for name in (A, B):
        assert seen[name] == [A] + [name] * 10


def test_asyncio_tasks_are_isolated(restore_backend):
    fastnn.set_backend("auto")
    seen: dict[str, list[str]] = {A: [], B: []}
    order: list[str] = []

    async def task(name):
        with fastnn.use_backend(name):
            for _ in range(5):
                await asyncio.sleep(0)  # let the other task run inside its own block
                order.append(name)
                seen[name].append(fastnn.get_backend())
                seen[name].append(fastnn.get_ops().impl.name)

    async def main():
        await asyncio.gather(task(A), task(B))
        return fastnn.get_backend()

    assert asyncio.run(main()) == "auto"
    for name in (A, B):
        assert seen[name] == [name] * 10
    # The tasks really interleaved (each ran between the other's steps).
    assert order[:4] in ([A, B, A, B], [B, A, B, A])


# -- FASTNN_BACKEND and import behaviour (fresh interpreters) -----------------------


def test_env_var_valid():
    proc = run_python(
        "import fastnn; print(fastnn.get_backend(), fastnn.get_ops().impl.name)",
        {ENV_VAR: "python"},
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["python", "python"]


def test_env_var_default_is_auto():
    proc = run_python("import fastnn; print(fastnn.get_backend())")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "auto"


def test_env_var_invalid_errors_at_first_use():
    code = """
import fastnn                                   # importing must not fail
print("imported")
try:
    fastnn.get_ops()
except ValueError as exc:
    print("ERROR", exc)
fastnn.set_backend("numpy")                     # an explicit choice repairs it
print(fastnn.get_backend(), fastnn.get_ops().impl.name)
"""
    proc = run_python(code, {ENV_VAR: "tensorflow"})
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "imported"
    assert lines[1].startswith("ERROR")
    assert ENV_VAR in lines[1] and "tensorflow" in lines[1]
    for choice in CHOICES:
        assert choice in lines[1]
    assert lines[2] == "numpy numpy"


def test_import_does_not_import_numba():
    code = """
import sys
import fastnn, fastnn.kernels, fastnn.dispatch
fastnn.get_ops("numpy").dense_forward
print(sorted(m for m in sys.modules if m == "numba" or m.startswith("numba.")))
"""
    proc = run_python(code)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


BLOCK_NUMBA = "import sys; sys.modules['numba'] = None  # import numba -> ImportError\n"


def test_numba_unavailable():
    """Without Numba the other backends work and a numba request says how to install it."""
    code = (
        BLOCK_NUMBA
        + """
import numpy as np
import fastnn
print(fastnn.available_backends())
print(fastnn.get_ops("auto").impl.name)
X = np.ones((2, 3)); W = np.ones((3, 4)); b = np.zeros(4)
for name in ("python", "numpy", "auto"):
    Z, Y = fastnn.get_ops(name).dense_forward(X, W, b, "relu")
    assert Y.tolist() == [[3.0] * 4] * 2
for attempt in (lambda: fastnn.get_ops("numba"), lambda: fastnn.set_backend("numba")):
    try:
        attempt()
    except ValueError as exc:
        print("ERROR", exc)
print(fastnn.get_backend())
"""
    )
    proc = run_python(code)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "['python', 'numpy']"
    assert lines[1] == "numpy"
    for line in lines[2:4]:
        assert line.startswith("ERROR") and "numba" in line
        assert "pip install" in line
        assert "python" in line and "numpy" in line  # lists what is available
    assert lines[4] == "auto"


def test_numba_unavailable_env_var():
    """FASTNN_BACKEND=numba without Numba: a clear error at first use, not a crash later."""
    code = (
        BLOCK_NUMBA
        + """
import fastnn
try:
    fastnn.get_ops()
except ValueError as exc:
    print("ERROR", exc)
"""
    )
    proc = run_python(code, {ENV_VAR: "numba"})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("ERROR") and "pip install" in proc.stdout


# -- validation at the edge -----------------------------------------------------------

EDGE_BACKENDS = [*fastnn.available_backends(), "auto"]


@pytest.fixture(params=EDGE_BACKENDS)
def ops(request):
    return fastnn.get_ops(request.param)


def layer(n=2, n_in=3, n_out=4, dtype=np.float64):
    return np.ones((n, n_in), dtype), np.ones((n_in, n_out), dtype), np.zeros(n_out, dtype)


def test_dense_forward_validation(ops):
    X, W, b = layer()
    with pytest.raises(ValueError, match=r"X has 3 features .* W expects 5"):
        ops.dense_forward(X, np.ones((5, 4)), b, "relu")
    with pytest.raises(ValueError, match=r"b has shape \(3,\)"):
        ops.dense_forward(X, W, np.zeros(3), "relu")
    with pytest.raises(TypeError, match="W has dtype float32 but the other arrays are float64"):
        ops.dense_forward(X, W.astype(np.float32), b, "relu")
    with pytest.raises(TypeError, match="X must be float32 or float64, got dtype int64"):
        ops.dense_forward(X.astype(np.int64), W, b, "relu")
    with pytest.raises(TypeError, match="float16"):
        ops.dense_forward(X.astype(np.float16), W, b, "relu")
    with pytest.raises(ValueError, match="X must be 2-D, got 1-D"):
        ops.dense_forward(X[0], W, b, "relu")
    with pytest.raises(ValueError, match="b must be 1-D, got 2-D"):
        ops.dense_forward(X, W, b[None, :], "relu")
    with pytest.raises(TypeError, match="numpy.ndarray, got list"):
        ops.dense_forward(X.tolist(), W, b, "relu")


def test_unknown_activation_lists_choices(ops):
    X, W, b = layer()
    for call in (
        lambda: ops.dense_forward(X, W, b, "swish"),
        lambda: ops.dense_backward(np.ones((2, 4)), X, W, np.ones((2, 4)), np.ones((2, 4)), "ReLU"),
    ):
        with pytest.raises(ValueError, match="unknown activation") as info:
            call()
        for name in ACTIVATIONS:
            assert repr(name) in str(info.value)


def test_dense_backward_validation(ops):
    X, W, _ = layer()
    G = np.ones((2, 4))
    with pytest.raises(ValueError, match=r"dY must have shape \(2, 4\), got \(2, 3\)"):
        ops.dense_backward(np.ones((2, 3)), X, W, G, G, "linear")
    with pytest.raises(ValueError, match=r"Z must have shape"):
        ops.dense_backward(G, X, W, G[:1], G, "linear")
    with pytest.raises(TypeError, match="Y has dtype float32"):
        ops.dense_backward(G, X, W, G, G.astype(np.float32), "linear")


def test_loss_validation(ops):
    Y = np.full((2, 3), 0.5)
    with pytest.raises(ValueError, match="unknown loss") as info:
        ops.loss("hinge", Y, Y)
    for name in LOSSES:
        assert repr(name) in str(info.value)
    with pytest.raises(ValueError, match=r"T has shape \(3, 2\) but Y has shape \(2, 3\)"):
        ops.loss("mse", Y, Y.T.copy())
    with pytest.raises(TypeError, match="T has dtype float32"):
        ops.loss("mse", Y, Y.astype(np.float32))
    with pytest.raises(ValueError, match="T must be 2-D"):
        ops.loss("mse", Y, Y[0])
    with pytest.raises(ValueError, match=r"T has shape \(2, 3\) but Z has shape \(2, 2\)"):
        ops.sigmoid_cross_entropy(Y[:, :2], Y)


def test_label_validation(ops):
    Z = np.zeros((3, 4))
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 4\).*found label 4"):
        ops.softmax_cross_entropy(Z, np.array([0, 4, 1]))
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 4\).*found label -1"):
        ops.softmax_cross_entropy(Z, np.array([0, -1, 1]))
    with pytest.raises(TypeError, match="labels must be integers, got dtype float64"):
        ops.softmax_cross_entropy(Z, np.array([0.0, 1.0, 2.0]))
    with pytest.raises(TypeError, match="labels must be integers, got dtype bool"):
        ops.softmax_cross_entropy(Z, np.array([True, False, True]))
    with pytest.raises(ValueError, match=r"labels must have shape \(3,\), got \(2,\)"):
        ops.softmax_cross_entropy(Z, np.array([0, 1]))
    with pytest.raises(ValueError, match=r"labels must have shape \(3,\), got \(3, 1\)"):
        ops.softmax_cross_entropy(Z, np.zeros((3, 1), np.int64))
    with pytest.raises(TypeError, match="labels must be a numpy.ndarray, got list"):
        ops.softmax_cross_entropy(Z, [0, 1, 2])


def test_empty_inputs_rejected(ops):
    """Zero-width layers and empty loss batches have no meaning: a clear error."""
    with pytest.raises(ValueError, match=r"W has shape \(3, 0\): a dense layer needs"):
        ops.dense_forward(np.ones((2, 3)), np.ones((3, 0)), np.zeros(0), "softmax")
    with pytest.raises(ValueError, match=r"W has shape \(0, 2\): a dense layer needs"):
        ops.dense_forward(np.ones((2, 0)), np.ones((0, 2)), np.zeros(2), "relu")
    empty = np.zeros((0, 2))
    with pytest.raises(ValueError, match=r"W has shape \(3, 0\)"):
        ops.dense_backward(empty[:, :0], np.ones((0, 3)), np.ones((3, 0)), *[empty[:, :0]] * 2,
                           "linear")  # fmt: skip
    for name in LOSSES:
        with pytest.raises(ValueError, match=r"Y has shape \(0, 2\): a loss needs at least"):
            ops.loss(name, empty, empty)
    with pytest.raises(ValueError, match=r"Z has shape \(0, 2\): a loss needs"):
        ops.softmax_cross_entropy(empty, np.zeros(0, np.int64))
    with pytest.raises(ValueError, match=r"Z has shape \(2, 0\): a loss needs"):
        ops.softmax_cross_entropy(np.zeros((2, 0)), np.zeros(2, np.int64))
    with pytest.raises(ValueError, match=r"Z has shape \(0, 2\): a loss needs"):
        ops.sigmoid_cross_entropy(empty, empty)


def test_update_validation(ops):
    param, grad, vel = np.zeros((4, 3)), np.ones((4, 3)), np.zeros((4, 3))
    with pytest.raises(ValueError, match="param must be C-contiguous to be updated in place"):
        ops.sgd_update(np.zeros((3, 4)).T, grad, vel, 0.1, 0.9)
    with pytest.raises(ValueError, match="velocity must be C-contiguous"):
        ops.sgd_update(param, grad, np.zeros((4, 6))[:, ::2], 0.1, 0.9)
    with pytest.raises(ValueError, match="m must be C-contiguous"):
        ops.adam_update(param, grad, np.zeros((3, 4)).T, np.zeros((4, 3)), 1, 0.1, 0.9, 0.99, 1e-7)
    readonly = np.zeros((4, 3))
    readonly.flags.writeable = False
    with pytest.raises(ValueError, match="param is read-only"):
        ops.sgd_update(readonly, grad, vel, 0.1, 0.9)
    with pytest.raises(ValueError, match=r"grad has shape \(3, 4\) but param has shape \(4, 3\)"):
        ops.sgd_update(param, grad.T.copy(), vel, 0.1, 0.9)
    with pytest.raises(TypeError, match="velocity has dtype float32"):
        ops.sgd_update(param, grad, vel.astype(np.float32), 0.1, 0.9)
    with pytest.raises(TypeError, match="param must be float32 or float64"):
        ops.sgd_update(param.astype(np.int64), grad, vel, 0.1, 0.9)
    with pytest.raises(ValueError, match="lr must be >= 0"):
        ops.sgd_update(param, grad, vel, -0.1, 0.9)
    with pytest.raises(ValueError, match="lr must be finite"):
        ops.sgd_update(param, grad, vel, float("nan"), 0.9)
    with pytest.raises(ValueError, match="step must be >= 1"):
        ops.adam_update(param, grad, vel, vel.copy(), 0, 0.1, 0.9, 0.99, 1e-7)
    with pytest.raises(TypeError, match="step must be an integer"):
        ops.adam_update(param, grad, vel, vel.copy(), 1.0, 0.1, 0.9, 0.99, 1e-7)
    with pytest.raises(ValueError, match="beta2 must be < 1"):
        ops.adam_update(param, grad, vel, vel.copy(), 1, 0.1, 0.9, 1.0, 1e-7)
    with pytest.raises(ValueError, match="eps must be > 0"):
        ops.adam_update(param, grad, vel, vel.copy(), 1, 0.1, 0.9, 0.99, 0.0)
    # Nothing was modified by the rejected calls.
    assert not param.any() and not vel.any()


def train_args(**overrides):
    rng = np.random.default_rng(0)
    Ws = [rng.standard_normal((3, 4)), rng.standard_normal((4, 2))]
    bs = [np.zeros(4), np.zeros(2)]
    params = [Ws[0], bs[0], Ws[1], bs[1]]
    args = dict(
        Ws=Ws, bs=bs, activations=("relu", "linear"), X=rng.standard_normal((5, 3)),
        T=np.array([0, 1, 1, 0, 1]), order=np.arange(5), batch_size=2,
        head="softmax_cross_entropy", optimizer="sgd",
        state=[(np.zeros_like(p),) for p in params], hyper=(0.1, 0.9), step=0,
    )  # fmt: skip
    args.update(overrides)
    return args


def test_train_batches_validation(ops):
    losses, correct = ops.train_batches(**train_args())
    assert losses.shape == correct.shape == (3,)
    cases = [
        (dict(head="hinge"), ValueError, "unknown head"),
        (dict(optimizer="adagrad"), ValueError, "unknown optimizer"),
        (dict(activations=("relu", "step")), ValueError, "activation of layer 1 'step'"),
        (dict(activations=("relu", "softmax")), ValueError, "takes logits"),
        (dict(activations=("relu",)), ValueError, "one entry per layer"),
        (dict(T=np.array([0, 1, 2, 0, 1])), ValueError, r"T must lie in \[0, 2\)"),
        (dict(T=np.zeros((5, 2))), ValueError, r"T must have shape \(5,\)"),
        (dict(head="mse", T=np.zeros((5, 3))), ValueError, r"T must have shape \(5, 2\)"),
        (dict(order=np.array([0, 5])), ValueError, r"order must hold row indices in \[0, 5\)"),
        (dict(order=np.arange(5.0)), ValueError, "order must be a 1-D integer array"),
        (dict(batch_size=0), ValueError, "batch_size must be >= 1"),
        (dict(step=-1), ValueError, "step must be >= 0"),
        (dict(hyper=(0.1,)), ValueError, r"hyper must hold the values \('lr', 'momentum'"),
        (dict(hyper=(0.1, 0.9, 0, 0, 1)), ValueError, "the last 2 may be omitted"),
        (dict(hyper=(0.1, 0.9, 2)), TypeError, "nesterov must be True or False"),
        (dict(hyper=(0.1, 1.5)), ValueError, "momentum must be <= 1"),
        (dict(hyper=(0.1, 0.9, 0, -1e-3)), ValueError, "weight_decay must be >= 0"),
        (dict(trainable=[True] * 3), ValueError, "expected 4, got 3"),
        (dict(penalties=[(0.1, 0.0)]), ValueError, r"penalties must have one entry per layer"),
        (dict(penalties=[(0.1, -1.0), None]), ValueError, r"penalties\[0\] l2 must be >= 0"),
        (dict(penalties=[0.1, None]), ValueError, r"penalties\[0\] must be an \(l1, l2\) pair"),
        (dict(dropout=[0.5, 0.5]), ValueError, "dropout of the last layer must be 0"),
        (dict(dropout=[1.0, None]), ValueError, r"dropout\[0\] must be < 1"),
        (dict(lrs=np.ones(2)), ValueError, r"lrs must be a real array of shape \(3,\)"),
        (dict(lrs=np.array([0.1, np.nan, 0.1])), ValueError, "lrs must be finite"),
        (dict(epoch_size=2), ValueError, "not a whole number of epochs"),
        (dict(sample_weight=np.ones(4)), ValueError, r"sample_weight must have shape \(5,\)"),
        (dict(sample_weight=-np.ones(5)), ValueError, r"sample_weight\[0\] is -1.0"),
        (dict(seed=1.5), TypeError, "seed must be an integer"),
        (dict(hyper=(-0.1, 0.9)), ValueError, "lr must be >= 0"),
        (dict(state=[]), ValueError, "one entry per parameter"),
        (dict(optimizer="adam", hyper=(0.1, 0.9, 0.99, 1e-7)), ValueError, "tuple of 2 arrays"),
        (dict(X=np.ones((5, 4))), ValueError, r"Ws\[0\] has shape \(3, 4\) but X has 4"),
        (dict(X=np.ones((5, 3), np.float32)), TypeError, r"Ws\[0\] has dtype float64"),
        (dict(bs=[np.zeros(4), np.zeros(3)]), ValueError, r"bs\[1\] must have shape \(2,\)"),
        (dict(Ws=[np.ones((3, 4)), np.ones((5, 2))]), ValueError, "layer 0 outputs 4 features"),
        (dict(Ws=np.ones((1, 3, 4))), TypeError, "Ws must be a list or tuple"),
    ]
    for override, error, pattern in cases:
        with pytest.raises(error, match=pattern):
            ops.train_batches(**train_args(**override))
    bad_state = train_args()
    bad_state["state"][1] = (np.zeros(5),)
    with pytest.raises(ValueError, match=r"velocity of bs\[0\]\) has shape \(5,\)"):
        ops.train_batches(**bad_state)
    fortran = train_args()
    fortran["Ws"][0] = np.asfortranarray(fortran["Ws"][0])
    with pytest.raises(ValueError, match=r"Ws\[0\] must be C-contiguous"):
        ops.train_batches(**fortran)
