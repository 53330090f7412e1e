"""The Keras-style training API of issue 10, checked against hand computations.

Dropout, kernel regularizers, weight decay, AdamW/RMSprop/Nesterov, frozen layers,
``use_bias=False``, the new activations, loss objects with ``from_logits``, and
sample/class weights, all through ``Sequential.fit``/``evaluate``/``predict``.

References are independent of fastnn's code: each expected value is the formula
written out here in float64 NumPy from the model's initial weights (the Keras 3
update rules; the dropout mask from the contract's pure-Python ``dropout_keep``).
Tolerances: float64 differs from the hand computation by summation order only
(rtol 1e-10); float32 carries ~6e-8 per op over a handful of ops (rtol/atol 1e-5),
while a wrong formula (a missing factor 2, a skipped term) moves values by >= 1e-3.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
from scipy.special import erf

import fastnn
from fastnn import Dense, Dropout, Input, Sequential, losses, regularizers
from fastnn.kernels.contract import dropout_keep
from fastnn.optimizers import SGD, Adam, AdamW, RMSprop

BACKENDS = ["python", "numpy", "numba"]
DTYPES = ["float32", "float64"]
TOL = {"float64": {"rtol": 1e-10, "atol": 1e-12}, "float32": {"rtol": 1e-5, "atol": 1e-5}}

RNG = np.random.default_rng(42)
X = RNG.normal(size=(8, 3))
T = RNG.normal(size=(8, 2))
LABELS = np.array([0, 1, 2, 1, 0, 2, 2, 1])


def linear_model(backend, dtype, opt, reg=None, **dense):
    """One linear Dense layer 3 -> 2 with MSE: the hand gradient is short."""
    model = Sequential([Input(shape=(3,)), Dense(2, kernel_regularizer=reg, **dense)],
                       backend=backend, dtype=dtype, seed=3)  # fmt: skip
    model.compile(opt, "mse")
    return model


def one_step(model, sample_weight=None, epochs=1):
    """Initial [W, b] in float64, then full-batch steps in order."""
    W0 = [A.astype(np.float64) for A in model.get_weights()]
    history = model.fit(X, T, batch_size=len(X), epochs=epochs, shuffle=False, verbose=0,
                        sample_weight=sample_weight, seed=0)  # fmt: skip
    return W0, history


def mse_grads(W, b, w=None):
    """Loss and (dW, db) of ``sum_i w_i mean_k (XW + b - T)_ik^2 / n``."""
    n, k = T.shape
    w = np.ones(n) if w is None else np.asarray(w, dtype=np.float64)
    R = X @ W + b - T
    loss = float(np.sum(w * np.mean(R**2, axis=1)) / n)
    dY = 2 * R * w[:, None] / (n * k)
    return loss, X.T @ dY, dY.sum(axis=0)


def assert_close(got, want, dtype):
    np.testing.assert_allclose(np.asarray(got, dtype=np.float64), want, **TOL[dtype])


# ------------------------------------------------------------- regularization
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("backend", BACKENDS)
def test_one_sgd_step_with_l2_equals_the_hand_formula(backend, dtype):
    lr, l2 = 0.1, 0.05
    model = linear_model(backend, dtype, SGD(lr), regularizers.L2(l2))
    (W, b), history = one_step(model)
    loss, dW, db = mse_grads(W, b)
    # Keras: l2 * sum(W^2) joins the loss; its gradient 2 * l2 * W joins dW; b is not penalized.
    assert_close(model.layers[0].W, W - lr * (dW + 2 * l2 * W), dtype)
    assert_close(model.layers[0].b, b - lr * db, dtype)
    assert_close(history.history["loss"][0], loss + l2 * np.sum(W**2), dtype)
    # evaluate reports the loss with the penalty of the current weights, as Keras.
    W1, b1 = (A.astype(np.float64) for A in model.get_weights())
    assert_close(model.evaluate(X, T), mse_grads(W1, b1)[0] + l2 * np.sum(W1**2), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("backend", BACKENDS)
def test_l1l2_and_string_regularizers(backend, dtype):
    lr = 0.1
    model = linear_model(backend, dtype, SGD(lr), "l1_l2")  # Keras: L1L2() is 0, 0
    assert model.layers[0].kernel_regularizer == regularizers.L1L2(0.0, 0.0)
    model = linear_model(backend, dtype, SGD(lr), regularizers.L1L2(l1=0.02, l2=0.03))
    (W, b), history = one_step(model)
    loss, dW, _ = mse_grads(W, b)
    assert_close(model.layers[0].W, W - lr * (dW + 0.02 * np.sign(W) + 0.06 * W), dtype)
    penalty = 0.02 * np.abs(W).sum() + 0.03 * np.sum(W**2)
    assert_close(history.history["loss"][0], loss + penalty, dtype)
    assert regularizers.get("l2") == regularizers.L2(0.01)
    assert regularizers.get("l1") == regularizers.L1(0.01)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("backend", BACKENDS)
def test_sgd_weight_decay_and_nesterov_equal_the_hand_formula(backend, dtype):
    lr, mu, wd = 0.1, 0.9, 0.01
    model = linear_model(backend, dtype, SGD(lr, momentum=mu, nesterov=True, weight_decay=wd))
    (W, b), _ = one_step(model, epochs=2)
    vW, vb = np.zeros_like(W), np.zeros_like(b)
    for _ in range(2):  # Keras 3 SGD: decay, then velocity, then the Nesterov step
        _, dW, db = mse_grads(W, b)
        W, b = W - lr * wd * W, b - lr * wd * b
        vW, vb = mu * vW - lr * dW, mu * vb - lr * db
        W, b = W + mu * vW - lr * dW, b + mu * vb - lr * db
    assert_close(model.layers[0].W, W, dtype)
    assert_close(model.layers[0].b, b, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("make", [lambda: Adam(0.01, epsilon=0.05),
                                  lambda: AdamW(0.01, weight_decay=0.1, epsilon=0.05)])  # fmt: skip
def test_adam_and_adamw_take_keras_3_steps(backend, dtype, make):
    """Keras 3's Adam: epsilon outside the bias correction.  A large epsilon makes the
    two forms differ by ~1e-3 relative, far above the tolerance."""
    opt = make()
    model = linear_model(backend, dtype, opt)
    (W, b), _ = one_step(model, epochs=2)
    params = [W, b]
    m = [np.zeros_like(P) for P in params]
    v = [np.zeros_like(P) for P in params]
    b1, b2, eps, lr, wd = opt.beta_1, opt.beta_2, opt.epsilon, 0.01, opt.weight_decay
    for t in (1, 2):
        _, dW, db = mse_grads(*params)
        alpha = lr * np.sqrt(1 - b2**t) / (1 - b1**t)
        for p, g in enumerate((dW, db)):
            params[p] = params[p] - lr * wd * params[p]
            m[p] = b1 * m[p] + (1 - b1) * g
            v[p] = b2 * v[p] + (1 - b2) * g**2
            params[p] = params[p] - alpha * m[p] / (np.sqrt(v[p]) + eps)
    assert_close(model.layers[0].W, params[0], dtype)
    assert_close(model.layers[0].b, params[1], dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("backend", BACKENDS)
def test_rmsprop_with_momentum_equals_the_hand_formula(backend, dtype):
    lr, rho, mu, eps = 0.01, 0.9, 0.5, 1e-3
    model = linear_model(backend, dtype, RMSprop(lr, rho=rho, momentum=mu, epsilon=eps))
    (W, b), _ = one_step(model, epochs=2)
    params = [W, b]
    ms = [np.zeros_like(P) for P in params]
    mom = [np.zeros_like(P) for P in params]
    for _ in range(2):
        _, dW, db = mse_grads(*params)
        for p, g in enumerate((dW, db)):
            ms[p] = rho * ms[p] + (1 - rho) * g**2
            mom[p] = mu * mom[p] + lr * g / np.sqrt(ms[p] + eps)
            params[p] = params[p] - mom[p]
    assert_close(model.layers[0].W, params[0], dtype)
    assert_close(model.layers[0].b, params[1], dtype)


def test_optimizer_defaults_are_keras_3():
    assert RMSprop().get_config() == {"learning_rate": 0.001, "rho": 0.9, "momentum": 0.0,
                                      "epsilon": 1e-7, "weight_decay": None}  # fmt: skip
    assert AdamW().weight_decay == 0.004
    assert Adam().weight_decay == 0.0 and SGD().nesterov is False
    with pytest.raises(ValueError, match="rho must be < 1"):
        RMSprop(rho=1.0)
    with pytest.raises(ValueError, match="weight_decay must be >= 0"):
        SGD(weight_decay=-0.1)


# ------------------------------------------------------------- frozen parameters
def two_layer(backend, dtype, top=None, bottom=None, opt=None):
    model = Sequential([Input(shape=(3,)), Dense(4, activation="tanh", **(bottom or {})),
                        Dense(2, **(top or {}))], backend=backend, dtype=dtype, seed=5)  # fmt: skip
    model.compile(opt or SGD(0.1, momentum=0.9), "mse")
    return model


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("backend", BACKENDS)
def test_a_frozen_layer_keeps_its_weights_and_passes_gradients(backend, dtype):
    model = two_layer(backend, dtype)
    model.layers[0].trainable = False
    before = model.get_weights()
    model.fit(X, T, batch_size=4, epochs=3, verbose=0)
    after = model.get_weights()
    np.testing.assert_array_equal(after[0], before[0])
    np.testing.assert_array_equal(after[1], before[1])
    assert not np.allclose(after[2], before[2])
    # Frozen top layer: the gradient still reaches the layer below through it.
    model = two_layer(backend, dtype)
    model.layers[1].trainable = False
    before = model.get_weights()
    model.fit(X, T, batch_size=4, epochs=3, verbose=0)
    after = model.get_weights()
    assert not np.allclose(after[0], before[0])
    np.testing.assert_array_equal(after[2], before[2])
    np.testing.assert_array_equal(after[3], before[3])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("backend", BACKENDS)
def test_use_bias_false_has_no_bias_and_trains_fused(backend, dtype, monkeypatch):
    from fastnn.dispatch.checked import CheckedOps

    calls = []
    original = CheckedOps.run_prevalidated

    def spy(self, op, *args, **options):
        calls.append(op)
        return original(self, op, *args, **options)

    monkeypatch.setattr(CheckedOps, "run_prevalidated", spy)
    model = two_layer(backend, dtype, top={"use_bias": False}, opt=SGD(0.05))
    assert [A.shape for A in model.get_weights()] == [(3, 4), (4,), (4, 2)]
    first = model.evaluate(X, T)
    model.fit(X, T, batch_size=2, epochs=20, verbose=2)
    assert model.evaluate(X, T) < 0.9 * first
    np.testing.assert_array_equal(model.layers[1].b, 0)
    # 4 batches per epoch, one train_batches call per epoch (no per-batch bias reset).
    assert calls.count("train_batches") == 20


def test_summary_counts_frozen_parameters():
    model = two_layer("numpy", "float64", top={"use_bias": False})
    model.layers[0].trainable = False
    lines = []
    model.summary(print_fn=lines.append)
    text = lines[0]
    assert "Total params: 24 (192.00 B)" in text  # 3*4 + 4 + 4*2
    assert "Trainable params: 8 (64.00 B)" in text
    assert "Non-trainable params: 16 (128.00 B)" in text


def test_setting_an_unknown_layer_attribute_raises():
    layer = Dense(3)
    with pytest.raises(AttributeError, match="has no attribute 'trainabel'.*trainable"):
        layer.trainabel = False
    with pytest.raises(TypeError, match="trainable must be True or False"):
        layer.trainable = "no"
    with pytest.raises(AttributeError, match="Dropout layer .* has no attribute 'p'"):
        Dropout(0.5).p = 0.1


# ------------------------------------------------------------- dropout
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("backend", BACKENDS)
def test_one_step_with_dropout_equals_the_hand_formula(backend, dtype):
    """Hidden relu layer, inverted dropout (rate 0.5) with the contract's mask, SGD."""
    lr, rate, seed = 0.1, 0.5, 7
    model = Sequential([Input(shape=(3,)), Dense(5, activation="relu"), Dropout(rate, seed=seed),
                        Dense(2)], backend=backend, dtype=dtype, seed=1)  # fmt: skip
    model.compile(SGD(lr), "mse")
    W0, b0, W1, b1 = (A.astype(np.float64) for A in model.get_weights())
    model.fit(X, T, batch_size=8, epochs=1, shuffle=False, verbose=0)
    n, width = len(X), 5
    keep = [dropout_keep(seed, 1, 0, i, rate) for i in range(n * width)]
    M = np.array(keep, dtype=np.float64).reshape(n, width) / (1 - rate)
    assert 0 < M.sum() < n * width / (1 - rate)  # the mask drops some units, not all
    Z0 = X @ W0 + b0
    H = np.maximum(Z0, 0) * M
    R = H @ W1 + b1 - T
    dY = 2 * R / R.size
    dH = (dY @ W1.T) * M * (Z0 > 0)
    want = [W0 - lr * X.T @ dH, b0 - lr * dH.sum(0), W1 - lr * H.T @ dY, b1 - lr * dY.sum(0)]
    for got, w in zip(model.get_weights(), want):
        assert_close(got, w, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("backend", BACKENDS)
def test_dropout_is_the_identity_in_predict_and_evaluate(backend, dtype):
    def make(dropout):
        layers = [Input(shape=(3,)), Dense(6, activation="relu")]
        layers += [Dropout(0.4)] if dropout else []
        model = Sequential([*layers, Dense(2)], backend=backend, dtype=dtype, seed=9)
        model.compile(SGD(0.1), "mse")
        return model

    with_dropout, plain = make(True), make(False)
    np.testing.assert_array_equal(with_dropout.predict(X), plain.predict(X))
    assert with_dropout.evaluate(X, T) == plain.evaluate(X, T)
    # Training is where they differ; the same seeds give the same dropout trajectory.
    h1 = with_dropout.fit(X, T, batch_size=4, epochs=2, verbose=0, seed=3)
    plain.fit(X, T, batch_size=4, epochs=2, verbose=0, seed=3)
    assert not np.allclose(with_dropout.get_weights()[0], plain.get_weights()[0])
    again = make(True)
    h2 = again.fit(X, T, batch_size=4, epochs=2, verbose=0, seed=3)
    for A, B in zip(again.get_weights(), with_dropout.get_weights()):
        np.testing.assert_array_equal(A, B)
    assert h1.history["loss"] == h2.history["loss"]


def test_dropout_placement_is_checked():
    for layers in ([Dropout(0.5), Dense(2)], [Dense(3), Dense(2), Dropout(0.5)]):
        model = Sequential([Input(shape=(3,)), *layers], backend="numpy")
        model.compile("sgd", "mse")
        with pytest.raises(ValueError, match="Dropout layer .* (before the first|after the last)"):
            model.fit(X, T, verbose=0)
    with pytest.raises(ValueError, match="rate must be < 1"):
        Dropout(1.0)


# ------------------------------------------------------------- activations
def _reference_activation(name, Z, slope=0.2):
    sig = 1 / (1 + np.exp(-Z))
    return {
        "leaky_relu": np.where(Z > 0, Z, slope * Z),
        "elu": np.where(Z > 0, Z, np.expm1(np.minimum(Z, 0))),
        "gelu": 0.5 * Z * (1 + erf(Z / np.sqrt(2))),
        "softplus": np.log1p(np.exp(Z)),
        "silu": Z * sig,
    }[name]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", ["leaky_relu", "elu", "gelu", "softplus", "silu"])
def test_new_activations_predict_and_train(backend, dtype, name):
    model = Sequential([Input(shape=(3,)), Dense(4, activation=name), Dense(2)],
                       backend=backend, dtype=dtype, seed=2)  # fmt: skip
    model.compile(SGD(0.05), "mse")
    W0, b0, W1, b1 = (A.astype(np.float64) for A in model.get_weights())
    want = _reference_activation(name, X @ W0 + b0) @ W1 + b1
    assert_close(model.predict(X), want, dtype)
    first = model.evaluate(X, T)
    model.fit(X, T, batch_size=4, epochs=10, verbose=0)
    assert model.evaluate(X, T) < first


@pytest.mark.parametrize("backend", BACKENDS)
def test_leaky_relu_slope_through_partial(backend):
    act = functools.partial(fastnn.activations.leaky_relu, negative_slope=0.05)
    model = Sequential([Input(shape=(3,)), Dense(4, activation=act), Dense(2)],
                       backend=backend, dtype="float64", seed=2)  # fmt: skip
    assert model.layers[0].negative_slope == 0.05
    W0, b0, W1, b1 = model.get_weights()
    want = _reference_activation("leaky_relu", X @ W0 + b0, 0.05) @ W1 + b1
    np.testing.assert_allclose(model.predict(X), want, **TOL["float64"])
    model.compile(SGD(0.05), "mse")
    model.fit(X, T, epochs=1, verbose=0)  # the slope reaches train_batches
    assert Dense(2, activation=fastnn.activations.leaky_relu).negative_slope == 0.2


# ------------------------------------------------------------- losses
@pytest.mark.parametrize(
    "activation", ["linear", "relu", "tanh", "elu", "leaky_relu", "gelu", "softplus", "silu"]
)
def test_probability_loss_on_a_non_probability_output_is_refused(activation):
    model = Sequential([Input(shape=(3,)), Dense(3, activation=activation)])
    with pytest.raises(
        ValueError,
        match=r"use activation='softmax' on the last layer, or "
        r"loss=fastnn.losses.SparseCategoricalCrossentropy\(from_logits=True\)",
    ):
        model.compile("adam", "sparse_categorical_crossentropy")  # fmt: skip
    with pytest.raises(ValueError, match="activation='sigmoid'.*BinaryCrossentropy"):
        model.compile("adam", losses.BinaryCrossentropy())
    if activation == "linear":
        model.compile("adam", losses.CategoricalCrossentropy(from_logits=True))
    model.compile("adam", "mse")  # MSE takes any output


def test_from_logits_needs_a_linear_output():
    model = Sequential([Input(shape=(3,)), Dense(3, activation="softmax")])
    with pytest.raises(ValueError, match=r"from_logits=True\) takes logits.*activation=None"):
        model.compile("adam", losses.SparseCategoricalCrossentropy(from_logits=True))
    # A loss checked at fit time too, when the last layer was added after compile.
    model = Sequential([Input(shape=(3,))], backend="numpy")
    model.compile("sgd", "sparse_categorical_crossentropy")
    model.add(Dense(3))
    with pytest.raises(ValueError, match="expects probabilities"):
        model.fit(X, LABELS, verbose=0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("backend", ["python", "numpy", "numba"])
@pytest.mark.parametrize("kind", ["sparse", "categorical", "binary"])
def test_from_logits_trains_as_the_fused_probability_model(backend, dtype, kind):
    """A linear output with from_logits=True runs the same fused head as a softmax
    (sigmoid) output with the string loss: identical weights; predict gives logits."""
    k, name, act, cls = {
        "sparse": (3, "sparse_categorical_crossentropy", "softmax",
                   losses.SparseCategoricalCrossentropy),
        "categorical": (3, "categorical_crossentropy", "softmax", losses.CategoricalCrossentropy),
        "binary": (1, "binary_crossentropy", "sigmoid", losses.BinaryCrossentropy),
    }[kind]  # fmt: skip
    y = {"sparse": LABELS, "categorical": np.eye(3)[LABELS],
         "binary": (LABELS == 1).astype(float)[:, None]}[kind]  # fmt: skip

    def make(activation, loss):
        model = Sequential([Input(shape=(3,)), Dense(4, activation="tanh"),
                            Dense(k, activation=activation)], backend=backend, dtype=dtype,
                           seed=4)  # fmt: skip
        model.compile(SGD(0.1), loss, metrics=["accuracy"])
        model.fit(X, y, batch_size=4, epochs=3, verbose=0, seed=1)
        return model

    probs, logits = make(act, name), make(None, cls(from_logits=True))
    for A, B in zip(probs.get_weights(), logits.get_weights()):
        np.testing.assert_array_equal(A, B)
    Z = logits.predict(X).astype(np.float64)
    P = 1 / (1 + np.exp(-Z)) if k == 1 else np.exp(Z) / np.exp(Z).sum(1, keepdims=True)
    assert_close(probs.predict(X), P, dtype)
    assert_close(logits.evaluate(X, y), probs.evaluate(X, y), dtype)


# ------------------------------------------------------------- sample / class weights
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("backend", BACKENDS)
def test_sample_weight_step_and_evaluate_equal_the_hand_formula(backend, dtype):
    lr = 0.1
    w = np.array([0.0, 1.0, 2.0, 0.5, 1.0, 3.0, 1.0, 0.25])
    model = linear_model(backend, dtype, SGD(lr))
    (W, b), history = one_step(model, sample_weight=w)
    loss, dW, db = mse_grads(W, b, w)
    assert_close(model.layers[0].W, W - lr * dW, dtype)
    assert_close(model.layers[0].b, b - lr * db, dtype)
    assert_close(history.history["loss"][0], loss, dtype)
    W1, b1 = (A.astype(np.float64) for A in model.get_weights())
    assert_close(model.evaluate(X, T, sample_weight=w), mse_grads(W1, b1, w)[0], dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("backend", BACKENDS)
def test_class_weight_equals_the_equivalent_sample_weight(backend, dtype):
    def fit(**weights):
        model = Sequential([Input(shape=(3,)), Dense(5, activation="relu"),
                            Dense(3, activation="softmax")], backend=backend, dtype=dtype,
                           seed=6)  # fmt: skip
        model.compile(Adam(0.01), "sparse_categorical_crossentropy")
        history = model.fit(X, LABELS, batch_size=3, epochs=4, verbose=0, seed=2, **weights)
        return model, history

    by_class, h1 = fit(class_weight={0: 2.0, 2: 0.5})  # class 1 missing: weight 1
    by_row, h2 = fit(sample_weight=np.array([2.0, 1.0, 0.5])[LABELS])
    plain, h3 = fit()
    for A, B in zip(by_class.get_weights(), by_row.get_weights()):
        np.testing.assert_array_equal(A, B)
    assert h1.history["loss"] == h2.history["loss"]
    assert not np.allclose(by_class.get_weights()[0], plain.get_weights()[0])


BAD_WEIGHTS = [
    ({"sample_weight": np.ones(7)}, ValueError, r"one weight per sample: shape \(8,\)"),
    ({"sample_weight": -np.ones(8)}, ValueError, r"finite and >= 0; sample_weight\[0\] is -1"),
    ({"sample_weight": np.r_[np.ones(3), np.nan, np.ones(4)]}, ValueError,
     r"sample_weight\[3\] is nan"),
    ({"sample_weight": ["a"] * 8}, TypeError, "sample_weight must be numeric"),
    ({"class_weight": {3: 1.0}}, ValueError, "unknown class 3: the model's classes are 0..2"),
    ({"class_weight": {0: -1.0}}, ValueError, r"class_weight\[0\] must be finite and >= 0"),
    ({"class_weight": {"cat": 1.0}}, TypeError, "class_weight keys must be integer classes"),
    ({"class_weight": [1.0, 2.0]}, TypeError, "class_weight must be a dict"),
    ({"class_weight": {0: 1.0}, "sample_weight": np.ones(8)}, ValueError,
     "both class_weight and sample_weight"),
]  # fmt: skip


@pytest.mark.parametrize("kwargs,exc,message", BAD_WEIGHTS)
def test_bad_weights_raise_clear_errors_and_change_nothing(kwargs, exc, message):
    model = Sequential([Input(shape=(3,)), Dense(3, activation="softmax")], backend="numpy")
    model.compile("adam", "sparse_categorical_crossentropy")
    before = model.get_weights()
    with pytest.raises(exc, match=message):
        model.fit(X, LABELS, verbose=0, **kwargs)
    for A, B in zip(model.get_weights(), before):
        np.testing.assert_array_equal(A, B)
    assert model.optimizer.iterations == 0
    if "sample_weight" in kwargs and "class_weight" not in kwargs:
        with pytest.raises(exc, match=message):
            model.evaluate(X, LABELS, sample_weight=kwargs["sample_weight"])


# ------------------------------------------------------------- saving
def test_new_layers_and_options_survive_save_and_load(tmp_path):
    act = functools.partial(fastnn.activations.leaky_relu, negative_slope=0.1)
    model = Sequential([Input(shape=(3,)), Dense(5, activation=act, kernel_regularizer="l2"),
                        Dropout(0.25, seed=4), Dense(4, activation="gelu", use_bias=False),
                        Dense(3)], backend="numpy", dtype="float64", seed=0)  # fmt: skip
    model.layers[3].trainable = False
    model.compile(AdamW(0.01, weight_decay=0.01),
                  losses.SparseCategoricalCrossentropy(from_logits=True))  # fmt: skip
    model.fit(X, LABELS, epochs=2, verbose=0, seed=0)
    model.save(tmp_path / "m.npz")
    loaded = fastnn.load_model(tmp_path / "m.npz", backend="numpy")
    assert loaded.get_config() == model.get_config()
    assert isinstance(loaded.optimizer, AdamW) and loaded.optimizer.weight_decay == 0.01
    assert loaded.loss == losses.SparseCategoricalCrossentropy(from_logits=True)
    assert loaded.layers[1].get_config() == {"name": model.layers[1].name, "trainable": True,
                                             "rate": 0.25, "seed": 4}  # fmt: skip
    assert loaded.layers[0].negative_slope == 0.1 and not loaded.layers[3].trainable
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    # Both continue identically: options and optimizer state were restored.
    model.fit(X, LABELS, epochs=1, verbose=0, seed=1)
    loaded.fit(X, LABELS, epochs=1, verbose=0, seed=1)
    for A, B in zip(model.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(A, B)


@pytest.mark.parametrize("backend", BACKENDS)
def test_validation_weights_give_the_weighted_val_loss(backend):
    w = np.array([1.0, 2.0, 0.0, 1.0, 3.0, 1.0, 0.5, 1.0])
    model = linear_model(backend, "float64", SGD(0.05))
    history = model.fit(X, T, epochs=2, verbose=0, validation_data=(X, T, w))
    np.testing.assert_allclose(history.history["val_loss"][-1],
                               model.evaluate(X, T, sample_weight=w), rtol=1e-12)  # fmt: skip
    # validation_split holds out the last rows of x, y and sample_weight alike.
    model = linear_model(backend, "float64", SGD(0.05))
    history = model.fit(X, T, epochs=1, verbose=0, validation_split=0.25, sample_weight=w)
    held_out = model.evaluate(X[6:], T[6:], sample_weight=w[6:])
    np.testing.assert_allclose(history.history["val_loss"][-1], held_out, rtol=1e-12)
