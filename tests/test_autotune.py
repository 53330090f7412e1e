"""The ``auto`` backend: measured per-op choices, cached on disk per machine."""

from __future__ import annotations

import json

import numpy as np
import pytest

import fastnn
from fastnn import dispatch
from fastnn.dispatch import autotune


@pytest.fixture
def table(tmp_path, monkeypatch):
    """A fresh, empty choice table in a private cache directory."""
    monkeypatch.setenv("FASTNN_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("FASTNN_AUTOTUNE", "1")
    t = autotune.Table(tmp_path / "choices.json")
    return t


def _auto(table):
    return autotune.AutoOps("auto", dispatch.load_backend(dispatch.resolve_auto_backend()), table)


def test_bucket_rounds_up_to_powers_of_two():
    assert [autotune._bucket(n) for n in (0, 1, 2, 3, 4, 5, 255, 256, 257, 784)] == [
        1, 1, 2, 4, 4, 8, 256, 256, 512, 1024,
    ]  # fmt: skip


def test_shape_key_separates_op_dtype_shape_and_activation():
    X = np.zeros((256, 784), np.float32)
    W = np.zeros((784, 256), np.float32)
    b = np.zeros(256, np.float32)
    key = autotune.shape_key("dense_forward", (X, W, b, "relu"))
    assert key == "dense_forward|float32|256x1024x256|relu"
    key64 = autotune.shape_key("dense_forward", (X.astype(np.float64), W, b, "relu"))
    assert key64 != key
    assert autotune.shape_key("dense_forward", (X, W, b, "tanh")) != key


def test_choose_prefers_first_candidate_unless_clearly_slower():
    assert autotune.choose({"numba": 1.0, "numpy": 0.99}) == "numba"  # within noise margin
    assert autotune.choose({"numba": 1.0, "numpy": 0.5}) == "numpy"
    assert autotune.choose({"numba": 0.5, "numpy": 1.0}) == "numba"


def test_auto_uses_and_persists_the_measured_choice(table, monkeypatch):
    if len([c for c in autotune.CANDIDATES if dispatch.load_backend(c) is not None]) < 2:
        pytest.skip("auto has a single candidate here: nothing to choose between")
    # Pretend numpy measured 10x faster: auto must then route the op to numpy.
    monkeypatch.setattr(autotune, "measure", lambda op, args, c: {"numba": 1.0, "numpy": 0.1})
    ops = _auto(table)
    rng = np.random.default_rng(0)
    X, W, b = rng.normal(size=(8, 5)), rng.normal(size=(5, 3)), rng.normal(size=3)
    assert ops._impl_for("dense_forward", X, W, b, "relu").name == "numpy"
    saved = json.loads(table.path.read_text())
    (key,) = saved["entries"]
    assert saved["entries"][key]["backend"] == "numpy"
    # A new process (a new table on the same file) reuses the choice without measuring.
    monkeypatch.setattr(autotune, "measure", lambda *a: pytest.fail("measured again"))
    again = _auto(autotune.Table(table.path))
    assert again._impl_for("dense_forward", X, W, b, "relu").name == "numpy"


def test_auto_measures_real_backends_and_agrees_with_reference(table):
    ops = _auto(table)
    ref = fastnn.get_ops("python")
    rng = np.random.default_rng(1)
    X, W, b = rng.normal(size=(6, 4)), rng.normal(size=(4, 3)), rng.normal(size=3)
    for activation in ("relu", "sigmoid", "softmax"):
        Z, Y = ops.dense_forward(X, W, b, activation)
        Zr, Yr = ref.dense_forward(X, W, b, activation)
        # float64, tiny reductions: agreement to rounding error
        np.testing.assert_allclose(Y, Yr, rtol=1e-12, atol=1e-14)
    # In-place ops are timed on copies: the caller's arrays change exactly once.
    param, grad, vel = rng.normal(size=10), rng.normal(size=10), np.zeros(10)
    expected = param - 0.1 * grad
    ops.sgd_update(param, grad, vel, 0.1, 0.0)
    np.testing.assert_allclose(param, expected, rtol=1e-15)


def test_describe_lists_cached_choices(table, monkeypatch):
    monkeypatch.setattr(autotune, "_table", table)
    table.put("dense_forward|float32|256x1024x256|relu", "numba", {"numba": 1e-4, "numpy": 2e-4})
    text = autotune.describe()
    assert "dense_forward|float32|256x1024x256|relu" in text
    assert "numba=100.0us" in text and "numpy=200.0us" in text


def test_corrupt_cache_file_is_ignored_not_fatal(table):
    table.path.write_text("{not json")
    assert table.get("anything") is None
    table.put("k", "numpy", {"numpy": 1.0})
    assert json.loads(table.path.read_text())["entries"]["k"]["backend"] == "numpy"


def test_autotune_off_uses_default_backend(table, monkeypatch):
    monkeypatch.setenv("FASTNN_AUTOTUNE", "0")
    monkeypatch.setattr(autotune, "measure", lambda *a: pytest.fail("measured while disabled"))
    ops = _auto(table)
    X = np.ones((2, 2))
    assert ops._impl_for("dense_forward", X, X, np.ones(2), "linear") is ops.impl


def test_get_ops_auto_is_autoops():
    assert isinstance(fastnn.get_ops("auto"), autotune.AutoOps)


def _calls():
    """Calls of every op over a few dtypes, shapes and names (arguments only)."""
    rng = np.random.default_rng(0)
    calls = []
    for dt in (np.float32, np.float64):
        for n, n_in, n_out in ((1, 3, 4), (5, 3, 4), (5, 6, 4), (5, 3, 9), (300, 3, 4)):
            X = rng.random((n, n_in)).astype(dt)
            W = rng.random((n_in, n_out)).astype(dt)
            b = np.zeros(n_out, dt)
            Z = rng.random((n, n_out)).astype(dt)
            labels = np.zeros(n, np.int64)
            for act in ("relu", "sigmoid"):
                calls.append(("dense_forward", (X, W, b, act)))
                calls.append(("dense_backward", (Z, X, W, Z, Z, act)))
            for name in ("mse", "binary_crossentropy"):
                calls.append(("loss", (name, Z, Z)))
            calls.append(("softmax_cross_entropy", (Z, labels)))
            calls.append(("sigmoid_cross_entropy", (Z, Z)))
            calls.append(("sgd_update", (W, W, W, dt(0.1), dt(0.9))))
            calls.append(("adam_update", (W, W, W, W, 3, dt(1e-3), dt(0.9), dt(0.999), dt(1e-7))))
    return calls


def test_memo_signature_never_merges_calls_of_different_shape_classes():
    """auto memoises its choice per exact call signature; two calls with the same
    signature must fall in the same measured shape class, or the memo would hand
    one of them the other's backend."""
    calls = _calls()
    for op_a, args_a in calls:
        for op_b, args_b in calls:
            if autotune._call_signature(op_a, args_a) == autotune._call_signature(op_b, args_b):
                assert autotune.shape_key(op_a, args_a) == autotune.shape_key(op_b, args_b)
