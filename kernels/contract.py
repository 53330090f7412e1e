"""The op contract: the single source of truth every backend implements.

Each backend (``python``, ``numpy``, ``numba``) subclasses :class:`Ops` and
implements every method below with exactly these signatures.  Backends may
assume their inputs were validated at the API edge (``fastnn.dispatch``):

* arrays are C-contiguous, 2-D batch-major (``(n, features)``) unless stated;
* all floating arrays of one call share one dtype, float32 or float64, and the
  outputs keep that dtype;
* shapes agree (``X: (n, in)``, ``W: (in, out)``, ``b: (out,)``);
* ``activation`` / loss ``name`` are members of :data:`ACTIVATIONS` / :data:`LOSSES`;
* integer ``labels`` lie in ``[0, k)``;
* optimizer scalars (``lr``, ``momentum``, ...) are already of the arrays' dtype;
  ``penalty``'s coefficients, dropout rates, seeds and ``negative_slope`` are Python
  floats / ints; ``weights`` / ``sample_weight`` are finite, ``>= 0``, of the arrays' dtype.

Nothing in a backend validates; nothing outside a backend computes.

Issue 10 grew the contract: the ops :data:`NEW_OPS` (``rmsprop_update``, ``penalty``,
``dropout_mask``), the activations :data:`NEW_ACTIVATIONS`, optimizer options (the full
hyper-parameter lists of :data:`OPTIMIZERS`) and keyword-only options on the existing
ops and on ``train_batches``.  Every backend (``python``, ``numpy``, ``numba``) and the
validating edge implement all of it.
"""

from __future__ import annotations

import abc

import numpy as np

#: Activations with a usable derivative.  The names appended by issue 10
#: (:data:`NEW_ACTIVATIONS`) come last, so every earlier integer code (index) is kept.
DIFFERENTIABLE_ACTIVATIONS: tuple[str, ...] = (
    "linear", "sigmoid", "relu", "tanh", "softmax",
    "leaky_relu", "elu", "gelu", "softplus", "silu",
)  # fmt: skip

#: Activations a dense layer can apply: the differentiable ones and ``"step"``
#: (Heaviside, ``Z >= 0 -> 1``), forward-only: it exists for Rosenblatt's perceptron and
#: has no gradient.  See :meth:`Ops.dense_forward` for the exact definitions.
ACTIVATIONS: tuple[str, ...] = (
    *DIFFERENTIABLE_ACTIVATIONS[:5],
    "step",
    *DIFFERENTIABLE_ACTIVATIONS[5:],
)

#: Activations added for training (issue 10), all differentiable.
NEW_ACTIVATIONS: tuple[str, ...] = DIFFERENTIABLE_ACTIVATIONS[5:]

#: Aliases of :data:`ACTIVATIONS` / :data:`DIFFERENTIABLE_ACTIVATIONS` from the staged
#: rollout of issue 10, kept for the validating edge (``fastnn.dispatch.checked``).
ALL_ACTIVATIONS = ACTIVATIONS
ALL_DIFFERENTIABLE_ACTIVATIONS = DIFFERENTIABLE_ACTIVATIONS

#: ``leaky_relu``'s slope for ``z <= 0`` when none is given (Keras 3's
#: ``keras.activations.leaky_relu`` default; note ``keras.layers.LeakyReLU`` uses 0.3).
LEAKY_RELU_SLOPE: float = 0.2

#: Losses computed by :meth:`Ops.loss`.
LOSSES: tuple[str, ...] = ("mse", "binary_crossentropy", "categorical_crossentropy")

#: Clip for probabilities inside logarithms (Keras' ``epsilon()``): ``log(1e-7)``
#: is about -16, so a confidently wrong prediction costs a large but finite loss
#: and its gradient stays finite.  Used by both cross-entropies in :meth:`Ops.loss`.
PROB_EPS: float = 1e-7

#: Names of the ops, in contract order.  Adding an op means adding it here,
#: to :class:`Ops`, to every backend and to the agreement tests.
OP_NAMES: tuple[str, ...] = (
    "dense_forward",
    "dense_backward",
    "loss",
    "softmax_cross_entropy",
    "sigmoid_cross_entropy",
    "sgd_update",
    "adam_update",
    "rmsprop_update",
    "penalty",
    "dropout_mask",
    "train_batches",
)

#: Steps of the default :meth:`Ops.train_batches` that a backend may override to
#: run them faster with the same numbers (within the dtype's tolerance).  Not ops:
#: the dispatcher never routes or checks them; only a backend's own
#: ``train_batches`` calls them.
COMPOSITION_HOOKS: tuple[str, ...] = ("dense_backward_sgd",)

