"""Issue 11: everyday Keras 3 code runs on fastnn unchanged except for the import line,
callbacks and learning-rate schedules (fused), and the traps a new user hit.

The Keras snippets below are written against the name ``keras`` exactly as a Keras 3
user writes them; the only change is ``keras = fastnn`` (the import line).  Each runs
on every backend, selected around it with ``fastnn.use_backend`` (Keras code does not
name backends).  Expected values come from NumPy computations written here (forward
passes from ``get_weights()``, metric formulas, schedule formulas), never from the
code under test.
"""

from __future__ import annotations

import csv
import math
import os
import stat

import numpy as np
import pytest

import fastnn
import fastnn as keras  # the import line: everything below is Keras 3 code
import fastnn.model as model_module
from fastnn import datasets
from fastnn.callbacks import Callback
from fastnn.optimizers import schedules

BACKENDS = fastnn.available_backends()
RNG = np.random.default_rng(11)
X = RNG.normal(size=(48, 4)).astype(np.float32)
LABELS = (X[:, 0] - X[:, 1] > 0).astype(int) + (X[:, 2] > 0.5).astype(int)  # 3 classes
TOL = {np.float32: 1e-5, np.float64: 1e-12}


def numpy_forward(weights, x, activations):
    """Independent reference: the MLP's output from ``get_weights()`` in float64."""
    A = np.asarray(x, dtype=np.float64)
    for (W, b), act in zip(zip(weights[::2], weights[1::2]), activations):
        Z = A @ W.astype(np.float64) + b
        if act == "relu":
            A = np.maximum(Z, 0)
        elif act == "softmax":
            E = np.exp(Z - Z.max(axis=1, keepdims=True))
            A = E / E.sum(axis=1, keepdims=True)
        elif act == "sigmoid":
            A = 1 / (1 + np.exp(-Z))
        else:
            A = Z
    return A


