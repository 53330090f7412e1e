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

Sample weights.  scikit-learn normalizes a mini-batch by its weight sum ``S``: loss
``sum_i w_i loss_i / S + alpha/2 ||W||^2 / S``, gradient ``(sum_i w_i dloss_i + alpha W)
/ S``; the contract's ``train_batches`` divides by the batch's rows ``nb`` instead
(``sum_i w_i loss_i / nb``, Keras' reduction, and ``1/nb`` for ``penalty_per_row``).
Given the raw weights, the contract's gradient is therefore scikit-learn's times
``S / (c nb)``, L2 term included -- a factor per batch.  SGD is linear in ``lr * g``,
so per-batch learning rates ``lrs = c * lr * nb / S`` take scikit-learn's steps exactly,
epochs still fused.  Adam is not (its epsilon, and ``m``/``v`` mixing batches), and no
weight rescaling alone can move the L2 term's divisor from ``nb`` to ``S``: weighted
Adam runs one call per batch, with the weights rescaled by ``nb / S`` and the L2
coefficient ``alpha / (2 c S)`` of that batch.  L-BFGS (one batch) does the same
through the loss ops.  Equal weights do not cancel (the L2 term is divided by their
sum); all-one weights are the unweighted problem.
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
    ``loss_scale`` as in the module table; ``sample_weight``: ``(n,)`` float64 weights
    ``>= 0`` (scikit-learn's meaning, see the module notes), or None.
    """

    X: np.ndarray
    T: np.ndarray
    head: str
    grad_scale: float
    loss_scale: float
    sample_weight: np.ndarray | None = None


def make_problem(X, Y, out_activation, sample_weight=None):
    """The :class:`Problem` for scikit-learn's 2-D targets ``Y: (n, k)``."""
    k = Y.shape[1]
    X = np.ascontiguousarray(X)
    w = None if sample_weight is None else np.asarray(sample_weight, np.float64)
    if out_activation == "softmax":
        T = np.argmax(Y, axis=1).astype(np.int64)
        return Problem(X, T, "softmax_cross_entropy", 1.0, 1.0, w)
    T = np.ascontiguousarray(Y, dtype=X.dtype)
    if out_activation == "logistic":
        return Problem(X, T, "sigmoid_cross_entropy", float(k), float(k), w)
    return Problem(X, T, "mse", k / 2, 0.5, w)


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
    """Train ``len(order) // n`` consecutive epochs: scikit-learn's updates.

    ``order: (E * n,)`` holds each epoch's row order; ``t0`` samples were seen before
    (``invscaling``).  Returns scikit-learn's loss of each epoch ``(E,)``:
    ``sum_b batch_loss_b * rows_b / n`` (L2 term included).  One ``train_batches`` call
    runs all the epochs, except for weighted Adam (one call per batch: module notes).
    """
    n = len(prob.X)
    n_epochs = len(order) // n
    rows = batch_rows(n, batch_size)
    order = order.astype(np.int64, copy=False)
    if prob.sample_weight is not None and opt.name == "adam":
        losses = train_weighted_adam(ops, Ws, bs, activations, prob, order, batch_size, opt, alpha)
    else:
        losses = train_fused(ops, Ws, bs, activations, prob, order, batch_size, opt, alpha, t0)
    return prob.loss_scale * (losses.reshape(n_epochs, len(rows)) @ rows) / n


def train_fused(ops, Ws, bs, activations, prob, order, batch_size, opt, alpha, t0):
    """All epochs of ``order`` in ONE ``train_batches`` call; each batch's loss
    ``(E * n_batches,)`` in scikit-learn's normalization divided by ``loss_scale``.

    With sample weights (SGD only) the raw weights go in and each batch's learning rate
    is multiplied by ``nb / S`` (module notes), its reported loss too.
    """
    n = len(prob.X)
    n_epochs = len(order) // n
    rows = batch_rows(n, batch_size)
    c = prob.grad_scale
    dtype = prob.X.dtype
    kwargs = {}
    if alpha > 0:
        kwargs["penalties"] = [(0.0, alpha / (2 * c))] * len(Ws)
        kwargs["penalty_per_row"] = True
    if n_epochs > 1:
        kwargs["epoch_size"] = n
    lrs = None
    if opt.schedule == "invscaling":
        lrs = np.repeat(c * opt.epoch_rates(n_epochs, t0, n), len(rows))
    ratio = None
    if prob.sample_weight is not None:
        ratio = (rows / batch_weight_sums(prob.sample_weight, order, n, batch_size)).ravel()
        lrs = (c * opt.learning_rate if lrs is None else lrs) * ratio
        kwargs["sample_weight"] = prob.sample_weight.astype(dtype)
    if lrs is not None:
        kwargs["lrs"] = lrs
    hyper = tuple(dtype.type(h) for h in opt.hyper(c))
    # The arguments are built in the checked form (C-contiguous arrays of one dtype,
    # int64 rows and labels, hyper-parameters of the dtype): no per-call checks.
    losses, _ = ops.run_prevalidated(
        "train_batches", Ws, bs, activations, prob.X, prob.T, order, batch_size, prob.head,
        opt.name, opt.state, hyper, opt.step, **kwargs,
    )  # fmt: skip
    opt.step += len(losses)
    return losses if ratio is None else losses * ratio


def train_weighted_adam(ops, Ws, bs, activations, prob, order, batch_size, opt, alpha):
    """Weighted Adam, one ``train_batches`` call per batch; losses as :func:`train_fused`.

    Per epoch, row ``i`` of batch ``b`` gets the weight ``w_i * nb / S_b`` (each row is
    in one batch of an epoch, so one ``(n,)`` array serves the epoch's calls): the
    contract's ``sum w' loss / nb`` is then scikit-learn's ``sum w loss / S``.  The L2
    coefficient ``alpha / (2 c S_b)`` (``scale = 1``) is the batch's own.
    """
    n = len(prob.X)
    rows = batch_rows(n, batch_size)
    counts = rows.astype(np.int64)
    sums = batch_weight_sums(prob.sample_weight, order, n, batch_size)
    c = prob.grad_scale
    dtype = prob.X.dtype
    hyper = tuple(dtype.type(h) for h in opt.hyper(c))
    w = np.empty(n, dtype)
    losses = np.empty(sums.shape)
    for e in range(sums.shape[0]):
        epoch = order[e * n : (e + 1) * n]
        w[epoch] = prob.sample_weight[epoch] * np.repeat(rows / sums[e], counts)
        for j, start in enumerate(range(0, n, batch_size)):
            kwargs = {"sample_weight": w}
            if alpha > 0:
                kwargs["penalties"] = [(0.0, alpha / (2 * c * sums[e, j]))] * len(Ws)
            value, _ = ops.run_prevalidated(
                "train_batches", Ws, bs, activations, prob.X, prob.T,
                epoch[start : start + batch_size], batch_size, prob.head, opt.name,
                opt.state, hyper, opt.step, **kwargs,
            )  # fmt: skip
            opt.step += 1
            losses[e, j] = value[0]
    return losses.ravel()


def batch_weight_sums(sample_weight, order, n, batch_size):
    """``S: (E, n_batches)`` float64, the weight sum of each batch of each epoch in ``order``.

    A zero sum is scikit-learn's ``ZeroDivisionError`` (its ``np.average`` of the batch
    loss), raised here before any update.
    """
    starts = np.arange(0, n, batch_size)
    sums = np.add.reduceat(sample_weight[order].reshape(-1, n), starts, axis=1)
    if not np.all(sums > 0):
        j = np.argwhere(~(sums > 0))[0][1]
        raise ZeroDivisionError(
            "Weights sum to zero, can't be normalized: the sample_weight of mini-batch "
            f"{j} (positions {starts[j]} to {min(starts[j] + batch_size, n) - 1} of an "
            "epoch's row order) sums to zero, and scikit-learn's MLP divides each "
            "mini-batch's loss by its weight sum. Use a larger batch_size, shuffle=True, "
            "or fewer zero weights."
        )
    return sums


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
    """scikit-learn's full-batch objective and its gradients ``[dW0.., db0..]``.

    With sample weights ``w`` (sum ``S``) the loss ops get ``w * n / S`` (their
    ``sum w' loss / n`` is then ``sum w loss / S``) and the L2 term is divided by ``S``.
    """
    n = len(prob.X)
    c = prob.grad_scale
    weights, total = None, n
    if prob.sample_weight is not None:
        total = float(prob.sample_weight.sum())
        weights = (prob.sample_weight * (n / total)).astype(prob.X.dtype)
    Zs, As = forward(ops, Ws, bs, activations, prob.X)
    if prob.head == "softmax_cross_entropy":
        value, dY = ops.softmax_cross_entropy(Zs[-1], prob.T, weights=weights)
    elif prob.head == "sigmoid_cross_entropy":
        value, dY = ops.sigmoid_cross_entropy(Zs[-1], prob.T, weights=weights)
    else:
        value, dY = ops.loss(prob.head, As[-1], prob.T, weights=weights)
    value *= prob.loss_scale
    dWs, dbs = [None] * len(Ws), [None] * len(Ws)
    for l in reversed(range(len(Ws))):
        dY, dWs[l], dbs[l] = ops.dense_backward(dY, As[l], Ws[l], Zs[l], As[l + 1], activations[l])
        if alpha > 0:
            pen = ops.penalty(Ws[l], dWs[l], 0.0, alpha / (2 * c), 1.0 / total)
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
