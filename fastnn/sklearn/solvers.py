"""Training engines of the scikit-learn MLP estimators, on fastnn's op contract.

scikit-learn's losses and fastnn's heads average differently; :class:`Problem`
records one factor ``grad_scale`` (``c``) with ``fastnn's gradient = scikit-learn's / c``
and one factor ``loss_scale`` that turns fastnn's reported batch loss back into
scikit-learn's:

=========================  ===========================  ==========  ============
output (k units)           scikit-learn's loss           c           loss_scale
=========================  ===========================  ==========  ============
softmax (multiclass)       ``-sum_j y log p`` / n        1           1
logistic (binary, k=1)     binary log loss / n           1           1
logistic (multilabel, k)   sum over k of mean over n     k           k
identity (regression)      ``mean((y-p)^2) / 2``         k / 2       1 / 2
=========================  ===========================  ==========  ============

(scikit-learn's regression gradient is ``(p - y) / n`` per output, i.e. the gradient of
the *sum* over outputs of half the mean squared error, while its reported loss is the
*mean* over outputs; fastnn's ``"mse"`` head is the mean over all ``n*k`` elements.)

The optimizer then sees a gradient ``1/c`` times scikit-learn's, and is made to take
scikit-learn's steps exactly: SGD's learning rate is multiplied by ``c`` (momentum and
Nesterov are linear in ``lr * g``), Adam's epsilon is divided by ``c`` (``m`` scales
by ``1/c``, ``sqrt(v)`` by ``1/c``), and the L2 coefficient is ``alpha / (2 c)`` per
row of the batch (the contract's ``penalties`` with ``penalty_per_row=True``).  The
reported loss includes the penalty, as scikit-learn's does; for multi-output
regression (k > 1) with ``alpha > 0`` the stochastic solvers' ``loss_curve_`` counts
the L2 term ``1/k`` times scikit-learn's (the two cannot be separated after a fused
call); L-BFGS reports scikit-learn's value for every k.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import scipy.optimize
from sklearn.exceptions import ConvergenceWarning

from fastnn.dispatch import get_backend, get_ops, load_backend, parse_backend

#: scikit-learn's hidden activation names -> the contract's.
ACTIVATIONS = {"identity": "linear", "logistic": "sigmoid", "tanh": "tanh", "relu": "relu"}

#: scikit-learn's ``out_activation_`` -> the contract's activation used by ``predict``.
OUT_ACTIVATIONS = {"softmax": "softmax", "logistic": "sigmoid", "identity": "linear"}

#: At most this many rows (epochs x n_samples) go to one ``train_batches`` call: the
#: order array stays at 8 MB and Ctrl-C is honoured within a fraction of a second.
FUSE_ROWS = 1 << 20


@dataclass
class Problem:
    """One training problem in the contract's terms.

    ``X: (n, d)``; ``T``: ``(n,)`` int64 labels for the ``"softmax_cross_entropy"`` head,
    else ``(n, k)`` of ``X``'s dtype; ``head`` in the contract's HEADS; ``grad_scale`` and
    ``loss_scale`` as in the module table.
    """

    X: np.ndarray
    T: np.ndarray
    head: str
    grad_scale: float
    loss_scale: float


def make_problem(X, Y, out_activation):
    """The :class:`Problem` for scikit-learn's 2-D targets ``Y: (n, k)``."""
    k = Y.shape[1]
    X = np.ascontiguousarray(X)
    if out_activation == "softmax":
        return Problem(X, np.argmax(Y, axis=1).astype(np.int64), "softmax_cross_entropy", 1.0, 1.0)
    T = np.ascontiguousarray(Y, dtype=X.dtype)
    if out_activation == "logistic":
        return Problem(X, T, "sigmoid_cross_entropy", float(k), float(k))
    return Problem(X, T, "mse", k / 2, 0.5)


def train_activations(hidden, n_layers):
    """Contract activations per layer while training: the heads take logits (``"linear"``)."""
    return [ACTIVATIONS[hidden]] * (n_layers - 1) + ["linear"]


def prediction_ops(backend):
    """The op object a fitted estimator predicts with: ``get_ops(backend)``.

    A model fitted on the ``numba`` backend can be unpickled where Numba cannot be
    imported (a Dask worker, a slim serving image).  Its arrays are plain NumPy and
    ``dense_forward`` agrees across backends to rounding, so it then predicts through
    the ``numpy`` backend, with a warning, instead of failing.
    """
    name = get_backend() if backend is None else parse_backend(backend)
    if name == "numba" and load_backend("numba") is None:
        warnings.warn(
            "fastnn: this model's backend is 'numba' but Numba cannot be imported in this "
            "process; predicting through the 'numpy' backend (same results to rounding).",
            RuntimeWarning,
            stacklevel=3,
        )
        name = "numpy"
    return get_ops(name)


