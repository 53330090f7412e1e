"""History, EarlyStopping, Ctrl-C during fit, and divergence (non-finite loss)."""

from __future__ import annotations

import sys
import warnings

import numpy as np
import pytest

import fastnn
import fastnn.model as model_module
from fastnn import Dense, EarlyStopping, History, Sequential
from fastnn.callbacks import Callback
from fastnn.optimizers import SGD, Adam

BACKENDS = fastnn.available_backends()
RNG = np.random.default_rng(0)
X = RNG.normal(size=(24, 3))
LABELS = (X[:, 0] + X[:, 1] > 0).astype(int)


def make_model(backend="numpy", seed=0, opt=None):
    model = Sequential(
        [Dense(6, activation="tanh"), Dense(2, activation="softmax")],
        backend=backend,
        seed=seed,
        dtype="float64",
    )
    model.compile(opt or Adam(0.05), "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


class WeightRecorder(Callback):
    """Copies of the weights at the end of every epoch."""

    def __init__(self):
        super().__init__()
        self.weights = []

    def on_epoch_end(self, epoch, logs=None):
        self.weights.append(self.model.get_weights())


def assert_weights_equal(a, b):
    assert len(a) == len(b)
    for A, B in zip(a, b):
        np.testing.assert_array_equal(A, B)


# ---------------------------------------------------------------------------- History
def test_history_records_every_epoch():
    model = make_model()
    history = model.fit(X, LABELS, epochs=4, validation_data=(X, LABELS), verbose=0)
    assert isinstance(history, History) and model.history is history
    assert set(history.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert all(len(v) == 4 for v in history.history.values())
    assert history.epoch == [0, 1, 2, 3]
    assert history.params["epochs"] == 4 and history.params["steps"] == 1
    # val_loss of an epoch is the loss of the weights after it: the next epoch's
    # training loss on the same full batch.
    np.testing.assert_allclose(history.history["val_loss"][:3], history.history["loss"][1:])


def test_history_plot(tmp_path):
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    model = make_model()
    h1 = model.fit(X, LABELS, epochs=3, validation_split=0.25, verbose=0)
    h2 = make_model(opt=Adam(0.001)).fit(X, LABELS, epochs=3, verbose=0)
    ax = h1.plot(label="lr=0.05")
    h2.plot(ax=ax, label="lr=0.001")
    labels = [line.get_label() for line in ax.get_lines()]
    assert labels == ["lr=0.05 loss", "lr=0.05 val_loss", "lr=0.001 loss"]
    np.testing.assert_array_equal(ax.get_lines()[0].get_ydata(), h1.history["loss"])
    ax.figure.savefig(tmp_path / "loss.png")
    assert (tmp_path / "loss.png").stat().st_size > 0
    with pytest.raises(ValueError, match="no history for \\['val_accuracy'\\]"):
        h2.plot("val_accuracy")


def test_history_plot_without_matplotlib_says_how_to_install(monkeypatch):
    history = make_model().fit(X, LABELS, epochs=1, verbose=0)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match="needs matplotlib.*pip install"):
        history.plot()


# ---------------------------------------------------------------------------- EarlyStopping
def test_early_stopping_restores_best_weights():
    """Validation labels are the opposite of the training labels, so val_loss is best
    at epoch 0 and gets worse as training succeeds: patience 2 stops at epoch 2."""
    model = make_model()
    recorder = WeightRecorder()
    stopper = EarlyStopping(monitor="val_loss", patience=2, restore_best_weights=True)
    history = model.fit(
        X,
        LABELS,
        epochs=50,
        validation_data=(X, 1 - LABELS),
        callbacks=[recorder, stopper],
        verbose=0,
    )
    val = history.history["val_loss"]
    assert len(val) == 3 and val[0] < val[1] < val[2]
    assert (stopper.best_epoch, stopper.stopped_epoch) == (0, 2)
    assert_weights_equal(model.get_weights(), recorder.weights[0])
    # Without restore, the model keeps the last epoch's weights.
    model2 = make_model()
    recorder2 = WeightRecorder()
    model2.fit(
        X,
        LABELS,
        epochs=50,
        validation_data=(X, 1 - LABELS),
        callbacks=[recorder2, EarlyStopping(patience=2)],
        verbose=0,
    )
    assert len(recorder2.weights) == 3
    assert_weights_equal(model2.get_weights(), recorder2.weights[-1])


def test_early_stopping_min_delta_and_mode():
    model = make_model()
    # Training accuracy reaches its maximum quickly; min_delta on loss stops early.
    stopper = EarlyStopping(monitor="loss", patience=0, min_delta=10.0)
    history = model.fit(X, LABELS, epochs=20, callbacks=[stopper], verbose=0)
    assert len(history.history["loss"]) == 2  # epoch 1 does not beat epoch 0 by 10
    acc_stopper = EarlyStopping(monitor="accuracy", patience=1)
    assert acc_stopper._sign == -1.0  # "acc" in the name: higher is better


def test_early_stopping_warns_on_missing_metric():
    model = make_model()
    with pytest.warns(RuntimeWarning, match="monitoring 'val_loss', which is not available"):
        history = model.fit(X, LABELS, epochs=2, callbacks=[EarlyStopping()], verbose=0)
    assert len(history.history["loss"]) == 2


@pytest.mark.parametrize(
    "kwargs, exc",
    [
        ({"patience": -1}, ValueError),
        ({"patience": 1.5}, TypeError),
        ({"min_delta": -0.1}, ValueError),
        ({"mode": "up"}, ValueError),
        ({"monitor": 3}, TypeError),
    ],
)
def test_early_stopping_arguments(kwargs, exc):
    with pytest.raises(exc):
        EarlyStopping(**kwargs)


# ---------------------------------------------------------------------------- Ctrl-C
class InterruptAt(Callback):
    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            raise KeyboardInterrupt


def test_keyboard_interrupt_between_epochs_keeps_progress():
    model = make_model()
    with pytest.raises(KeyboardInterrupt):
        model.fit(X, LABELS, epochs=10, batch_size=8, seed=0, callbacks=[InterruptAt(3)], verbose=0)
    reference = make_model()
    reference.fit(X, LABELS, epochs=4, batch_size=8, seed=0, verbose=0)
    assert_weights_equal(model.get_weights(), reference.get_weights())
    assert len(model.history.history["loss"]) == 4
    assert model.optimizer.iterations == reference.optimizer.iterations == 12


@pytest.mark.parametrize("backend", BACKENDS)
def route_training_calls(monkeypatch, ops, fn):
    """Send the model's ``train_batches`` calls (``ops.run_prevalidated("train_batches",
    ...)``, which skips the argument checks) to ``fn(*args)`` instead."""
    real_run = type(ops).run_prevalidated

    def run(op, *args):
        return fn(*args) if op == "train_batches" else real_run(ops, op, *args)

    monkeypatch.setattr(ops, "run_prevalidated", run)


def test_keyboard_interrupt_inside_a_training_call_rolls_it_back(backend, monkeypatch):
    """Ctrl-C landing inside ``train_batches`` (after it has written half an update)
    leaves the weights and optimizer state of the last completed call."""
    monkeypatch.setattr(model_module, "CHUNK_ROWS", 8)  # one call per 2 batches of 4
    monkeypatch.setattr(model_module, "CHUNK_MACS", 0)
    model = make_model(backend)
    ops = fastnn.get_ops(backend)
    real = ops.train_batches  # the checked edge: the model's arguments must pass it
    seen = {}

    def interrupted(Ws, bs, activations, X, T, order, batch_size, head, opt, state, hyper, step):
        calls = seen.setdefault("calls", 0) + 1
        seen["calls"] = calls
        if calls == 5:  # epoch 1, second call
            seen["weights"] = [A.copy() for W, b in zip(Ws, bs) for A in (W, b)]
            seen["state"] = [A.copy() for S in state for A in S]
            seen["step"] = step
            Ws[0][...] = 123.0  # a half-written update
            state[0][0][...] = 7.0
            raise KeyboardInterrupt
        return real(Ws, bs, activations, X, T, order, batch_size, head, opt, state, hyper, step)

    route_training_calls(monkeypatch, ops, interrupted)
    with pytest.raises(KeyboardInterrupt):
        model.fit(X, LABELS, epochs=5, batch_size=4, verbose=2)
    assert_weights_equal(model.get_weights(), seen["weights"])
    assert_weights_equal([A for S in model.optimizer.state for A in S], seen["state"])
    assert model.optimizer.iterations == seen["step"] == 8
    assert len(model.history.history["loss"]) == 1  # epoch 0 completed, epoch 1 did not
    # Training can simply continue afterwards.
    route_training_calls(monkeypatch, ops, real)
    model.fit(X, LABELS, epochs=1, batch_size=4, verbose=0)
    assert model.optimizer.iterations == 14


# ---------------------------------------------------------------------------- divergence
def diverging_model(backend="numpy"):
    model = Sequential(
        [Dense(16, activation="relu"), Dense(3, activation="softmax")],
        backend=backend,
        seed=1,
        dtype="float32",
    )
    model.compile(SGD(1e5), "sparse_categorical_crossentropy")
    return model


BIG_X = 1e3 * np.random.default_rng(3).normal(size=(64, 5))
BIG_Y = np.random.default_rng(4).integers(0, 3, 64)


def _fit_diverging(model, **kwargs):
    with pytest.warns(RuntimeWarning, match="loss became non-finite") as record:
        history = model.fit(BIG_X, BIG_Y, batch_size=4, epochs=20, verbose=0, seed=0, **kwargs)
    return history, str(record[0].message)


@pytest.mark.parametrize("backend", BACKENDS)
def test_nonfinite_loss_stops_and_restores_last_finite_weights(backend, monkeypatch):
    # Reference: one batch per call, recording the weights before every update.
    fused_rows = model_module.FUSED_ROWS
    monkeypatch.setattr(model_module, "CHUNK_ROWS", 4)
    monkeypatch.setattr(model_module, "CHUNK_MACS", 0)
    monkeypatch.setattr(model_module, "FUSED_ROWS", 0)
    ops = fastnn.get_ops(backend)
    real = ops.train_batches  # the checked edge: the model's arguments must pass it
    before_step = []

    def recording(Ws, bs, *args):
        before_step.append([A.copy() for W, b in zip(Ws, bs) for A in (W, b)])
        return real(Ws, bs, *args)

    route_training_calls(monkeypatch, ops, recording)
    model = diverging_model(backend)
    history, message = _fit_diverging(model)
    assert history.stopped_on_nonfinite
    info = history.nonfinite
    first_bad = info["epoch"] * 16 + info["batch"]  # 16 batches per epoch
    assert first_bad >= 1, "diverged on the very first batch: make the test data milder"
    assert info["restored_updates"] == first_bad - 1
    # The weights before update first_bad - 1 gave the last finite loss.
    assert_weights_equal(model.get_weights(), before_step[first_bad - 1])
    assert all(np.isfinite(A).all() for A in model.get_weights())
    assert f"epoch {info['epoch'] + 1}, batch {info['batch'] + 1}" in message
    assert "Lower the learning rate" in message
    assert len(history.history["loss"]) == info["epoch"] + 1
    assert not np.isfinite(history.history["loss"][-1])

    # Large chunks (the restore replays the finite batches of the chunk) and epoch
    # fusion land on exactly the same weights.
    route_training_calls(monkeypatch, ops, real)
    monkeypatch.setattr(model_module, "FUSED_ROWS", fused_rows)
    for rows in (64, 8192):
        monkeypatch.setattr(model_module, "CHUNK_ROWS", rows)
        other = diverging_model(backend)
        history2, _ = _fit_diverging(other)
        assert {k: v for k, v in history2.nonfinite.items() if k != "value"} == {
            k: v for k, v in info.items() if k != "value"
        }
        assert_weights_equal(other.get_weights(), model.get_weights())


def test_nonfinite_handling_can_be_switched_off():
    model = diverging_model()
    model.stop_on_nonfinite = False
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no divergence report, no NumPy overflow noise
        history = model.fit(BIG_X, BIG_Y, batch_size=4, epochs=3, verbose=0, seed=0)
    assert len(history.history["loss"]) == 3 and not history.stopped_on_nonfinite


def test_nonfinite_weights_after_the_last_update_are_rolled_back():
    """The last update can overflow the weights while every loss was finite: that is
    caught too, and the weights before that update (whose loss was finite) come back."""
    model = Sequential([Dense(2, activation="softmax")], backend="numpy", seed=0)
    model.compile(SGD(1e38), "sparse_categorical_crossentropy")
    model.build(5)
    initial = model.get_weights()
    with pytest.warns(RuntimeWarning, match="the weights became non-finite at epoch 1, batch 1"):
        history = model.fit(BIG_X, BIG_Y % 2, batch_size=64, epochs=1, verbose=0)
    assert history.stopped_on_nonfinite and np.isfinite(history.history["loss"][0])
    assert_weights_equal(model.get_weights(), initial)
