"""Same seed, same training trajectory on every backend.

Initial weights come from the seed alone, so every backend starts from identical
arrays; after N optimizer steps through ``Sequential.fit`` the weights must agree
with the python reference (the plain-loop backend).

Tolerances: float64 differs only by summation order and FMA contraction, a few
ulp (~1e-16 relative) per op; over N <= 200 steps of these small, well-conditioned
nets that grows to ~1e-13, so rtol 1e-10 / atol 1e-12 has a 1000x margin while a
real bug (wrong gradient, a step skipped, a float32 round trip at ~1e-7) fails it.
float32 carries ~6e-8 per op and training amplifies differences mildly over a
few dozen steps: rtol/atol 1e-4 covers that; a wrong step moves weights by ~lr*grad
~1e-2 and still fails.
"""

from __future__ import annotations

import numpy as np
import pytest

import fastnn
from fastnn import Dense, Sequential
from fastnn.optimizers import SGD, Adam

BACKENDS = fastnn.available_backends()
REFERENCE = "python"
TOL = {"float64": {"rtol": 1e-10, "atol": 1e-12}, "float32": {"rtol": 1e-4, "atol": 1e-4}}


def _data(n, d, k, loss, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    if loss == "sparse_categorical_crossentropy":
        y = rng.integers(0, k, n)
    elif loss == "categorical_crossentropy":
        y = np.eye(k)[rng.integers(0, k, n)]
    elif loss == "binary_crossentropy":
        y = rng.integers(0, 2, (n, k)).astype(float)
    else:
        y = rng.normal(size=(n, k))
    return X, y


#: (id, layer specs, loss, optimizer factory, rows, batch size, epochs) -- small enough
#: for the python reference, with shuffling and a short last batch where it matters.
CASES = [
    ("xor-2-8-1-adam", [(8, "tanh"), (1, "sigmoid")], "binary_crossentropy",
     lambda: Adam(0.05), 4, 4, 200),
    ("3-layer-relu-softmax-sgd-momentum", [(6, "relu"), (5, "tanh"), (3, "softmax")],
     "sparse_categorical_crossentropy", lambda: SGD(0.1, momentum=0.9), 21, 8, 10),
    ("onehot-softmax-adam", [(4, "sigmoid"), (3, "softmax")], "categorical_crossentropy",
     lambda: Adam(0.01), 12, 5, 8),
    ("mse-linear-sgd", [(5, "tanh"), (2, "linear")], "mse", lambda: SGD(0.05), 16, 4, 10),
    ("10-15-5-sigmoid-mse", [(15, "sigmoid"), (5, "sigmoid")], "mse", lambda: SGD(0.1),
     10, 10, 100),
]  # fmt: skip


def _train(backend, dtype, layers, loss, make_opt, n, batch, epochs, verbose=0, d=3):
    X, y = _data(n, d, layers[-1][0], loss)
    model = Sequential(
        [Dense(u, activation=a) for u, a in layers], backend=backend, dtype=dtype, seed=11
    )
    model.compile(make_opt(), loss)
    history = model.fit(X, y, batch_size=batch, epochs=epochs, verbose=verbose, seed=5)
    return model, history


@pytest.fixture(scope="module")
def reference_runs():
    cache = {}

    def get(case_id, dtype):
        if (case_id, dtype) not in cache:
            _, layers, loss, make_opt, n, batch, epochs = next(c for c in CASES if c[0] == case_id)
            cache[case_id, dtype] = _train(
                REFERENCE, dtype, layers, loss, make_opt, n, batch, epochs
            )
        return cache[case_id, dtype]

    return get


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("backend", BACKENDS)
def test_same_seed_same_weights_on_every_backend(backend, case, dtype, reference_runs):
    case_id, layers, loss, make_opt, n, batch, epochs = case
    ref_model, ref_history = reference_runs(case_id, dtype)
    model, history = _train(backend, dtype, layers, loss, make_opt, n, batch, epochs)
    assert model.optimizer.iterations == ref_model.optimizer.iterations
    for A, B in zip(model.get_weights(), ref_model.get_weights()):
        assert A.dtype == np.dtype(dtype)
        np.testing.assert_allclose(A, B, **TOL[dtype], err_msg=f"{backend} vs {REFERENCE}")
    np.testing.assert_allclose(history.history["loss"], ref_history.history["loss"], **TOL[dtype])


@pytest.mark.parametrize("backend", [b for b in BACKENDS if b != REFERENCE] + ["auto"])
def test_hundreds_of_steps_float64(backend):
    """The issue's claim: float64, identical to ~1e-10 after hundreds of steps."""
    layers = [(8, "tanh"), (1, "sigmoid")]
    ref, _ = _train(
        REFERENCE, "float64", layers, "binary_crossentropy", lambda: SGD(0.5), 8, 2, 100
    )
    model, _ = _train(
        backend, "float64", layers, "binary_crossentropy", lambda: SGD(0.5), 8, 2, 100
    )
    assert model.optimizer.iterations == 400
    for A, B in zip(model.get_weights(), ref.get_weights()):
        np.testing.assert_allclose(A, B, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_epoch_fusion_and_chunking_do_not_change_the_trajectory(backend, monkeypatch):
    """verbose=0 trains several epochs per backend call, verbose=2 one epoch at a time,
    and a small CHUNK_ROWS splits epochs into several calls: all must be bit-identical,
    since each batch sees the same weights and rows either way."""
    import fastnn.model as model_module

    layers = [(6, "relu"), (3, "softmax")]
    args = ("float64", layers, "sparse_categorical_crossentropy", lambda: Adam(0.01), 16, 4, 6)
    fused, h1 = _train(backend, *args, verbose=0)
    per_epoch, h2 = _train(backend, *args, verbose=2)
    monkeypatch.setattr(model_module, "CHUNK_ROWS", 4)
    monkeypatch.setattr(model_module, "CHUNK_MACS", 0)
    chunked, h3 = _train(backend, *args, verbose=2)
    for A, B, C in zip(fused.get_weights(), per_epoch.get_weights(), chunked.get_weights()):
        np.testing.assert_array_equal(A, B)
        np.testing.assert_array_equal(A, C)
    # Epoch losses are sums of the same batch losses in another order: equal to rounding.
    for h in (h2, h3):
        assert h.history.keys() == h1.history.keys()
        np.testing.assert_allclose(h.history["loss"], h1.history["loss"], rtol=1e-14)


def test_shuffle_seed_controls_order():
    layers = [(4, "tanh"), (2, "softmax")]
    args = ("numpy", "float64", layers, "sparse_categorical_crossentropy", lambda: SGD(0.1))
    a, _ = _train(*args, 12, 3, 2)
    b, _ = _train(*args, 12, 3, 2)
    for A, B in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(A, B)
    X, y = _data(12, 3, 2, "sparse_categorical_crossentropy")
    c = Sequential([Dense(u, activation=act) for u, act in layers], dtype="float64", seed=11)
    c.compile(SGD(0.1), "sparse_categorical_crossentropy")
    c.fit(X, y, batch_size=3, epochs=2, seed=6, verbose=0)
    assert not np.array_equal(c.get_weights()[0], a.get_weights()[0])