def forward(ops, Ws, bs, activations, X):
    """``(Zs, As)``: pre-activations and outputs per layer (``As[0] = X``)."""
    As, Zs = [X], []
    for W, b, act in zip(Ws, bs, activations):
        Z, A = ops.dense_forward(As[-1], W, b, act)
        Zs.append(Z)
        As.append(A)
    return Zs, As


class Optimizer:
    """scikit-learn's SGD/Adam optimizer (schedule, stopping) over the contract's state.

    ``state`` holds the contract's state arrays per parameter (``W0, b0, W1, b1, ...``);
    ``step`` counts updates since creation (Adam's ``t``); ``learning_rate`` is
    scikit-learn's current rate (``invscaling``/``adaptive`` change it between epochs).
    """

    def __init__(self, est, Ws, bs):
        self.name = est.solver
        n_state = 1 if self.name == "sgd" else 2
        params = [P for W, b in zip(Ws, bs) for P in (W, b)]  # the contract's order
        self.state = [tuple(np.zeros_like(P) for _ in range(n_state)) for P in params]
        self.step = 0
        self.learning_rate_init = float(est.learning_rate_init)
        self.learning_rate = self.learning_rate_init
        self.schedule = est.learning_rate if self.name == "sgd" else "constant"
        self.power_t = float(est.power_t)
        self.momentum = float(est.momentum)
        self.nesterov = bool(est.nesterovs_momentum)
        self.betas = (float(est.beta_1), float(est.beta_2))
        self.epsilon = float(est.epsilon)

    def as_dtype(self, dtype):
        """Cast the state arrays (a ``partial_fit`` on data of another dtype)."""
        self.state = [tuple(np.ascontiguousarray(S, dtype) for S in Ss) for Ss in self.state]

    def hyper(self, c):
        """The contract's hyper-parameters taking scikit-learn's steps for gradients ``g / c``."""
        if self.name == "sgd":
            nesterov = 1.0 if self.nesterov and self.momentum > 0 else 0.0
            return (c * self.learning_rate, self.momentum, nesterov, 0.0)
        return (self.learning_rate, *self.betas, self.epsilon / c, 0.0, 1.0)

    def epoch_rates(self, n_epochs, t0, n_samples):
        """scikit-learn's learning rate of each of the next epochs, ``t0`` samples seen.

        ``invscaling`` sets ``lr_init / (t + 1)**power_t`` at every epoch's end, ``t`` the
        samples seen so far; the other schedules change the rate only when
        :meth:`trigger_stopping` runs, which happens between calls.
        """
        rates = np.full(n_epochs, self.learning_rate)
        if self.schedule == "invscaling":
            t = t0 + n_samples * np.arange(1, n_epochs)
            rates[1:] = self.learning_rate_init / (t + 1.0) ** self.power_t
        return rates

    def iteration_ends(self, t):
        if self.schedule == "invscaling":
            self.learning_rate = self.learning_rate_init / (t + 1) ** self.power_t

    def trigger_stopping(self, msg, verbose):
        """True to stop; ``adaptive`` SGD divides the rate by 5 instead (until 1e-6)."""
        if self.schedule != "adaptive":
            if verbose:
                print(msg + " Stopping.")
            return True
        if self.learning_rate <= 1e-6:
            if verbose:
                print(msg + " Learning rate too small. Stopping.")
            return True
        self.learning_rate /= 5.0
        if verbose:
            print(f"{msg} Setting learning rate to {self.learning_rate:f}")
        return False