#: Ops added by issue 10 (abstract, as every op but ``train_batches``).
NEW_OPS: tuple[str, ...] = ("rmsprop_update", "penalty", "dropout_mask")

#: Output heads :meth:`Ops.train_batches` trains against.  The two fused heads take
#: logits (the last activation is ``"linear"``) and use the stable logit ops.
LOGIT_HEADS: tuple[str, ...] = ("softmax_cross_entropy", "sigmoid_cross_entropy")
HEADS: tuple[str, ...] = (*LOGIT_HEADS, *LOSSES)

#: Every optimizer of the contract: state arrays per parameter and ALL hyper-parameter
#: names, in order.  A caller may omit trailing entries past the required ones
#: (:data:`HYPER_REQUIRED`); omitted entries are 0, so ``(lr, momentum)`` and
#: ``(lr, beta1, beta2, eps)`` keep their meaning exactly.  ``nesterov`` and
#: ``eps_outside`` are flags: 0 or 1 (any nonzero value means 1).  Update rules:
#: :meth:`Ops.sgd_update`, :meth:`Ops.adam_update`, :meth:`Ops.rmsprop_update`.
OPTIMIZERS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "sgd": (("velocity",), ("lr", "momentum", "nesterov", "weight_decay")),
    "adam": (("m", "v"), ("lr", "beta1", "beta2", "eps", "weight_decay", "eps_outside")),
    "rmsprop": (("ms", "mom"), ("lr", "rho", "momentum", "eps", "weight_decay")),
}

#: Alias of :data:`OPTIMIZERS` from the staged rollout of issue 10 (validating edge).
ALL_OPTIMIZERS = OPTIMIZERS

#: Number of leading hyper-parameters a caller must give, per optimizer.
HYPER_REQUIRED: dict[str, int] = {"sgd": 2, "adam": 4, "rmsprop": 4}


def complete_hyper(optimizer: str, hyper) -> tuple:
    """``hyper`` with its omitted trailing entries filled with 0 (length of
    ``OPTIMIZERS[optimizer][1]``)."""
    n = len(OPTIMIZERS[optimizer][1])
    return tuple(hyper) + (0,) * (n - len(hyper))


def plain_sgd(optimizer: str, hyper) -> bool:
    """SGD without momentum, Nesterov or weight decay (``hyper`` complete): its step
    ``W -= lr dW`` reads no state and may fold into the weight-gradient product."""
    return optimizer == "sgd" and not any(hyper[1:])


