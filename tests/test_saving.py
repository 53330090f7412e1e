"""save/load_model: pickle-free round trips, atomic writes, and clear errors on bad files."""

from __future__ import annotations

import json
import os
import zipfile

import numpy as np
import pytest

import fastnn
from fastnn import Dense, Sequential, load_model
from fastnn.optimizers import SGD, Adam

BACKENDS = fastnn.available_backends()
RNG = np.random.default_rng(0)
X = RNG.normal(size=(40, 4))
LABELS = RNG.integers(0, 3, 40)


def trained(backend="numpy", dtype="float64", opt=None, use_bias=True):
    model = Sequential(
        [Dense(7, activation="relu"), Dense(3, activation="softmax", use_bias=use_bias)],
        backend=backend,
        dtype=dtype,
        seed=3,
    )
    model.compile(opt or Adam(0.01), "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(X, LABELS, batch_size=8, epochs=3, verbose=0, seed=1)
    return model


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_round_trip_predicts_bit_identically(backend, dtype, tmp_path):
    model = trained(backend, dtype)
    path = tmp_path / "model.npz"
    model.save(path)
    loaded = load_model(path, backend=backend)
    assert loaded.dtype == np.dtype(dtype) and loaded.seed == model.seed
    assert [layer.get_config() for layer in loaded.layers] == [
        layer.get_config() for layer in model.layers
    ]
    assert (loaded.loss, loaded.metrics) == (model.loss, model.metrics)
    assert loaded.optimizer.get_config() == model.optimizer.get_config()
    assert loaded.optimizer.iterations == model.optimizer.iterations == 15
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    assert loaded.evaluate(X, LABELS) == model.evaluate(X, LABELS)


@pytest.mark.parametrize("opt", [lambda: Adam(0.01), lambda: SGD(0.1, momentum=0.9)])
def test_loaded_model_continues_training_exactly(opt, tmp_path):
    """Optimizer state (Adam moments, momentum velocity, step count) is saved too, so
    continuing from the file equals continuing in memory, bit for bit."""
    model = trained(opt=opt())
    model.save(tmp_path / "m.npz")
    loaded = load_model(tmp_path / "m.npz", backend="numpy")
    model.fit(X, LABELS, batch_size=8, epochs=2, verbose=0, seed=9)
    loaded.fit(X, LABELS, batch_size=8, epochs=2, verbose=0, seed=9)
    for A, B in zip(loaded.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(A, B)


@pytest.mark.parametrize("backend", BACKENDS)
def test_loaded_model_continues_training_on_any_backend(backend, tmp_path):
    model = trained("numpy")
    model.save(tmp_path / "m.npz")
    loaded = load_model(tmp_path / "m.npz", backend=backend)
    model.fit(X, LABELS, batch_size=8, epochs=2, verbose=0, seed=9)
    loaded.fit(X, LABELS, batch_size=8, epochs=2, verbose=0, seed=9)
    # float64 across backends: summation order only (see test_trajectory).
    for A, B in zip(loaded.get_weights(), model.get_weights()):
        np.testing.assert_allclose(A, B, rtol=1e-10, atol=1e-12)


def test_uncompiled_and_bias_free_models(tmp_path):
    model = Sequential([Dense(2, use_bias=False, input_dim=3)], seed=0)
    model.save(tmp_path / "m.npz")
    loaded = load_model(tmp_path / "m.npz")
    assert loaded.optimizer is None and len(loaded.get_weights()) == 1
    np.testing.assert_array_equal(loaded.predict(X[:, :3]), model.predict(X[:, :3]))
    trained(use_bias=False).save(tmp_path / "nb.npz")
    assert not load_model(tmp_path / "nb.npz").layers[1].use_bias


def test_file_format_is_pickle_free_json_plus_arrays(tmp_path):
    trained().save(tmp_path / "m.npz")
    with np.load(tmp_path / "m.npz", allow_pickle=False) as data:
        names = set(data.files)
        meta = json.loads(data["fastnn_model"].tobytes().decode("utf-8"))
        assert all(data[k].dtype != object for k in data.files)
    assert {"W_0", "b_0", "W_1", "b_1", "opt_0_0", "opt_0_1"} <= names
    # Format version 2: Keras-style layer entries (issue 11).
    assert meta["format"] == "fastnn.Sequential" and meta["format_version"] == 2
    assert meta["config"]["layers"][1]["class_name"] == "Dense"
    assert meta["config"]["layers"][1]["config"]["activation"] == "softmax"


def test_unbuilt_model_cannot_be_saved(tmp_path):
    with pytest.raises(ValueError, match="not built"):
        Sequential([Dense(2)]).save(tmp_path / "m.npz")
    assert not (tmp_path / "m.npz").exists()


def test_save_is_atomic(tmp_path, monkeypatch):
    """A crash while writing leaves the previous file intact and no temporary files."""
    path = tmp_path / "m.npz"
    old = trained()
    old.save(path)
    original = path.read_bytes()

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", crash)
    with pytest.raises(OSError, match="disk full"):
        trained(opt=SGD(0.5)).save(path)
    assert path.read_bytes() == original
    assert os.listdir(tmp_path) == ["m.npz"]


# ---------------------------------------------------------------------------- bad files
@pytest.fixture
def saved(tmp_path):
    path = tmp_path / "good.npz"
    trained().save(path)
    return path


def _rewrite(src, dst, change):
    """Copy a saved model with ``change(arrays)`` applied to its arrays dict."""
    with np.load(src, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    change(arrays)
    np.savez(dst, **arrays)
    return dst


def _meta_change(**fields):
    def change(arrays):
        meta = json.loads(arrays["fastnn_model"].tobytes().decode())
        meta.update(fields)
        arrays["fastnn_model"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)

    return change


@pytest.mark.parametrize("fraction", [0.0, 0.1, 0.5, 0.9, 0.99])
def test_truncated_file(saved, tmp_path, fraction):
    data = saved.read_bytes()
    bad = tmp_path / "truncated.npz"
    bad.write_bytes(data[: int(len(data) * fraction)])
    with pytest.raises(ValueError, match="cannot load .*truncated.npz.* as a fastnn model"):
        load_model(bad)


def test_corrupt_member_data(saved, tmp_path):
    data = bytearray(saved.read_bytes())
    # Flip bytes inside the first stored array (past its local zip header): the zip
    # structure survives, the CRC check of that member fails.
    start = data.index(b"\x93NUMPY") + 200
    data[start : start + 16] = bytes(16)
    bad = tmp_path / "corrupt.npz"
    bad.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="truncated or corrupt|corrupt"):
        load_model(bad)


def test_random_bytes_and_text_files(tmp_path):
    noise = tmp_path / "noise.npz"
    noise.write_bytes(np.random.default_rng(0).bytes(1000))
    text = tmp_path / "model.json"
    text.write_text('{"layers": []}')
    for path in (noise, text):
        with pytest.raises(ValueError, match="not a NumPy .npz archive|not a readable"):
            load_model(path)


def test_foreign_npz_and_npy(tmp_path):
    np.savez(tmp_path / "other.npz", weights=np.zeros(3))
    with pytest.raises(ValueError, match="no 'fastnn_model' entry"):
        load_model(tmp_path / "other.npz")
    np.save(tmp_path / "single.npy", np.zeros(3))
    with pytest.raises(ValueError, match="single .npy array"):
        load_model(tmp_path / "single.npy")
    with zipfile.ZipFile(tmp_path / "plain.zip", "w") as zf:
        zf.writestr("readme.txt", "hello")
    with pytest.raises(ValueError, match="cannot load"):
        load_model(tmp_path / "plain.zip")


def test_object_arrays_are_refused(saved, tmp_path):
    bad = _rewrite(
        saved, tmp_path / "obj.npz", lambda a: a.update(W_0=np.array([{"x": 1}], dtype=object))
    )
    with pytest.raises(ValueError, match="'W_0' holds Python objects.*allow_pickle=False"):
        load_model(bad)


@pytest.mark.parametrize(
    "change, match",
    [
        (_meta_change(format_version=99), "format version 99, newer than"),
        (_meta_change(format="keras"), "not a fastnn model"),
        (_meta_change(config={"layers": []}), "lists no layers"),
        (lambda a: a.pop("W_1"), "'W_1' is missing"),
        (lambda a: a.update(W_1=np.zeros((7, 4))), r"'W_1' has shape \(7, 4\)"),
        (lambda a: a.update(W_1=a["W_1"].astype(np.float32)), "dtype float32, expected"),
        (lambda a: a.update(b_0=a["b_0"] * np.nan), "'b_0' holds NaN"),
        (lambda a: a.update(extra=np.zeros(2)), r"unexpected arrays: \['extra'\]"),
        (lambda a: a.update(opt_0_0=np.zeros(3)), "optimizer state 'opt_0_0'"),
        (
            lambda a: a.update(fastnn_model=np.frombuffer(b"{not json", dtype=np.uint8)),
            "architecture JSON is corrupt",
        ),
    ],
)
def test_inconsistent_files(saved, tmp_path, change, match):
    bad = _rewrite(saved, tmp_path / "bad.npz", change)
    with pytest.raises(ValueError, match=match):
        load_model(bad)


def test_layer_config_with_unknown_activation(saved, tmp_path):
    def change(arrays):
        meta = json.loads(arrays["fastnn_model"].tobytes().decode())
        # Keras-style layer entries since format version 2 (issue 11).
        meta["config"]["layers"][0]["config"]["activation"] = "swish"
        arrays["fastnn_model"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)

    with pytest.raises(ValueError, match="architecture is invalid.*unknown activation 'swish'"):
        load_model(_rewrite(saved, tmp_path / "bad.npz", change))


def test_missing_file():
    with pytest.raises(FileNotFoundError):
        load_model("/nonexistent/model.npz")