def small_classifier():
    """The Keras way: Input first, names automatic."""
    model = keras.Sequential(
        [
            keras.Input(shape=(4,)),
            keras.layers.Dense(8, activation="relu"),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=0.01),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


# ----------------------------------------------------------------- everyday Keras code
@pytest.mark.parametrize("backend", BACKENDS)
def test_everyday_keras_snippets(backend, capsys):
    with fastnn.use_backend(backend):
        model = small_classifier()
        assert model.built  # Input fixes the shape: weights exist at once, as in Keras
        history = model.fit(X, LABELS, epochs=2, batch_size=16, verbose=False)
        assert capsys.readouterr().out == ""
        model.fit(X, LABELS, epochs=1, batch_size=16, verbose=True)
        assert "loss:" in capsys.readouterr().out
        probs = model.predict(X, verbose=0)
        assert capsys.readouterr().out == ""
        batched = model.predict(X, batch_size=5)
        called = model(X)
        result = model.evaluate(X, LABELS, return_dict=True, verbose=0)
        loss, acc = model.evaluate(X, LABELS, verbose=0)
    expected = numpy_forward(model.get_weights(), X, ["relu", "softmax"])
    np.testing.assert_allclose(probs, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(batched, probs, rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(called, probs)
    assert set(history.history) == {"loss", "accuracy"} and len(history.history["loss"]) == 2
    assert list(result) == ["loss", "accuracy"] and result == {"loss": loss, "accuracy": acc}
    hand_loss = -np.mean(np.log(np.clip(expected[np.arange(len(X)), LABELS], 1e-7, 1)))
    assert loss == pytest.approx(hand_loss, rel=1e-4)
    assert acc == pytest.approx(np.mean(np.argmax(expected, axis=1) == LABELS))


def test_dense_input_shape_names_layers_and_get_layer():
    first = keras.layers.Dense(64, input_shape=(784,))
    model = keras.Sequential([first, keras.layers.Dense(10, activation="softmax")])
    assert model.built and first.W.shape == (784, 64)
    names = [layer.name for layer in model.layers]
    assert len(set(names)) == 2 and all(n == "dense" or n.startswith("dense_") for n in names)
    # Keras numbering: one counter per prefix, the next layer takes the next number.
    a, b = keras.layers.Dense(1), keras.layers.Dense(1)
    assert int(b.name.split("_")[1]) == int(a.name.split("_")[1]) + 1
    assert model.get_layer(names[1]) is model.layers[1]
    assert model.get_layer(index=0) is first
    with pytest.raises(ValueError, match="no layer named 'nope'"):
        model.get_layer("nope")
    with pytest.raises(ValueError, match="already has a layer named 'x'"):
        keras.Sequential([keras.layers.Dense(2, name="x"), keras.layers.Dense(2, name="x")])
    with pytest.raises(ValueError, match="add fastnn.Flatten"):
        keras.Sequential([keras.Input(shape=(28, 28)), keras.layers.Dense(3)])


@pytest.mark.parametrize("backend", BACKENDS)
def test_flatten_takes_images_unflattened(backend):
    images = RNG.random((12, 5, 6))
    model = keras.Sequential(
        [keras.Input(shape=(5, 6)), keras.layers.Flatten(), keras.layers.Dense(3)],
        backend=backend,
        seed=0,
    )
    out = model.predict(images)
    expected = numpy_forward(model.get_weights(), images.reshape(12, 30), ["linear"])
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(model.predict(images.reshape(12, 30)), out)
    with pytest.raises(ValueError, match=r"samples of shape \(6, 5\), but the model expects"):
        model.predict(RNG.random((2, 6, 5)))


def test_get_config_from_config_and_weights_files(tmp_path):
    model = keras.Sequential(
        [keras.Input(shape=(4,)), keras.layers.Dense(5, activation="relu"), keras.layers.Dense(3)],
        seed=7,
    )
    config = model.get_config()
    assert [e["class_name"] for e in config["layers"]] == ["Dense", "Dense"]
    clone = keras.Sequential.from_config(config)
    assert clone.get_config() == config
    for A, B in zip(clone.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(A, B)  # same seed, same shapes: same initial weights
    model.set_weights([W + 1 for W in model.get_weights()])
    model.save_weights(tmp_path / "w.weights.npz")
    other = keras.Sequential.from_config(config)
    other.load_weights(tmp_path / "w.weights.npz")
    np.testing.assert_array_equal(other.predict(X), model.predict(X))
    wrong = keras.Sequential([keras.Input(shape=(4,)), keras.layers.Dense(6)])
    with pytest.raises(ValueError, match=r"'W_0' has shape \(4, 5\)"):
        wrong.load_weights(tmp_path / "w.weights.npz")


@pytest.mark.parametrize("backend", BACKENDS)
def test_metrics_reported_under_keras_names(backend):
    y = np.eye(3)[LABELS]
    model = keras.Sequential(
        [keras.Input(shape=(4,)), keras.layers.Dense(3, activation="softmax")], backend=backend
    )
    chosen = [
        "mae",
        "mse",
        "categorical_accuracy",
        keras.metrics.TopKCategoricalAccuracy(k=2),
        keras.metrics.BinaryAccuracy(),
    ]
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=chosen)
    history = model.fit(X, y, epochs=2, batch_size=16, verbose=0, validation_split=0.25)
    names = ["mae", "mse", "categorical_accuracy", "top_k_categorical_accuracy", "binary_accuracy"]
    assert list(history.history) == ["loss", *names, "val_loss", *(f"val_{n}" for n in names)]
    result = model.evaluate(X, y, return_dict=True)
    P = numpy_forward(model.get_weights(), X, ["softmax"])
    rank = np.sum(P > P[np.arange(len(P)), LABELS][:, None], axis=1)
    hand = {
        "mae": np.mean(np.abs(P - y)),
        "mse": np.mean((P - y) ** 2),
        "categorical_accuracy": np.mean(np.argmax(P, axis=1) == LABELS),
        "top_k_categorical_accuracy": np.mean(rank < 2),
        "binary_accuracy": np.mean((P > 0.5) == (y > 0.5)),
    }
    for name, value in hand.items():
        assert result[name] == pytest.approx(value, abs=1e-5), name
    # Metrics not counted by the fused trainer: the epoch's last value is measured on
    # the training rows with the final weights (see fastnn.metrics).
    P_train = numpy_forward(model.get_weights(), X[:36], ["softmax"])
    assert history.history["mae"][-1] == pytest.approx(np.mean(np.abs(P_train - y[:36])), abs=1e-5)
    assert keras.metrics.MeanAbsoluteError()(y, P) == pytest.approx(hand["mae"])


# ------------------------------------------------------------- Keras Fashion-MNIST script
def keras_fashion_mnist_script(workdir, n_train, hidden, epochs):
    """A typical Keras 3 tutorial script (only the data sizes are cut for test speed)."""
    keras.utils.set_random_seed(0)
    (x_train, y_train), (x_test, y_test) = keras.datasets.fashion_mnist.load_data()
    x_train, y_train = x_train[:n_train], y_train[:n_train]  # test speed
    x_test, y_test = x_test[:500], y_test[:500]  # test speed
    x_train = x_train.astype("float32") / 255.0
    x_test = x_test.astype("float32") / 255.0

    model = keras.Sequential(
        [
            keras.Input(shape=(28, 28)),
            keras.layers.Flatten(),
            keras.layers.Dense(hidden, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=3e-3),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    callbacks = [
        keras.callbacks.ModelCheckpoint(
            os.path.join(workdir, "best.npz"), monitor="val_loss", save_best_only=True
        ),
        keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=1, min_lr=1e-5),
        keras.callbacks.EarlyStopping(monitor="val_loss", patience=3, restore_best_weights=True),
    ]
    history = model.fit(
        x_train,
        y_train,
        epochs=epochs,
        batch_size=32,
        validation_split=0.1,
        callbacks=callbacks,
        verbose=0,
    )
    test_loss, test_acc = model.evaluate(x_test, y_test, verbose=0)
    probs = model.predict(x_test, verbose=0)
    return model, history, test_acc, probs, y_test


@pytest.mark.parametrize("backend", BACKENDS)
def test_keras_fashion_mnist_script(backend, tmp_path):
    try:
        datasets.locate_fashion_mnist()
    except datasets.DatasetNotFoundError:
        pytest.skip("Fashion-MNIST is not installed (apt install dataset-fashion-mnist)")
    # The python backend is the loop-by-loop reference: a tiny net on few rows.
    n_train, hidden = (300, 8) if backend == "python" else (2000, 32)
    with fastnn.use_backend(backend):
        model, history, test_acc, probs, y_test = keras_fashion_mnist_script(
            str(tmp_path), n_train, hidden, epochs=3
        )
    assert probs.shape == (500, 10)
    np.testing.assert_allclose(probs.sum(axis=1), 1, rtol=1e-5)
    assert test_acc == pytest.approx(np.mean(np.argmax(probs, axis=1) == y_test))
    assert test_acc > (0.2 if backend == "python" else 0.65)  # chance is 0.1; tiny python net
    assert history.history["learning_rate"][0] == pytest.approx(3e-3)
    saved = fastnn.load_model(tmp_path / "best.npz")
    best = int(np.argmin(history.history["val_loss"]))
    # The checkpoint holds the best epoch's weights, which EarlyStopping restored too.
    for A, B in zip(saved.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(A, B)
    assert history.history["val_loss"][best] == min(history.history["val_loss"])


# ------------------------------------------------------------------------- callbacks
def test_model_checkpoint_save_best_only_and_epoch_names(tmp_path):
    model = small_classifier()
    saved = []

    class Spy(Callback):  # runs after ModelCheckpoint: which files exist now?
        def on_epoch_end(self, epoch, logs=None):
            saved.append(sorted(os.listdir(tmp_path)))

    ckpt = keras.callbacks.ModelCheckpoint(
        str(tmp_path / "m-{epoch:02d}.npz"), monitor="loss", save_best_only=True
    )
    model.fit(X, LABELS, epochs=4, batch_size=48, verbose=0, callbacks=[ckpt, Spy()])
    assert saved[0] == ["m-01.npz"] and saved[-1][-1] == "m-04.npz"  # the loss fell
    weights_only = keras.callbacks.ModelCheckpoint(
        str(tmp_path / "w.weights.npz"), save_weights_only=True, monitor="loss"
    )
    model.fit(X, LABELS, epochs=1, verbose=0, callbacks=[weights_only])
    other = small_classifier()
    other.load_weights(tmp_path / "w.weights.npz")
    np.testing.assert_array_equal(other.predict(X), model.predict(X))
    with pytest.raises(ValueError, match="not Keras .keras files"):
        keras.callbacks.ModelCheckpoint("best.keras")


def test_model_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    model = small_classifier()
    path = tmp_path / "ckpt.npz"
    ckpt = keras.callbacks.ModelCheckpoint(str(path), monitor="loss")
    model.fit(X, LABELS, epochs=1, verbose=0, callbacks=[ckpt])
    before = path.read_bytes()
    real_savez = np.savez

    def crash(f, **arrays):
        real_savez(f, **{k: v for k, v in list(arrays.items())[:1]})  # half a file
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", crash)
    with pytest.raises(OSError, match="disk full"):
        model.fit(X, LABELS, epochs=1, verbose=0, callbacks=[ckpt])
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["ckpt.npz"]
    fastnn.load_model(path)  # still a complete model file


class FakeOptimizer:
    def __init__(self, lr):
        self.learning_rate = lr
        self.schedule = None


class FakeModel:
    def __init__(self, lr):
        self.optimizer = FakeOptimizer(lr)
        self.stop_training = False


def test_reduce_lr_on_plateau_follows_keras_rule():
    """Hand-traced Keras semantics: patience 2, factor 0.5, cooldown 1, min_lr 0.2."""
    cb = keras.callbacks.ReduceLROnPlateau(
        monitor="val_loss", factor=0.5, patience=2, cooldown=1, min_lr=0.2, min_delta=0
    )
    cb.set_model(FakeModel(1.0))
    cb.on_train_begin()
    losses = [1.0, 1.0, 1.0, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9]
    lrs = []
    for epoch, v in enumerate(losses):
        logs = {"val_loss": v}
        cb.on_epoch_end(epoch, logs)
        lrs.append(cb.model.optimizer.learning_rate)
        assert logs["learning_rate"] == (lrs[-2] if epoch else 1.0)
    # Keras: a cooldown epoch first counts the cooldown down, then (if it reached 0)
    # counts the epoch as waiting.  Epoch 0 best; 1, 2 wait -> 0.5 at 2; 3 cooldown ends
    # and 0.9 improves; 4, 5 wait -> 0.25 at 5; 6 (cooldown ends), 7 wait -> 0.2 at 7
    # (0.125 clipped to min_lr); 8, 9 wait, but the rate is already min_lr.
    assert lrs == [1.0, 1.0, 0.5, 0.5, 0.5, 0.25, 0.25, 0.2, 0.2, 0.2]


@pytest.mark.parametrize("backend", BACKENDS)
def test_learning_rate_scheduler_equals_manual_epochs(backend):
    """LearningRateScheduler halving the rate each epoch = one fit per epoch with SGD(lr)."""

    def make():
        model = keras.Sequential(
            [keras.Input(shape=(4,)), keras.layers.Dense(3, activation="softmax")],
            backend=backend,
            seed=3,
        )
        model.compile(keras.optimizers.SGD(0.4), "sparse_categorical_crossentropy")
        return model

    model = make()
    cb = keras.callbacks.LearningRateScheduler(lambda epoch, lr: lr * 0.5 if epoch else lr)
    history = model.fit(
        X, LABELS, epochs=3, batch_size=16, shuffle=False, verbose=0, callbacks=[cb]
    )
    assert history.history["learning_rate"] == [0.4, 0.2, 0.1]
    ref = make()
    for lr in (0.4, 0.2, 0.1):
        ref.optimizer.learning_rate = lr
        ref.fit(X, LABELS, epochs=1, batch_size=16, shuffle=False, verbose=0)
    for A, B in zip(model.get_weights(), ref.get_weights()):
        np.testing.assert_array_equal(A, B)


def test_csv_logger_and_lambda_callback(tmp_path):
    path = tmp_path / "log.csv"
    seen = []
    lam = keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: seen.append(epoch))
    model = small_classifier()
    history = model.fit(
        X, LABELS, epochs=2, verbose=0, callbacks=[keras.callbacks.CSVLogger(str(path)), lam]
    )
    model.fit(
        X, LABELS, epochs=1, verbose=0, callbacks=[keras.callbacks.CSVLogger(path, append=True)]
    )
    rows = list(csv.reader(path.open()))
    assert rows[0] == ["epoch", "accuracy", "loss"]  # Keras: sorted keys
    assert [r[0] for r in rows[1:]] == ["0", "1", "0"]
    assert float(rows[2][2]) == pytest.approx(history.history["loss"][1])
    assert seen == [0, 1]


@pytest.mark.parametrize("backend", BACKENDS)
def test_batch_hooks_run_per_batch_with_the_same_numbers(backend, monkeypatch):
    """A callback with batch hooks gets every batch (per-batch stepping); the weights
    equal those of the fused run."""
    monkeypatch.setattr(model_module, "CHUNK_ROWS", 1 << 20)  # fused: one call per epoch
    calls = []

    class Batches(Callback):
        def on_train_batch_begin(self, batch, logs=None):
            calls.append(("begin", batch))

        def on_train_batch_end(self, batch, logs=None):
            calls.append(("end", batch, logs["loss"]))

    lam_batches = []
    lam = keras.callbacks.LambdaCallback(on_batch_end=lambda b, logs: lam_batches.append(b))
    hooked, fused = small_classifier(), small_classifier()
    fused.set_weights(hooked.get_weights())
    with fastnn.use_backend(backend):
        hooked.fit(
            X, LABELS, epochs=2, batch_size=10, seed=1, verbose=0, callbacks=[Batches(), lam]
        )
        fused.fit(X, LABELS, epochs=2, batch_size=10, seed=1, verbose=0)
    assert [c[:2] for c in calls] == [
        (k, b) for _ in range(2) for b in range(5) for k in ("begin", "end")
    ]
    assert lam_batches == list(range(5)) * 2
    for A, B in zip(hooked.get_weights(), fused.get_weights()):
        np.testing.assert_array_equal(A, B)


def test_terminate_on_nan_and_unsupported_hooks_are_not_silent():
    model = keras.Sequential(
        [keras.layers.Dense(16, activation="relu"), keras.layers.Dense(3, activation="softmax")],
        backend="numpy",
        seed=1,
    )
    model.compile(keras.optimizers.SGD(1e5), "sparse_categorical_crossentropy")
    model.stop_on_nonfinite = False
    big = 1e3 * RNG.normal(size=(64, 5))
    with pytest.warns(RuntimeWarning, match="loss became non-finite"):
        history = model.fit(
            big, RNG.integers(0, 3, 64), epochs=20, batch_size=4, verbose=0,
            callbacks=[keras.callbacks.TerminateOnNaN()],
        )  # fmt: skip
    assert len(history.history["loss"]) < 20 and history.stopped_on_nonfinite

    class TestHooks(Callback):
        def on_test_batch_end(self, batch, logs=None):
            pass

    with pytest.warns(RuntimeWarning, match="on_test_batch_end, which fastnn never calls"):
        small_classifier().fit(X, LABELS, epochs=1, verbose=0, callbacks=[TestHooks()])


# ------------------------------------------------------------------------- schedules
def test_schedule_formulas_match_keras_definitions():
    steps = np.array([0, 1, 5, 10, 25, 100])
    exp = schedules.ExponentialDecay(0.1, decay_steps=10, decay_rate=0.5)
    stair = schedules.ExponentialDecay(0.1, decay_steps=10, decay_rate=0.5, staircase=True)
    inv = schedules.InverseTimeDecay(0.1, decay_steps=10, decay_rate=2.0)
    cos = schedules.CosineDecay(0.1, decay_steps=50, alpha=0.1)
    pw = schedules.PiecewiseConstantDecay([5, 25], [1.0, 0.5, 0.1])
    warm = schedules.CosineDecay(0.0, decay_steps=50, warmup_target=0.2, warmup_steps=10)
    for t in steps:
        assert exp(t) == pytest.approx(0.1 * 0.5 ** (t / 10))
        assert stair(t) == pytest.approx(0.1 * 0.5 ** math.floor(t / 10))
        assert inv(t) == pytest.approx(0.1 / (1 + 2.0 * t / 10))
        c = 0.5 * (1 + math.cos(math.pi * min(t, 50) / 50))
        assert cos(t) == pytest.approx(0.1 * (0.9 * c + 0.1))
        assert pw(t) == (1.0 if t <= 5 else 0.5 if t <= 25 else 0.1)
        ramp = (
            0.2 * t / 10 if t < 10 else 0.2 * 0.5 * (1 + math.cos(math.pi * min(t - 10, 50) / 50))
        )
        assert warm(t) == pytest.approx(ramp)
    np.testing.assert_allclose(exp(steps), [exp(int(t)) for t in steps])


def manual_schedule_run(schedule, backend, dtype, batch_size, epochs):
    """Reference: one ``train_batches`` call per batch with the constant rate
    ``schedule(t - 1)`` for update ``t`` (Keras' step indexing)."""
    model = scheduled_model(schedules.ExponentialDecay(1.0, 1, 1.0), backend, dtype)
    ops = fastnn.get_ops(backend)
    Ws, bs = [layer.W for layer in model.layers], [layer.b for layer in model.layers]
    state = [(np.zeros_like(P),) for layer in model.layers for P in (layer.W, layer.b)]
    t = 0
    for _ in range(epochs):
        for start in range(0, len(X), batch_size):
            rows = np.arange(start, min(start + batch_size, len(X)), dtype=np.int64)
            hyper = (float(schedule(t)), 0.9)
            ops.train_batches(
                Ws, bs, ["tanh", "linear"], X.astype(dtype), LABELS, rows, batch_size,
                "softmax_cross_entropy", "sgd", state, hyper, t,
            )  # fmt: skip
            t += 1
    return [A.copy() for layer in model.layers for A in (layer.W, layer.b)]


def scheduled_model(lr, backend, dtype):
    model = keras.Sequential(
        [keras.Input(shape=(4,)), keras.layers.Dense(5, activation="tanh"),
         keras.layers.Dense(3, activation="softmax")],
        backend=backend, seed=5, dtype=dtype,
    )  # fmt: skip
    model.compile(
        keras.optimizers.SGD(learning_rate=lr, momentum=0.9), "sparse_categorical_crossentropy"
    )
    return model


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_schedules_are_per_step_inside_fused_training(backend, dtype):
    """fit with a schedule (whole epochs per call, rates passed as ``lrs=``) = per-batch
    calls at the scheduled rates."""
    schedule = schedules.PiecewiseConstantDecay([3, 7], [0.3, 0.1, 0.02])
    expo = schedules.ExponentialDecay(0.3, decay_steps=4, decay_rate=0.5)
    for sched in (schedule, expo):
        model = scheduled_model(sched, backend, dtype)
        model.fit(X, LABELS, epochs=3, batch_size=12, shuffle=False, verbose=0)
        assert model.optimizer.iterations == 12
        ref = manual_schedule_run(sched, backend, dtype, 12, 3)
        for A, B in zip(model.get_weights(), ref):
            np.testing.assert_allclose(A, B, rtol=TOL[dtype], atol=TOL[dtype])


def test_schedule_survives_save_and_load(tmp_path):
    model = scheduled_model(schedules.CosineDecay(0.1, decay_steps=20), "numpy", np.float64)
    model.fit(X, LABELS, epochs=1, batch_size=12, verbose=0)
    model.save(tmp_path / "m.npz")
    loaded = fastnn.load_model(tmp_path / "m.npz")
    assert loaded.optimizer.learning_rate.get_config() == model.optimizer.learning_rate.get_config()
    assert loaded.optimizer.current_learning_rate() == model.optimizer.current_learning_rate()


# ----------------------------------------------------------------------------- traps
def test_unscaled_integer_inputs_warn_once():
    pixels = RNG.integers(0, 256, size=(48, 4)).astype(np.uint8)
    model = small_classifier()
    with pytest.warns(model_module.InputScaleWarning, match=r"x / 255\.0"):
        model.fit(pixels, LABELS, epochs=1, verbose=0)
    with _no_warning(model_module.InputScaleWarning):
        model.fit(pixels, LABELS, epochs=1, verbose=0)  # once per model
        small_classifier().fit(pixels / 255.0, LABELS, epochs=1, verbose=0)
        small_classifier().fit(X, LABELS, epochs=1, verbose=0)
    with pytest.warns(model_module.InputScaleWarning, match="standardize"):
        small_classifier().fit(X * 1e5, LABELS, epochs=1, verbose=0)
    counts = RNG.integers(0, 5, size=(48, 4))  # small integers: no pixel advice
    with pytest.warns(model_module.InputScaleWarning, match="standardize") as record:
        small_classifier().fit(counts, LABELS, epochs=1, verbose=0)
    assert "255" not in str(record[0].message)


class _no_warning:
    def __init__(self, category):
        self.category = category

    def __enter__(self):
        import warnings

        self._cm = warnings.catch_warnings(record=True)
        self.records = self._cm.__enter__()
        warnings.simplefilter("always")

    def __exit__(self, *exc):
        self._cm.__exit__(*exc)
        bad = [r for r in self.records if issubclass(r.category, self.category)]
        assert not bad, [str(r.message) for r in bad]


def test_fashion_mnist_loader_layouts_and_default():
    try:
        (xf, yf), (xt, _) = datasets.load_fashion_mnist()
    except datasets.DatasetNotFoundError:
        pytest.skip("Fashion-MNIST is not installed")
    (xr, yr), (xrt, yrt) = datasets.load_fashion_mnist(flatten=False, scale=False, dtype="uint8")
    (xk, yk), _ = keras.datasets.fashion_mnist.load_data()
    assert xf.shape == (60000, 784) and xf.dtype == np.float32 and xf.max() == 1.0
    assert xr.shape == (60000, 28, 28) and xr.dtype == np.uint8 and xr.max() == 255
    assert xk.dtype == np.uint8 and xk.shape == (60000, 28, 28) and yk.dtype == np.uint8
    np.testing.assert_array_equal(xk, xr)
    np.testing.assert_array_equal(xf, (xr.reshape(60000, 784) / np.float32(255)))
    doc = datasets.load_fashion_mnist.__doc__
    assert "ALREADY SCALED to [0, 1]" in doc and "do not divide by" in doc
    readme = open(os.path.join(os.path.dirname(__file__), "..", "README.md")).read()
    assert "already scaled to [0, 1]: do not divide by 255 again" in " ".join(readme.split())


def test_python_backend_warns_once_on_large_work(monkeypatch):
    monkeypatch.setattr(model_module, "_slow_warned", False)
    monkeypatch.setattr(model_module, "SLOW_SECONDS", 1e-6)  # any work counts as large
    model = small_classifier()
    with _no_warning(model_module.SlowBackendWarning):
        model.fit(X, LABELS, epochs=1, verbose=0)  # not the python backend
    model.backend = "python"
    with pytest.warns(
        model_module.SlowBackendWarning, match="readable loop-by-loop reference"
    ) as rec:
        model.fit(X, LABELS, epochs=1, verbose=0)
        model.predict(X)
    assert len([r for r in rec if r.category is model_module.SlowBackendWarning]) == 1


def test_save_suffix_mode_and_errors(tmp_path):
    model = small_classifier()
    old = os.umask(0o027)
    try:
        model.save(tmp_path / "m")
    finally:
        os.umask(old)
    assert os.listdir(tmp_path) == ["m.npz"]
    assert stat.S_IMODE(os.stat(tmp_path / "m.npz").st_mode) == 0o640
    np.testing.assert_array_equal(fastnn.load_model(tmp_path / "m").predict(X), model.predict(X))
    for bad in ("m.keras", "m.h5", "m.weights.h5"):
        with pytest.raises(ValueError, match=r"not Keras .* files; use a path ending in \.npz"):
            model.save(tmp_path / bad)
    with pytest.raises(ValueError, match="model.weights.npz"):
        model.save_weights(tmp_path / "x.weights.h5")
    missing = tmp_path / "no" / "such" / "m.npz"
    with pytest.raises(FileNotFoundError, match=f"cannot save to '{missing}'"):
        model.save(missing)
    assert os.listdir(tmp_path) == ["m.npz"]


def test_version_1_files_still_load(tmp_path):
    import json

    model = small_classifier()
    model.save(tmp_path / "v2.npz")
    with np.load(tmp_path / "v2.npz") as data:
        arrays = dict(data)
    meta = json.loads(arrays["fastnn_model"].tobytes())
    meta["format_version"] = 1
    meta["config"]["layers"] = [{k: v for k, v in e["config"].items() if k != "name"}
                                for e in meta["config"]["layers"]]  # fmt: skip
    del meta["config"]["input_shape"]
    arrays["fastnn_model"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    np.savez(tmp_path / "v1.npz", **arrays)
    np.testing.assert_array_equal(
        fastnn.load_model(tmp_path / "v1.npz").predict(X), model.predict(X)
    )


def test_small_traps(capsys):
    with fastnn.use_backend("numpy"):
        keras.Sequential([keras.layers.Dense(2, input_dim=3)]).summary()
    assert "backend: numpy, the current backend" in capsys.readouterr().out
    model = small_classifier()
    model.evaluate(X, LABELS, verbose=1, batch_size=10)
    assert capsys.readouterr().out.startswith("5/5 - loss: ")  # steps, not samples
    from fastnn.tools import examples

    examples.xor(backend="numpy", epochs=1, verbose=True)
    out = capsys.readouterr().out
    assert "1 epoch," in out and "1 epochs" not in out


def test_history_plot_has_integer_epoch_ticks():
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    model = small_classifier()
    history = model.fit(X, LABELS, epochs=3, verbose=0)
    ax = history.plot()
    ticks = [t for t in ax.get_xticks() if 1 <= t <= 3]
    assert ticks and all(float(t).is_integer() for t in ticks)


def test_cli_train_prints_the_header_before_the_warm_up(monkeypatch, capsys):
    try:
        datasets.locate_fashion_mnist()
    except datasets.DatasetNotFoundError:
        pytest.skip("Fashion-MNIST is not installed")
    from fastnn.tools import cli, examples

    seen = {}
    real = examples._warm_up

    def spy(*args):
        seen["before_warm_up"] = capsys.readouterr().out
        return real(*args)

    monkeypatch.setattr(examples, "_warm_up", spy)
    argv = ["train", "--backend", "python", "--limit", "40", "--epochs", "1", "--hidden", "2"]
    assert cli.main(argv) == 0
    assert "Fashion-MNIST MLP 784-2-10" in seen["before_warm_up"]
    assert "40 training images, 40 test images" in seen["before_warm_up"]
    assert "1 epoch," in seen["before_warm_up"]
