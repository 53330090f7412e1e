"""The tutorials' seed examples, each in a few Keras-style lines.

Every function trains one classic example on any backend and returns a result
dict (``"ok"`` says whether it learned what it should); ``verbose=True`` also
prints a short report.  ``fastnn example NAME`` runs them from the command line.

====================  ==========================================================
``gates``             Rosenblatt perceptron on AND, OR, NAND, NOR (learned
                      exactly) and XOR (not linearly separable: no convergence)
``xor``               2-8-1 network (tanh hidden, sigmoid output) learns XOR
``neuron``            one sigmoid neuron, squared error, sample by sample, on the
                      4-person height/weight set
``nn-10-15-5``        (10, 15, 5) sigmoid net, 10,000 full-batch epochs, lr 0.1
``coffee``            ``Sequential([Dense(3, "sigmoid"), Dense(1, "sigmoid")])``
                      on the coffee-roasting set, inputs standardized
``fashion-mnist``     784-256-10 ReLU/softmax MLP, SGD lr 0.1, batch 256, 10 epochs
``fashion-mnist-best``  784-512-256-10 ReLU MLP with Dropout(0.3), Adam 1e-3 with
                      cosine decay, batch 128, 30 epochs: >= 0.90 test accuracy
====================  ==========================================================

The examples hold no math of their own beyond data preparation (standardizing
inputs, counting correct predictions): the models compute through the ops of the
chosen backend.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import numpy as np

from fastnn import datasets
from fastnn.dispatch import coldstart
from fastnn.dispatch import validation as chk

__all__ = [
    "EXAMPLES",
    "coffee",
    "fashion_mnist",
    "fashion_mnist_best",
    "gates",
    "neuron",
    "nn_10_15_5",
    "run",
    "xor",
]


def _api():
    """The model API, imported on first use (keeps ``import fastnn.tools.examples`` cheap)."""
    from fastnn import optimizers
    from fastnn.model import Dense, Sequential

    return Sequential, Dense, optimizers


def _sequential(layers, backend, seed, dtype):
    Sequential, _, _ = _api()
    return Sequential(layers, backend=backend, seed=seed, dtype=dtype)


def _backend_name(model, backend) -> str:
    if isinstance(model.backend, str):
        return model.backend
    if backend is not None:
        return backend
    from fastnn import get_backend

    return get_backend()


def _epochs(n: int, what: str = "epoch") -> str:
    """``"1 epoch"``, ``"10 epochs"``."""
    return f"{n} {what}" if n == 1 else f"{n} {what}s"


def _say(verbose: bool, text: str = "") -> None:
    if verbose:
        print(text)


def _history_dict(history) -> dict:
    return {k: [float(v) for v in vals] for k, vals in getattr(history, "history", {}).items()}


# ----------------------------------------------------------------------- gates


def gates(backend=None, seed=0, verbose=False, epochs=None, learning_rate=1.0):
    """Rosenblatt's perceptron on the two-input logic gates.

    AND, OR, NAND and NOR are linearly separable: the perceptron rule converges
    and predicts every row of the truth table.  XOR is not: no line separates its
    classes, the rule never converges, and the example reports that honestly.
    ``epochs`` (default: the perceptron's own ``max_epochs``) bounds the training.
    ``seed`` is accepted for a uniform signature; the perceptron rule is deterministic.
    """
    from fastnn.perceptron import ConvergenceWarning, Perceptron

    kwargs = {"learning_rate": learning_rate, "backend": backend}
    if epochs is not None:
        kwargs["max_epochs"] = epochs
    results = {}
    _say(verbose, f"Perceptron (learning rate {learning_rate}), backend {backend or 'default'}")
    for name in ("AND", "OR", "NAND", "NOR", "XOR"):
        x, y = datasets.logic_gates(name)
        p = Perceptron(**kwargs)
        with warnings.catch_warnings():
            # Non-convergence is the lesson of XOR: reported below, not warned about.
            warnings.simplefilter("ignore", ConvergenceWarning)
            p.fit(x, y)
        pred = np.asarray(p.predict(x)).reshape(-1)
        target = y.reshape(-1)
        exact = bool(np.array_equal(pred, target))
        converged = bool(p.converged_)
        results[name] = {
            "predictions": pred.astype(int).tolist(),
            "targets": target.astype(int).tolist(),
            "exact": exact,
            "converged": converged,
            "epochs": p.n_epochs_,
            "errors": list(p.errors_),
        }
        status = "learned exactly" if exact else "NOT learned"
        if converged:
            conv = f"converged after {_epochs(p.n_epochs_)}"
        else:
            conv = f"did not converge in {_epochs(p.n_epochs_)}"
        _say(verbose, f"  {name:4s} predictions {pred.astype(int).tolist()}  {status}, {conv}")
    separable_ok = all(results[g]["exact"] and results[g]["converged"] for g in GATES_SEPARABLE)
    xor_converged = results["XOR"]["converged"]
    if verbose and not xor_converged:
        print("  XOR is not linearly separable: a single perceptron cannot learn it.")
    return {"gates": results, "ok": separable_ok and not xor_converged}


GATES_SEPARABLE = ("AND", "OR", "NAND", "NOR")


# ------------------------------------------------------------------------- xor


def xor(
    backend=None,
    seed=0,
    verbose=False,
    epochs=1000,
    hidden_activation="tanh",
    learning_rate=0.05,
    dtype="float64",
):
    """A 2-8-1 network learns XOR, which no single perceptron can.

    ``Dense(8, hidden_activation)`` (``"tanh"`` or ``"sigmoid"``) and
    ``Dense(1, "sigmoid")``, binary cross-entropy, Adam, full batch of the 4 rows.
    """
    Sequential, Dense, optimizers = _api()
    x, y = datasets.logic_gates("XOR", dtype=dtype)
    model = _sequential(
        [Dense(8, activation=hidden_activation, input_dim=2), Dense(1, activation="sigmoid")],
        backend,
        seed,
        dtype,
    )
    model.compile(
        optimizer=optimizers.Adam(learning_rate=learning_rate),
        loss="binary_crossentropy",
        metrics=["accuracy"],
    )
    history = model.fit(x, y, batch_size=4, epochs=epochs, verbose=0, shuffle=False, seed=seed)
    prob = np.asarray(model.predict(x)).reshape(-1)
    pred = (prob > 0.5).astype(int)
    solved = bool(np.array_equal(pred, y.reshape(-1).astype(int)))
    losses = _history_dict(history).get("loss", [])
    _say(
        verbose,
        f"XOR with a 2-8-1 network ({hidden_activation} hidden, sigmoid output), "
        f"{_epochs(epochs)}, backend {_backend_name(model, backend)}",
    )
    for row, p in zip(x.astype(int).tolist(), prob):
        _say(verbose, f"  {row} -> {p:.4f}")
    _say(verbose, f"  final loss {losses[-1]:.4g}; XOR {'solved' if solved else 'NOT solved'}")
    return {
        "probabilities": prob.tolist(),
        "predictions": pred.tolist(),
        "solved": solved,
        "loss": losses,
        "ok": solved,
    }


# ---------------------------------------------------------------------- neuron


def neuron(backend=None, seed=0, verbose=False, epochs=1000, learning_rate=0.1, dtype="float64"):
    """One sigmoid neuron trained sample by sample with squared error.

    The 4-person set (:func:`fastnn.datasets.toy_people`): ``Dense(1, "sigmoid")``,
    loss ``"mse"``, SGD, ``batch_size=1`` in the order of the table -- the tutorial's
    per-sample updates.
    Then it predicts the two unseen people (Emily: female, Frank: male).
    """
    Sequential, Dense, optimizers = _api()
    x, y = datasets.toy_people(dtype=dtype)
    x_new, y_new = datasets.toy_people(dtype=dtype, new=True)
    model = _sequential([Dense(1, activation="sigmoid", input_dim=2)], backend, seed, dtype)
    model.compile(optimizer=optimizers.SGD(learning_rate=learning_rate), loss="mse")
    history = model.fit(x, y, batch_size=1, epochs=epochs, verbose=0, shuffle=False)
    prob = np.asarray(model.predict(x)).reshape(-1)
    prob_new = np.asarray(model.predict(x_new)).reshape(-1)
    train_ok = bool(np.array_equal(prob > 0.5, y.reshape(-1) > 0.5))
    new_ok = bool(np.array_equal(prob_new > 0.5, y_new.reshape(-1) > 0.5))
    losses = _history_dict(history).get("loss", [])
    names = [p[0] for p in datasets.PEOPLE] + [p[0] for p in datasets.PEOPLE_NEW]
    _say(
        verbose,
        f"One sigmoid neuron, squared error, {_epochs(epochs)} of per-sample SGD "
        f"(lr {learning_rate}), backend {_backend_name(model, backend)}",
    )
    for nm, p in zip(names, [*prob, *prob_new]):
        _say(verbose, f"  {nm:8s} P(female) = {p:.3f}")
    _say(verbose, f"  loss {losses[0]:.4f} -> {losses[-1]:.4f}")
    return {
        "probabilities": prob.tolist(),
        "new_probabilities": dict(zip(names[4:], prob_new.tolist())),
        "loss": losses,
        "ok": train_ok and new_ok and losses[-1] < losses[0],
    }


# ------------------------------------------------------------------ nn-10-15-5


def nn_10_15_5(
    backend=None,
    seed=0,
    verbose=False,
    epochs=10_000,
    learning_rate=0.1,
    n=100,
    plot=None,
    dtype="float64",
):
    """The tutorial's ``(10, 15, 5)`` sigmoid network on random data.

    ``Dense(15, "sigmoid")``, ``Dense(5, "sigmoid")``, ``"mse"``, SGD ``lr 0.1``,
    full batch (``batch_size=n``) for 10,000 epochs on
    :func:`fastnn.datasets.random_regression`.  Returns the per-epoch loss curve;
    ``plot="curve.png"`` saves it with ``History.plot`` (needs matplotlib).
    """
    Sequential, Dense, optimizers = _api()
    x, y = datasets.random_regression(n=n, n_in=10, n_out=5, seed=seed, dtype=dtype)
    model = _sequential(
        [Dense(15, activation="sigmoid", input_dim=10), Dense(5, activation="sigmoid")],
        backend,
        seed,
        dtype,
    )
    model.compile(optimizer=optimizers.SGD(learning_rate=learning_rate), loss="mse")
    t0 = time.perf_counter()
    history = model.fit(x, y, batch_size=n, epochs=epochs, verbose=0, shuffle=False, seed=seed)
    train_time = time.perf_counter() - t0
    losses = _history_dict(history)["loss"]
    if plot is not None:
        _save_plot(history, plot)
    _say(
        verbose,
        f"(10, 15, 5) sigmoid network, {_epochs(epochs, 'full-batch epoch')}, lr {learning_rate}, "
        f"backend {_backend_name(model, backend)}",
    )
    for e in sorted({0, len(losses) // 10, len(losses) // 2, len(losses) - 1}):
        _say(verbose, f"  epoch {e + 1:6d}  loss {losses[e]:.6f}")
    _say(verbose, f"  {train_time:.2f} s, {1e6 * train_time / max(epochs, 1):.1f} us/epoch")
    if plot is not None:
        _say(verbose, f"  loss curve saved to {plot}")
    return {"loss": losses, "train_time": train_time, "ok": losses[-1] < losses[0], "plot": plot}


def _save_plot(history, path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
    except ImportError as exc:
        raise ValueError(
            "plotting needs matplotlib: pip install 'fastnn[plot]' (or matplotlib)"
        ) from exc
    result = history.plot()
    fig = getattr(result, "figure", None) or getattr(result, "get_figure", lambda: result)()
    fig.savefig(path, dpi=100)
    import matplotlib.pyplot as plt

    plt.close(fig)


# ---------------------------------------------------------------------- coffee


def coffee(
    backend=None,
    seed=0,
    verbose=False,
    epochs=1000,
    learning_rate=0.05,
    n=200,
    data_seed=2,
    dtype="float64",
):
    """Keras' coffee-roasting example.

    ``Sequential([Dense(3, "sigmoid"), Dense(1, "sigmoid")])``, binary
    cross-entropy, Adam, batch 32 on :func:`fastnn.datasets.coffee_roasting`
    (``n`` examples from ``data_seed``; 200 from seed 2 are the lab's own); inputs
    standardized with the training set's mean and standard deviation (what the
    course's ``Normalization`` layer does).  ``seed``: initial weights and shuffling.
    Accuracy is measured on the training set and on 1,000 fresh examples.
    """
    Sequential, Dense, optimizers = _api()
    x, y = datasets.coffee_roasting(n=n, seed=data_seed, dtype=dtype)
    x_test, y_test = datasets.coffee_roasting(n=1000, seed=data_seed + 1000, dtype=dtype)
    mean, std = x.mean(axis=0), x.std(axis=0)
    xn, xn_test = (x - mean) / std, (x_test - mean) / std
    model = _sequential(
        [Dense(3, activation="sigmoid"), Dense(1, activation="sigmoid")], backend, seed, dtype
    )
    model.compile(
        optimizer=optimizers.Adam(learning_rate=learning_rate),
        loss="binary_crossentropy",
        metrics=["accuracy"],
    )
    history = model.fit(xn, y, batch_size=32, epochs=epochs, verbose=0, seed=seed)
    train_acc = _binary_accuracy(model.predict(xn), y)
    test_acc = _binary_accuracy(model.predict(xn_test), y_test)
    samples = np.array([[200.0, 13.9], [200.0, 17.0]], dtype=dtype)  # the course's two roasts
    sample_prob = np.asarray(model.predict((samples - mean) / std)).reshape(-1)
    losses = _history_dict(history).get("loss", [])
    _say(
        verbose,
        f"Coffee roasting, 2-3-1 sigmoid network, {_epochs(epochs)} (Adam "
        f"{learning_rate}), backend {_backend_name(model, backend)}",
    )
    _say(verbose, f"  {int(y.sum())} good roasts of {n}; loss {losses[0]:.4f} -> {losses[-1]:.4f}")
    _say(verbose, f"  accuracy: train {train_acc:.3f}, 1000 fresh roasts {test_acc:.3f}")
    _say(
        verbose,
        f"  200 C / 13.9 min -> P(good) {sample_prob[0]:.3f}; "
        f"200 C / 17 min -> {sample_prob[1]:.3f}",
    )
    return {
        "train_accuracy": train_acc,
        "test_accuracy": test_acc,
        "sample_probabilities": sample_prob.tolist(),
        "loss": losses,
        # Learned: >= 95% right, and the course's two roasts classified as it shows.
        "ok": train_acc >= 0.95
        and test_acc >= 0.95
        and sample_prob[0] > 0.5
        and sample_prob[1] < 0.5,
    }


def _binary_accuracy(prob, y) -> float:
    return float(np.mean((np.asarray(prob).reshape(-1) > 0.5) == (y.reshape(-1) > 0.5)))


# --------------------------------------------------------------- fashion-mnist


def _fashion_model(hidden, backend, seed, dtype, dropout=0.0):
    from fastnn.layers import Dropout

    _, Dense, _ = _api()
    layers = []
    for units in hidden:
        layers.append(Dense(units, activation="relu"))
        if dropout > 0:
            layers.append(Dropout(dropout))
    layers.append(Dense(10, activation="softmax"))
    return _sequential(layers, backend, seed, dtype)


def _optimizer(name: str, learning_rate: float):
    _, _, optimizers = _api()
    if name == "sgd":
        return optimizers.SGD(learning_rate=learning_rate)
    if name == "adam":
        return optimizers.Adam(learning_rate=learning_rate)
    raise ValueError(f"unknown optimizer {name!r}; valid choices are: 'sgd', 'adam'")


def _compiled_fashion_model(hidden, backend, seed, dtype, optimizer, lr, dropout=0.0):
    model = _fashion_model(hidden, backend, seed, dtype, dropout)
    model.compile(
        optimizer=_optimizer(optimizer, lr),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def _cosine_decay(model, lr, steps) -> None:
    """The optimizer's rate decays from ``lr`` to 0 over ``steps`` updates."""
    from fastnn.optimizers.schedules import CosineDecay

    model.optimizer.learning_rate = CosineDecay(lr, steps)


def _check_fashion_args(limit, save) -> None:
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ValueError(f"limit must be a positive integer, got {limit!r}")
    if save is not None and not Path(save).expanduser().resolve().parent.is_dir():
        raise FileNotFoundError(f"cannot save the model to {save}: its directory does not exist")


def _warm_up(scratch, name, x_train, y_train, x_test, batch_size, seed) -> float:
    """Fit a throwaway model on the real run's shapes (full batches and one partial
    batch), so every kernel the timed fit needs is compiled (or loaded from cache)
    here; returns the seconds it took.  On ``auto`` (``name``) this also waits for a
    background build of numba's trainers that its fit started (a first run on the
    machine): the timed fit then shows auto's steady state, not numpy standing in
    beside a compiler."""
    t0 = time.perf_counter()
    m = min(len(x_train), 2 * batch_size + 1)
    scratch.fit(x_train[:m], y_train[:m], batch_size=batch_size, epochs=1, verbose=0, seed=seed)
    scratch.predict(x_test[:m])
    if name == "auto":
        coldstart.wait_until_ready(x_train.dtype)
    return time.perf_counter() - t0


def fashion_mnist(
    backend=None,
    seed=0,
    verbose=False,
    epochs=10,
    batch_size=256,
    lr=0.1,
    optimizer="sgd",
    hidden=(256,),
    dtype="float32",
    limit=None,
    data=None,
    save=None,
    fit_verbose=0,
    warmup=True,
    dropout=0.0,
    cosine=False,
):
    """An MLP on Fashion-MNIST: 784-256-10 ReLU, softmax + sparse cross-entropy.

    Defaults are d2l's reference run (SGD lr 0.1, batch 256, 10 epochs), whose
    published test accuracy is 0.8394 (from scratch) / 0.8503 (framework).
    ``hidden``: widths of the ReLU layers; ``limit``: use the first ``limit`` training
    and test images only; ``data``: directory of the four ``.gz`` files; ``save``:
    write the trained model there.  ``warmup`` first fits a throwaway copy on a few
    batches so JIT compilation is not part of ``train_time``.  ``dropout``: a Dropout
    after each hidden layer; ``cosine``: ``lr`` decays to 0 (``CosineDecay``).  Returns
    ``test_accuracy`` (argmax of ``predict`` on the test images), ``train_time``
    (seconds in ``fit``), ``warmup_time``, ``history`` and sizes.
    """
    hidden = (hidden,) if isinstance(hidden, int) else tuple(hidden)
    _check_fashion_args(limit, save)
    epochs = chk.check_int("epochs", epochs, low=1)
    batch_size = chk.check_int("batch_size", batch_size, low=1)
    # Build model and optimizer first: bad settings fail before the data is read.
    dropout = chk.check_scalar("dropout", dropout, low=0, high=1, high_open=True)
    model = _compiled_fashion_model(hidden, backend, seed, dtype, optimizer, lr, dropout)
    (x_train, y_train), (x_test, y_test) = datasets.load_fashion_mnist(path=data, dtype=dtype)
    if limit is not None:
        x_train, y_train = x_train[:limit], y_train[:limit]
        x_test, y_test = x_test[:limit], y_test[:limit]
    if cosine:
        _cosine_decay(model, lr, epochs * -(-len(x_train) // batch_size))

    arch = "-".join(str(u) for u in (784, *hidden, 10))
    name = _backend_name(model, backend)
    if verbose:  # before the warm-up, which can take a while (JIT, the python backend)
        extras = (f", dropout {dropout}" if dropout else "") + (", cosine decay" if cosine else "")
        settings = f"{optimizer} lr {lr}{extras}, batch {batch_size}, {_epochs(epochs)}, {dtype}"
        print(
            f"Fashion-MNIST MLP {arch}, {settings}, backend {name}, {len(x_train)} training "
            f"images, {len(x_test)} test images",
            flush=True,
        )

    warmup_time = 0.0
    if warmup:
        scratch = _compiled_fashion_model(hidden, backend, seed, dtype, optimizer, lr, dropout)
        warmup_time = _warm_up(scratch, name, x_train, y_train, x_test, batch_size, seed)

    t0 = time.perf_counter()
    history = model.fit(
        x_train, y_train, batch_size=batch_size, epochs=epochs, verbose=fit_verbose, seed=seed
    )
    train_time = time.perf_counter() - t0
    test_accuracy = float(np.mean(np.argmax(model.predict(x_test), axis=1) == y_test))
    if save is not None:
        model.save(save)
    if verbose:
        print(
            f"test accuracy {test_accuracy:.4f}  train time {train_time:.2f} s "
            f"({train_time / epochs:.3f} s/epoch)  backend {name}"
        )
        if save is not None:
            print(f"model saved to {save}")
    times = {"train_time": train_time, "warmup_time": warmup_time}
    sizes = {"epochs": epochs, "n_train": len(x_train), "n_test": len(x_test)}
    return {"backend": name, "architecture": arch, "test_accuracy": test_accuracy, **times,
            **sizes, "history": _history_dict(history), "ok": True}  # fmt: skip


#: The target of ``fashion-mnist-best`` (issue 10): above the dataset benchmark's best
#: MLP (0.8833) and the plain 784-256-128-10 Adam net (~0.891 here), within
#: :data:`BEST_SECONDS` of training on a 2-core machine (numba backend).
BEST_ACCURACY = 0.90
BEST_SECONDS = 120.0


def fashion_mnist_best(
    backend=None, seed=0, verbose=False, epochs=30, dtype="float32", limit=None, data=None,
    fit_verbose=0, warmup=True,
):  # fmt: skip
    """A regularized MLP on Fashion-MNIST reaching >= 0.90 test accuracy.

    784-512-256-10 ReLU/softmax with ``Dropout(0.3)`` after each hidden layer, Adam
    (lr 1e-3, Keras' form) with cosine decay to 0 over the run, batch 128, 30 epochs.
    Dropout lets the wider net train longer without over-fitting; the decaying rate
    settles it.  Same arguments and result as :func:`fashion_mnist`; ``"ok"`` says
    whether the full test set reached :data:`BEST_ACCURACY` (always True with
    ``limit``, whose small runs only check that it works).
    """
    result = fashion_mnist(
        backend=backend, seed=seed, verbose=verbose, epochs=epochs, batch_size=128, lr=1e-3,
        optimizer="adam", hidden=(512, 256), dtype=dtype, limit=limit, data=data,
        fit_verbose=fit_verbose, warmup=warmup, dropout=0.3, cosine=True,
    )  # fmt: skip
    reached = result["test_accuracy"] >= BEST_ACCURACY
    result["ok"] = reached or limit is not None
    if verbose and limit is None:
        within = result["train_time"] <= BEST_SECONDS
        print(
            f"target: test accuracy >= {BEST_ACCURACY} ({'reached' if reached else 'MISSED'}) "
            f"in <= {BEST_SECONDS:.0f} s of training ({'yes' if within else 'no'})"
        )
    return result


#: Command-line name -> example function.
EXAMPLES = {
    "gates": gates,
    "xor": xor,
    "neuron": neuron,
    "nn-10-15-5": nn_10_15_5,
    "coffee": coffee,
    "fashion-mnist": fashion_mnist,
    "fashion-mnist-best": fashion_mnist_best,
}


def run(name: str, **kwargs) -> dict:
    """Run the example called ``name`` (a key of :data:`EXAMPLES`)."""
    if name not in EXAMPLES:
        raise ValueError(f"unknown example {name!r}; valid examples are: {', '.join(EXAMPLES)}")
    return EXAMPLES[name](**kwargs)