def batch_bounds(m: int, batch_size: int, epoch_size: int | None = None) -> list[tuple[int, int]]:
    """``(start, stop)`` positions in ``order`` of each batch of :meth:`Ops.train_batches`.

    ``epoch_size=None``: ``[j*B, min((j+1)*B, m))`` for ``j < ceil(m/B)``.  Otherwise
    ``order`` holds ``E = m // epoch_size`` consecutive epochs and batching restarts at
    each epoch start ``e*epoch_size``: ``ceil(epoch_size/B)`` batches per epoch, the
    last of each epoch possibly smaller (rows past ``E*epoch_size`` are not used; the
    edge requires ``m`` to be a multiple of ``epoch_size``).
    """
    if epoch_size is None:
        return [(s, min(s + batch_size, m)) for s in range(0, m, batch_size)]
    return [
        (e * epoch_size + s, e * epoch_size + min(s + batch_size, epoch_size))
        for e in range(m // epoch_size)
        for s in range(0, epoch_size, batch_size)
    ]


def count_batches(m: int, batch_size: int, epoch_size: int | None = None) -> int:
    """``len(batch_bounds(m, batch_size, epoch_size))``, without building the list."""
    if epoch_size is None:
        return -(-m // batch_size)
    return (m // epoch_size) * -(-epoch_size // batch_size)


# --------------------------------------------------------------------------- dropout
# A counter-based generator: the keep decision of every element is a pure function of
# (seed, step, layer, index), so every backend produces the same mask with no RNG state.
MASK64: int = (1 << 64) - 1
#: splitmix64's increment (2^64 / golden ratio) and its finalizer's multipliers
#: (Steele, Lea & Flood 2014; Stafford's "Mix13").
SPLITMIX_GAMMA: int = 0x9E3779B97F4A7C15
SPLITMIX_M1: int = 0xBF58476D1CE4E5B9
SPLITMIX_M2: int = 0x94D049BB133111EB


def mix64(x: int) -> int:
    """splitmix64's finalizer, a bijection of 64-bit integers (Python ints, masked)::

    x ^= x >> 30; x *= 0xBF58476D1CE4E5B9
    x ^= x >> 27; x *= 0x94D049BB133111EB
    x ^= x >> 31                              (all mod 2^64)
    """
    x &= MASK64
    x = ((x ^ (x >> 30)) * SPLITMIX_M1) & MASK64
    x = ((x ^ (x >> 27)) * SPLITMIX_M2) & MASK64
    return x ^ (x >> 31)


def dropout_key(seed: int, step: int, layer: int) -> int:
    """The 64-bit key of one (seed, step, layer)::

        key = mix64(mix64(mix64(seed + GAMMA) ^ step) ^ layer)    (mod 2^64)

    ``seed`` is any integer (taken mod 2^64), ``step`` the 1-based global update
    number, ``layer`` the 0-based index of the layer whose output is dropped.
    """
    return mix64(mix64(mix64((seed & MASK64) + SPLITMIX_GAMMA) ^ step) ^ layer)


def dropout_keep(seed: int, step: int, layer: int, index: int, rate: float) -> bool:
    """Whether element ``index`` (``i*width + c`` for row ``i``, unit ``c`` of the batch)
    of layer ``layer``'s output is kept in update ``step``::

        h = mix64(key + (index + 1) * GAMMA)          (mod 2^64; the (index+1)-th
                                                       output of splitmix64 seeded
                                                       with key = dropout_key(...))
        u = (h >> 11) * 2^-53                          (top 53 bits: uniform in [0, 1))
        keep  iff  u >= rate                           (compared in float64)

    The definition every backend implements (python ints masked to 64 bits, numpy and
    numba ``uint64``); P(keep) = 1 - rate up to 2^-53.
    """
    h = mix64(dropout_key(seed, step, layer) + (index + 1) * SPLITMIX_GAMMA)
    return (h >> 11) * 2.0**-53 >= rate


class StepBackwardError(ValueError):
    """Raised by :meth:`Ops.dense_backward` for the non-differentiable ``"step"``."""

    def __init__(self) -> None:
        super().__init__(
            "activation 'step' (Heaviside) has no gradient: it is forward-only, for the "
            "perceptron learning rule. Use 'sigmoid' or 'tanh' to train with backpropagation."
        )


class Ops(abc.ABC):
    """One CPU backend implementing the dense-layer ops.

    Notation follows the math: ``X`` layer input, ``W`` weights, ``b`` bias,
    ``Z = X @ W + b`` pre-activation, ``Y = activation(Z)`` output, ``T``
    targets, and ``dA`` the gradient of the scalar loss with respect to ``A``.

    Parameters added after the first release (issue 10) are keyword-only with
    defaults that reproduce the earlier behaviour exactly.
    """

    #: Registry name of the backend (``"python"``, ``"numpy"``, ``"numba"``).
    name: str = ""

    @abc.abstractmethod
    def dense_forward(self, X, W, b, activation, *, negative_slope=LEAKY_RELU_SLOPE):
        """Affine map followed by an activation.

        ``X: (n, in)``, ``W: (in, out)``, ``b: (out,)`` -> ``(Z, Y)``, both ``(n, out)``:
        ``Z = X @ W + b`` and ``Y = activation(Z)``, elementwise unless noted
        (``s = negative_slope``, a Python float read only by ``leaky_relu``)::

            linear      z
            sigmoid     1 / (1 + exp(-z))
            relu        max(z, 0)
            tanh        tanh(z)
            softmax     exp(z_j) / sum_c exp(z_c)          (per row)
            step        1 if z >= 0 else 0
            leaky_relu  z if z > 0 else s*z
            elu         z if z > 0 else expm1(z)           (alpha = 1)
            gelu        z * Phi(z) = 0.5 z erfc(-z/sqrt(2))  (exact, Keras approximate=False)
            softplus    log(1 + exp(z)) = max(z, 0) + log1p(exp(-|z|))
            silu        z * sigmoid(z)

        Numerics: ``sigmoid`` (also inside ``silu``) is evaluated as ``1 / (1 + exp(-z))``
        for ``z >= 0`` and ``exp(z) / (1 + exp(z))`` for ``z < 0`` so ``exp`` never
        overflows; ``softmax`` subtracts each row's maximum before ``exp``; ``gelu`` uses
        ``erfc`` (``1 + erf(x)`` would cancel for large negative ``z``); ``softplus`` and
        ``elu`` use the forms above (``exp`` only of non-positive numbers).  NaN in ``Z``
        propagates to ``Y`` (``relu(NaN)`` is NaN, a softmax row with a NaN is all NaN);
        ``step(NaN)`` is 0.
        """

    @abc.abstractmethod
    def dense_backward(
        self, dY, X, W, Z, Y, activation, *, need_dX=True, negative_slope=LEAKY_RELU_SLOPE
    ):
        """Gradients of a scalar loss through one dense layer.

        ``dY: (n, out)`` is ``dL/dY``; ``X, W, Z, Y`` are the forward's inputs and
        outputs.  Returns ``(dX, dW, db)`` with shapes ``(n, in)``, ``(in, out)``,
        ``(out,)``, where ``dZ = activation'(Z) * dY`` (for ``softmax`` the full
        Jacobian-vector product ``dZ = Y * (dY - sum(dY * Y, axis=1))``),
        ``dX = dZ @ W.T``, ``dW = X.T @ dZ``, ``db = sum(dZ, axis=0)``.
        With ``need_dX=False`` the product ``dZ @ W.T`` is not formed and ``dX`` is
        ``None`` (the first layer of a net needs no ``dX``).

        Derivatives (``s = negative_slope``; at a kink the left derivative, as
        ``relu'(0) = 0``)::

            linear 1;  sigmoid y(1-y);  relu 1 if z > 0 else 0;  tanh 1 - y^2
            leaky_relu  1 if z > 0 else s
            elu         1 if z > 0 else exp(z)
            gelu        Phi(z) + z phi(z) = 0.5 erfc(-z/sqrt(2)) + z exp(-z^2/2) / sqrt(2 pi)
            softplus    sigmoid(z)
            silu        sg (1 + z (1 - sg)),  sg = sigmoid(z)

        ``"step"`` raises :class:`StepBackwardError`.
        """

    def dense_backward_sgd(
        self, dY, X, W, Z, Y, activation, lr, velocity=None, *, need_dX=True,
        negative_slope=LEAKY_RELU_SLOPE,
    ):  # fmt: skip
        """:meth:`dense_backward` followed by plain SGD on ``W`` (momentum 0), in place:
        ``W -= lr * dW``, with ``dX`` formed from the weights passed in.  Returns
        ``(dX, db)``.  ``velocity``: if given, set to ``-lr * dW`` (what
        :meth:`sgd_update` with momentum 0 leaves there), else not touched.

        Not an op (not dispatched, not checked): a step of the default
        :meth:`train_batches`, which a backend may override to fold the update into
        the weight-gradient product (``W += -lr X^T dZ`` in one BLAS call, so ``dW``
        is never stored).  That rounds ``X^T dZ`` once where the composition below
        rounds ``dW`` and then ``lr * dW``, the same way whether or not ``velocity``
        is asked for.  This default composes the ops, with the same numbers as
        :meth:`dense_backward` then :meth:`sgd_update`.
        """
        dX, dW, db = self.dense_backward(
            dY, X, W, Z, Y, activation, need_dX=need_dX, negative_slope=negative_slope
        )
        v = np.zeros_like(W) if velocity is None else velocity
        self.sgd_update(W, dW, v, lr, W.dtype.type(0))
        return dX, db

    @abc.abstractmethod
    def loss(self, name, Y, T, *, weights=None):
        """A loss averaged over the batch, and its gradient ``dY = dL/dY``.

        ``Y, T: (n, k)`` -> ``(value, dY)``; ``value`` is a Python float, ``dY: (n, k)``.

        * ``"mse"``: ``mean((Y - T)**2)`` over all ``n*k`` elements.
        * ``"binary_crossentropy"``: ``mean(-(T log Y + (1-T) log(1-Y)))`` over all
          elements, with ``Y`` clipped to ``[PROB_EPS, 1 - PROB_EPS]``.
        * ``"categorical_crossentropy"``: ``-mean over rows of sum_j T log Y``, ``Y``
          clipped to ``[PROB_EPS, 1]`` inside the log; ``T`` one-hot or soft.

        ``weights: (n,)`` of ``Y``'s dtype (Keras' ``sample_weight``, reduction
        "sum_over_batch_size"): row ``i``'s loss is multiplied by ``w_i`` and the sum is
        still divided by ``n`` -- ``value = sum_i w_i loss_i / n`` where ``loss_i`` is
        the row's mean over its ``k`` elements for ``mse`` / ``binary_crossentropy``
        and its sum for ``categorical_crossentropy``; ``dY`` row ``i`` is multiplied by
        ``w_i``.  ``None`` is all ones (the same numbers as without weights).

        ``dY`` is the derivative of the clipped expression, as autodiff frameworks
        define it: zero wherever the clip is active (``Y`` strictly outside the
        interval), so saturated probabilities give finite gradients.  Models pair
        sigmoid/softmax outputs with the fused logit ops below instead.
        """

    @abc.abstractmethod
    def softmax_cross_entropy(self, Z, labels, *, weights=None):
        """Fused, overflow-safe softmax + cross-entropy on logits.

        ``Z: (n, k)`` logits, ``labels: (n,)`` integers in ``[0, k)`` ->
        ``(value, dZ)``: ``value = mean_i(logsumexp(Z_i) - Z_i[labels_i])`` (a Python
        float) and ``dZ = (softmax(Z) - onehot(labels)) / n``.  With ``weights: (n,)``:
        ``value = sum_i w_i (logsumexp(Z_i) - Z_i[labels_i]) / n`` and row ``i`` of
        ``dZ`` times ``w_i`` (as :meth:`loss`).
        """

    @abc.abstractmethod
    def sigmoid_cross_entropy(self, Z, T, *, weights=None):
        """Fused, overflow-safe sigmoid + binary cross-entropy on logits.

        ``Z, T: (n, k)`` (``T`` in ``[0, 1]``) -> ``(value, dZ)``: ``value`` is the mean
        over all ``n*k`` elements of ``max(z, 0) - z t + log(1 + exp(-|z|))`` (which
        equals ``-(t log s + (1-t) log(1-s))`` for ``s = sigmoid(z)`` without forming
        ``log(0)``), and ``dZ = (sigmoid(Z) - T) / (n*k)``.  With ``weights: (n,)``:
        every element of row ``i`` (in ``value`` and in ``dZ``) is multiplied by ``w_i``
        (still divided by ``n*k``), as :meth:`loss`.
        """

    @abc.abstractmethod
    def sgd_update(self, param, grad, velocity, lr, momentum, *, nesterov=False, weight_decay=0):
        """SGD with momentum (Keras 3 / scikit-learn form), in place; returns None::

            param -= lr * weight_decay * param            (only if weight_decay != 0)
            velocity = momentum * velocity - lr * grad
            param += velocity                             (nesterov False: heavy ball)
            param += momentum * velocity - lr * grad      (nesterov True)

        ``param``, ``grad``, ``velocity`` share one shape (any rank, C-contiguous);
        ``lr``, ``momentum``, ``weight_decay`` are scalars of the arrays' dtype.
        Weight decay is decoupled (Keras 3, "AdamW"-style: it does not enter
        ``velocity``); the coupled L2 form is :meth:`penalty` on the gradient.
        PyTorch's ``torch.optim.SGD`` keeps ``buf = momentum*buf + grad`` and steps
        ``lr*buf`` (Nesterov: ``lr*(grad + momentum*buf)``): the same trajectory as
        ``velocity = -lr*buf`` while ``lr`` is constant.
        """

    @abc.abstractmethod
    def adam_update(
        self, param, grad, m, v, step, lr, beta1, beta2, eps, *, weight_decay=0, eps_outside=False
    ):
        """Adam (Kingma & Ba, 2015) with bias correction, in place; returns None.

        ``step`` is the 1-based count of this update::

            param -= lr * weight_decay * param     (only if weight_decay != 0; decoupled,
                                                    before the step: Keras 3 / AdamW)
            m = beta1 m + (1 - beta1) g
            v = beta2 v + (1 - beta2) g^2
            eps_outside False (PyTorch's Adam/AdamW, the paper's form):
              param -= lr * (m / (1 - beta1^step)) / (sqrt(v / (1 - beta2^step)) + eps)
            eps_outside True (scikit-learn's and Keras 3's form):
              lr_t = lr * sqrt(1 - beta2^step) / (1 - beta1^step)
              param -= lr_t * m / (sqrt(v) + eps)

        The two differ only in where ``eps`` sits: ``eps`` inside the bias correction
        equals ``eps * sqrt(1 - beta2^step)`` outside it.
        """

    @abc.abstractmethod
    def rmsprop_update(self, param, grad, ms, mom, lr, rho, momentum, eps, *, weight_decay=0):
        """RMSprop (Keras 3 form, not centered), in place; returns None::

            param -= lr * weight_decay * param     (only if weight_decay != 0, decoupled)
            ms = rho * ms + (1 - rho) * g^2
            inc = lr * g / sqrt(ms + eps)
            momentum > 0:  mom = momentum * mom + inc;  param -= mom
            momentum == 0: param -= inc             (mom untouched)

        PyTorch's ``torch.optim.RMSprop`` puts ``eps`` outside the root,
        ``g / (sqrt(ms) + eps)``, and keeps ``buf = momentum*buf + g/(...)`` stepping
        ``lr*buf``: the two coincide for ``eps = 0`` and constant ``lr``
        (``mom = lr*buf``); for ``eps > 0`` Keras' form damps small ``ms`` less.
        Keras' defaults: ``lr=1e-3, rho=0.9, momentum=0, eps=1e-7``.
        """

    @abc.abstractmethod
    def penalty(self, W, dW, l1, l2, scale=1.0):
        """L1/L2 weight penalty: returns its value and adds its gradient to ``dW`` in place.

        ``W, dW`` one shape; ``l1, l2, scale`` Python floats ``>= 0``::

            value = scale * (l1 * sum|W| + l2 * sum W^2)           (a Python float)
            dW   += c1 * sign(W) + c2 * W,   c1 = scale*l1, c2 = 2*scale*l2

        ``c1``, ``c2`` are formed in float64 and rounded once to the dtype;
        ``sign(0) = 0``.  ``value`` is accumulated in the dtype or wider.  Keras'
        ``L1L2(l1, l2)`` is ``scale = 1``; scikit-learn's ``alpha`` is ``l2 = alpha/2``
        with ``scale = 1/n_batch_rows`` (``alpha/(2 nb) sum W^2``, gradient
        ``alpha W / nb``).  Terms whose coefficient is 0 are skipped.
        """

    @abc.abstractmethod
    def dropout_mask(self, shape, rate, seed, step, layer, dtype):
        """The inverted-dropout mask of a ``(n, width)`` block of layer ``layer``'s output.

        Returns a C-contiguous ``(n, width)`` array of ``dtype`` whose element ``(i, c)``
        is ``dtype(1 / (1 - rate))`` (1/(1-rate) formed in float64, rounded once) if
        ``dropout_keep(seed, step, layer, i*width + c, rate)`` else 0.  ``rate`` in
        ``[0, 1)`` (``rate = 0`` keeps everything, scale 1).  See :func:`dropout_keep`.
        """

    def train_batches(
        self, Ws, bs, activations, X, T, order, batch_size, head, optimizer, state, hyper, step,
        *, penalties=None, penalty_per_row=False, trainable=None, lrs=None, epoch_size=None,
        dropout=None, seed=0, sample_weight=None, negative_slopes=None,
    ):  # fmt: skip
        """Train a stack of dense layers over consecutive mini-batches, in place.

        * ``Ws[l]: (in_l, out_l)``, ``bs[l]: (out_l,)`` -- updated in place;
          ``activations[l]`` the name of layer ``l``'s activation.
        * ``X: (N, in)``; ``T``: ``(N,)`` int64 labels for the ``"softmax_cross_entropy"``
          head, else ``(N, k)`` targets of ``X``'s dtype.
        * ``order: (m,)`` int64 row indices; batch ``j`` is rows
          ``order[start_j:stop_j]`` with the bounds of :func:`batch_bounds`
          (``order[j*batch_size : (j+1)*batch_size]``, the last may be smaller).
        * ``head`` in :data:`HEADS`: the loss of the last layer's output.
        * ``optimizer`` in :data:`OPTIMIZERS`; ``state[p]`` is the tuple of that
          optimizer's state arrays for parameter ``p`` in the order
          ``W0, b0, W1, b1, ...`` (updated in place); ``hyper`` its hyper-parameters
          (trailing ones may be omitted: 0).
        * ``step``: updates already applied; batch ``j`` is update ``t = step + j + 1``
          (Adam's step count, the dropout counter).

        Keyword-only options (each default reproduces the plain behaviour exactly):

        * ``penalties``: per layer ``(l1, l2)`` or ``None``; batch ``j`` adds
          ``penalty(W_l, dW_l, l1, l2, scale)`` for every trainable ``W_l`` (Keras 3
          sums regularizers over trainable weights; biases are never penalized), with
          ``scale = 1``, or ``1/nb`` (``nb`` the batch's rows) if ``penalty_per_row``.
          The penalty values are included in the reported batch loss.
        * ``trainable``: one bool per parameter ``W0, b0, W1, b1, ...``; a frozen
          parameter gets no update at all (no step, no weight decay, its state
          untouched) and no penalty; gradients still flow through it to the layers below.
          Backpropagation stops below the lowest layer with a trainable parameter.
        * ``lrs: (n_batches,)`` float64: batch ``j`` uses ``lrs[j]`` instead of
          ``hyper[0]`` (also in the weight decay).
        * ``epoch_size``: ``order`` holds consecutive epochs; see :func:`batch_bounds`.
        * ``dropout``: per layer a rate in ``[0, 1)`` or ``None`` (the last layer's must
          be 0/None).  Layer ``l``'s output ``Y_l`` is passed on as ``Y_l * M_l`` with
          ``M_l = dropout_mask(Y_l.shape, rate_l, seed, t, l, dtype)``, and the gradient
          reaching ``Y_l`` is multiplied by ``M_l``.  ``seed``: integer, see
          :func:`dropout_keep`.
        * ``sample_weight: (N,)`` of ``X``'s dtype, indexed through ``order`` like ``X``:
          the loss op gets ``weights=sample_weight[rows]``.
        * ``negative_slopes``: per layer the ``negative_slope`` of ``leaky_relu``
          (``None``: :data:`LEAKY_RELU_SLOPE`).

        Per batch: forward (with dropout), loss, backward (``need_dX=False`` for the
        lowest layer backpropagated into, so the first layer's ``dX`` is never formed),
        penalties, then each trainable parameter's update in the order ``W0, b0, ...``
        -- except that plain SGD (:func:`plain_sgd`) steps each trained, unpenalized
        ``W`` inside the backward, right after its ``dX`` (:meth:`dense_backward_sgd`;
        the same values: no later step of the batch reads that ``W``).

        Returns ``(losses, correct)``, float64 arrays ``(n_batches,)``: each batch's
        loss (plus penalties) before its update, and its number of correct predictions
        (argmax of the output against the label / argmax of ``T`` for ``k > 1``;
        output above the decision threshold -- 0 for logit heads, 0.5 otherwise --
        against ``T > 0.5`` for ``k == 1``).

        This default composes the primitive ops above and is the definition;
        backends may override it with a fused implementation giving the same numbers.
        """
        L = len(Ws)
        bounds = batch_bounds(len(order), batch_size, epoch_size)
        losses = np.zeros(len(bounds))
        correct = np.zeros(len(bounds))
        dtype = X.dtype.type
        params = [p for l in range(L) for p in (Ws[l], bs[l])]
        train = [True] * (2 * L) if trainable is None else [bool(f) for f in trainable]
        hyper = complete_hyper(optimizer, hyper)
        opts = _LayerOptions(
            L, penalties, dropout, negative_slopes, train, plain_sgd(optimizer, hyper)
        )
        update = _Updater(self, optimizer, hyper, dtype)
        for j, (start, stop) in enumerate(bounds):
            rows = order[start:stop]
            t = step + j + 1
            A, Zs, Ys, masks = _forward(self, Ws, bs, activations, X[rows], opts, seed, t)
            Tb = np.ascontiguousarray(T[rows])
            wb = None if sample_weight is None else np.ascontiguousarray(sample_weight[rows])
            value, dY = _head_loss(self, head, A[L], Tb, wb)
            correct[j] = count_correct(A[L], Tb, head)
            # The call's last batch also leaves each folded W's velocity as sgd_update
            # would (-lr dW); the weights take the same folded step on every batch, so
            # they do not depend on where calls begin and end.
            lr = dtype(hyper[0] if lrs is None else lrs[j])
            keep = state if j == len(bounds) - 1 else None
            grads = _backward(self, dY, Ws, activations, A, Zs, Ys, masks, opts, lr, keep)
            scale = 1.0 / len(rows) if penalty_per_row else 1.0
            for l, pair in enumerate(opts.penalties):
                if pair is not None and train[2 * l]:
                    value += self.penalty(
                        Ws[l], grads[2 * l], float(pair[0]), float(pair[1]), scale
                    )
            losses[j] = value
            for p, param in enumerate(params):
                if train[p] and grads[p] is not None:  # None: folded in the backward
                    update(param, grads[p], state[p], t, lr)
        return losses, correct

    def __repr__(self) -> str:
        return f"<{type(self).__name__} backend={self.name!r}>"


class _LayerOptions:
    """Per-layer settings of one :meth:`Ops.train_batches` call, with defaults filled."""

    def __init__(self, L, penalties, dropout, negative_slopes, train, sgd_plain):
        self.penalties = [None] * L if penalties is None else list(penalties)
        rates = [None] * L if dropout is None else list(dropout)
        # Never on the last layer's output (the loss sees the undropped prediction).
        self.rates = [float(r or 0.0) if l < L - 1 else 0.0 for l, r in enumerate(rates)]
        slopes = [None] * L if negative_slopes is None else list(negative_slopes)
        self.slopes = [LEAKY_RELU_SLOPE if s is None else float(s) for s in slopes]
        self.slope_kw = [{"negative_slope": s} for s in self.slopes]
        # Lowest layer whose parameters train: backpropagation stops there.
        trains = [train[2 * l] or train[2 * l + 1] for l in range(L)]
        self.lowest = trains.index(True) if any(trains) else L
        # Layers whose W step folds into the backward (dense_backward_sgd): plain SGD
        # on a trained, unpenalized W.
        self.fold = [sgd_plain and train[2 * l] and self.penalties[l] is None for l in range(L)]


def _forward(ops, Ws, bs, activations, X_rows, opts, seed, t):
    """Forward through every layer: inputs ``A`` (``A[L]`` the output), ``Z``s, undropped
    ``Y``s and dropout masks (``None`` where the rate is 0)."""
    A = [np.ascontiguousarray(X_rows)]
    Zs, Ys, masks = [], [], []
    for l in range(len(Ws)):
        act = activations[l]
        Z, Y = ops.dense_forward(A[l], Ws[l], bs[l], act, **_slope(act, opts.slope_kw[l]))
        Zs.append(Z)
        Ys.append(Y)
        M = None
        if opts.rates[l] > 0:
            M = ops.dropout_mask(Y.shape, opts.rates[l], seed, t, l, Y.dtype)
            Y = Y * M
        masks.append(M)
        A.append(Y)
    return A, Zs, Ys, masks


def _head_loss(ops, head, out, Tb, wb):
    # Options are passed only when set (a backend's plain calls see no new keyword).
    kw = {} if wb is None else {"weights": wb}
    if head == "softmax_cross_entropy":
        return ops.softmax_cross_entropy(out, Tb, **kw)
    if head == "sigmoid_cross_entropy":
        return ops.sigmoid_cross_entropy(out, Tb, **kw)
    return ops.loss(head, out, Tb, **kw)


_NO_OPTIONS: dict = {}


def _slope(activation, slope_kw):
    """``negative_slope`` keyword for the dense ops: only ``leaky_relu`` reads it."""
    return slope_kw if activation == "leaky_relu" else _NO_OPTIONS


def _backward(ops, dY, Ws, activations, A, Zs, Ys, masks, opts, lr, keep):
    """Gradients ``[dW0, db0, dW1, db1, ...]`` (``None`` below ``opts.lowest``, and
    for each ``W`` whose plain SGD step at ``lr`` folded into the backward; ``keep``:
    the optimizer state whose velocities those steps write, or None)."""
    L = len(Ws)
    grads = [None] * (2 * L)
    for l in reversed(range(opts.lowest, L)):
        if masks[l] is not None:
            dY = dY * masks[l]  # through Y_l * M_l
        args = (dY, A[l], Ws[l], Zs[l], Ys[l], activations[l])
        kw = dict(need_dX=l > opts.lowest, **_slope(activations[l], opts.slope_kw[l]))
        if opts.fold[l]:
            velocity = None if keep is None else keep[2 * l][0]
            dY, grads[2 * l + 1] = ops.dense_backward_sgd(*args, lr, velocity, **kw)
        else:
            dY, grads[2 * l], grads[2 * l + 1] = ops.dense_backward(*args, **kw)
    return grads


class _Updater:
    """One parameter's optimizer step, ``update(param, grad, S, t, lr)`` (``lr`` this
    batch's, in the dtype): the hyper-parameters (complete) are cast and the keyword
    options built once per call, not per parameter and batch.  Options are passed
    only when set, as in :func:`_head_loss`."""

    def __init__(self, ops, optimizer, hyper, dtype):
        self.ops, self.optimizer = ops, optimizer
        if optimizer == "sgd":
            _, momentum, nesterov, wd = hyper
            self.args = (dtype(momentum),)
            self.kw = _options(nesterov=bool(nesterov), weight_decay=dtype(wd))
        elif optimizer == "adam":
            _, beta1, beta2, eps, wd, eps_outside = hyper
            self.args = (dtype(beta1), dtype(beta2), dtype(eps))
            self.kw = _options(weight_decay=dtype(wd), eps_outside=bool(eps_outside))
        else:
            _, rho, momentum, eps, wd = hyper
            self.args = (dtype(rho), dtype(momentum), dtype(eps))
            self.kw = _options(weight_decay=dtype(wd))

    def __call__(self, param, grad, S, t, lr):
        if self.optimizer == "sgd":
            self.ops.sgd_update(param, grad, S[0], lr, *self.args, **self.kw)
        elif self.optimizer == "adam":
            self.ops.adam_update(param, grad, S[0], S[1], t, lr, *self.args, **self.kw)
        else:
            self.ops.rmsprop_update(param, grad, S[0], S[1], lr, *self.args, **self.kw)


def _options(**kw):
    """The keyword options that differ from their default (0 / False)."""
    return {k: v for k, v in kw.items() if v}


def count_correct(out, T, head) -> int:
    """Correct predictions in one batch, as :meth:`Ops.train_batches` defines them."""
    if head == "softmax_cross_entropy":
        return np.count_nonzero(np.argmax(out, axis=1) == T)
    if out.shape[1] > 1:
        return np.count_nonzero(np.argmax(out, axis=1) == np.argmax(T, axis=1))
    threshold = 0.0 if head == "sigmoid_cross_entropy" else 0.5
    return np.count_nonzero((out[:, 0] > threshold) == (T[:, 0] > 0.5))