def batch_rows(n_samples, batch_size):
    """Rows of each batch of one epoch ``(n_batches,)``: scikit-learn's ``gen_batches``."""
    n_batches = -(-n_samples // batch_size)
    rows = np.full(n_batches, batch_size, dtype=np.float64)
    rows[-1] = n_samples - (n_batches - 1) * batch_size
    return rows


def train_epochs(ops, Ws, bs, activations, prob, order, batch_size, opt, alpha, t0):
    """Train ``len(order) // n`` consecutive epochs in ONE ``train_batches`` call.

    ``order: (E * n,)`` holds each epoch's row order; ``t0`` samples were seen before
    (``invscaling``).  Returns scikit-learn's loss of
    each epoch ``(E,)``: ``sum_b batch_loss_b * rows_b / n`` (L2 term included).
    """
    n = len(prob.X)
    n_epochs = len(order) // n
    rows = batch_rows(n, batch_size)
    c = prob.grad_scale
    kwargs = {}
    if alpha > 0:
        kwargs["penalties"] = [(0.0, alpha / (2 * c))] * len(Ws)
        kwargs["penalty_per_row"] = True
    if n_epochs > 1:
        kwargs["epoch_size"] = n
    if opt.schedule == "invscaling":
        rates = opt.epoch_rates(n_epochs, t0, n)
        kwargs["lrs"] = np.repeat(c * rates, len(rows))
    hyper = tuple(prob.X.dtype.type(h) for h in opt.hyper(c))
    # The arguments are built in the checked form (C-contiguous arrays of one dtype,
    # int64 rows and labels, hyper-parameters of the dtype): no per-call checks.
    losses, _ = ops.run_prevalidated(
        "train_batches", Ws, bs, activations, prob.X, prob.T,
        order.astype(np.int64, copy=False), batch_size, prob.head, opt.name, opt.state,
        hyper, opt.step, **kwargs,
    )  # fmt: skip
    opt.step += len(losses)
    return prob.loss_scale * (losses.reshape(n_epochs, len(rows)) @ rows) / n


def fusable_epochs(n_iter_no_change, no_improvement_count, remaining, n_samples):
    """Epochs one call may run without skipping a stopping decision.

    The count of epochs without improvement grows by at most one per epoch and the
    solver acts when it exceeds ``n_iter_no_change``: the earliest epoch that can stop
    (or, for ``adaptive``, lower the rate) is ``n_iter_no_change + 1 - count`` ahead.
    """
    limit = max(1, FUSE_ROWS // n_samples)
    if np.isfinite(n_iter_no_change):
        limit = min(limit, max(1, int(n_iter_no_change) + 1 - no_improvement_count))
    return max(1, min(limit, remaining))


def pack(arrays):
    """Parameters as one float64 vector: all ``W`` then all ``b`` (scikit-learn's order)."""
    return np.concatenate([A.ravel() for A in arrays]).astype(np.float64, copy=False)


def unpack(x, arrays):
    """Copy the vector ``x`` back into ``arrays`` (in place, cast to their dtype)."""
    start = 0
    for A in arrays:
        A[...] = x[start : start + A.size].reshape(A.shape)
        start += A.size


def loss_and_grad(ops, Ws, bs, activations, prob, alpha):
    """scikit-learn's full-batch objective and its gradients ``[dW0.., db0..]``."""
    n = len(prob.X)
    c = prob.grad_scale
    Zs, As = forward(ops, Ws, bs, activations, prob.X)
    if prob.head == "softmax_cross_entropy":
        value, dY = ops.softmax_cross_entropy(Zs[-1], prob.T)
    elif prob.head == "sigmoid_cross_entropy":
        value, dY = ops.sigmoid_cross_entropy(Zs[-1], prob.T)
    else:
        value, dY = ops.loss(prob.head, As[-1], prob.T)
    value *= prob.loss_scale
    dWs, dbs = [None] * len(Ws), [None] * len(Ws)
    for l in reversed(range(len(Ws))):
        dY, dWs[l], dbs[l] = ops.dense_backward(dY, As[l], Ws[l], Zs[l], As[l + 1], activations[l])
        if alpha > 0:
            pen = ops.penalty(Ws[l], dWs[l], 0.0, alpha / (2 * c), 1.0 / n)
            value += c * pen
    return value, [c * G for G in dWs + dbs]


def fit_lbfgs(ops, Ws, bs, activations, prob, est):
    """scipy's L-BFGS-B on :func:`loss_and_grad`; returns ``(n_iter, loss)``."""
    params = Ws + bs

    def objective(x):
        unpack(x, params)
        value, grads = loss_and_grad(ops, Ws, bs, activations, prob, float(est.alpha))
        return value, pack(grads)

    res = scipy.optimize.minimize(
        objective,
        pack(params),
        method="L-BFGS-B",
        jac=True,
        options={"maxfun": est.max_fun, "maxiter": est.max_iter, "gtol": est.tol},
    )
    unpack(res.x, params)
    if res.status != 0:
        message = res.message.decode() if isinstance(res.message, bytes) else res.message
        warnings.warn(
            f"lbfgs failed to converge after {res.nit} iteration(s) (status={res.status}):\n"
            f"{message}\n\nIncrease the number of iterations to improve the convergence "
            f"(max_iter={est.max_iter}).\nYou might also want to scale the data.",
            ConvergenceWarning,
            stacklevel=3,
        )
    return min(res.nit, est.max_iter), float(res.fun)
