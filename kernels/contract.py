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
* scalars (``lr``, ``momentum``, ...) are already of the arrays' dtype.

Nothing in a backend validates; nothing outside a backend computes.
"""

from __future__ import annotations

import abc

import numpy as np

#: Activations a dense layer can apply.  ``"step"`` (Heaviside, ``Z >= 0 -> 1``)
#: is forward-only: it exists for Rosenblatt's perceptron and has no gradient.
ACTIVATIONS: tuple[str, ...] = ("linear", "sigmoid", "relu", "tanh", "softmax", "step")

#: Activations with a usable derivative.
DIFFERENTIABLE_ACTIVATIONS: tuple[str, ...] = ("linear", "sigmoid", "relu", "tanh", "softmax")

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
    "train_batches",
)

#: Output heads :meth:`Ops.train_batches` trains against.  The two fused heads take
#: logits (the last activation is ``"linear"``) and use the stable logit ops.
HEADS: tuple[str, ...] = ("softmax_cross_entropy", "sigmoid_cross_entropy", *LOSSES)

#: Optimizers :meth:`Ops.train_batches` applies, with their state arrays per
#: parameter and their hyper-parameters, in order.
OPTIMIZERS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "sgd": (("velocity",), ("lr", "momentum")),
    "adam": (("m", "v"), ("lr", "beta1", "beta2", "eps")),
}


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
    """

    #: Registry name of the backend (``"python"``, ``"numpy"``, ``"numba"``).
    name: str = ""

    @abc.abstractmethod
    def dense_forward(self, X, W, b, activation):
        """Affine map followed by an activation.

        ``X: (n, in)``, ``W: (in, out)``, ``b: (out,)`` -> ``(Z, Y)``, both ``(n, out)``:
        ``Z = X @ W + b`` and ``Y = activation(Z)``.

        Numerics: ``sigmoid`` is evaluated as ``1 / (1 + exp(-z))`` for ``z >= 0`` and
        ``exp(z) / (1 + exp(z))`` for ``z < 0`` so ``exp`` never overflows; ``softmax``
        subtracts each row's maximum before ``exp``.  NaN in ``Z`` propagates to ``Y``
        (``relu(NaN)`` is NaN, a softmax row with a NaN is all NaN); ``step(NaN)`` is 0.
        """

    @abc.abstractmethod
    def dense_backward(self, dY, X, W, Z, Y, activation):
        """Gradients of a scalar loss through one dense layer.

        ``dY: (n, out)`` is ``dL/dY``; ``X, W, Z, Y`` are the forward's inputs and
        outputs.  Returns ``(dX, dW, db)`` with shapes ``(n, in)``, ``(in, out)``,
        ``(out,)``, where ``dZ = activation'(Z) * dY`` (for ``softmax`` the full
        Jacobian-vector product ``dZ = Y * (dY - sum(dY * Y, axis=1))``),
        ``dX = dZ @ W.T``, ``dW = X.T @ dZ``, ``db = sum(dZ, axis=0)``.

        ``"step"`` raises :class:`StepBackwardError`.
        """

    @abc.abstractmethod
    def loss(self, name, Y, T):
        """A loss averaged over the batch, and its gradient ``dY = dL/dY``.

        ``Y, T: (n, k)`` -> ``(value, dY)``; ``value`` is a Python float, ``dY: (n, k)``.

        * ``"mse"``: ``mean((Y - T)**2)`` over all ``n*k`` elements.
        * ``"binary_crossentropy"``: ``mean(-(T log Y + (1-T) log(1-Y)))`` over all
          elements, with ``Y`` clipped to ``[PROB_EPS, 1 - PROB_EPS]``.
        * ``"categorical_crossentropy"``: ``-mean over rows of sum_j T log Y``, ``Y``
          clipped to ``[PROB_EPS, 1]`` inside the log; ``T`` one-hot or soft.

        ``dY`` is the derivative of the clipped expression, as autodiff frameworks
        define it: zero wherever the clip is active (``Y`` strictly outside the
        interval), so saturated probabilities give finite gradients.  Models pair
        sigmoid/softmax outputs with the fused logit ops below instead.
        """

    @abc.abstractmethod
    def softmax_cross_entropy(self, Z, labels):
        """Fused, overflow-safe softmax + cross-entropy on logits.

        ``Z: (n, k)`` logits, ``labels: (n,)`` integers in ``[0, k)`` ->
        ``(value, dZ)``: ``value = mean_i(logsumexp(Z_i) - Z_i[labels_i])`` (a Python
        float) and ``dZ = (softmax(Z) - onehot(labels)) / n``.
        """

    @abc.abstractmethod
    def sigmoid_cross_entropy(self, Z, T):
        """Fused, overflow-safe sigmoid + binary cross-entropy on logits.

        ``Z, T: (n, k)`` (``T`` in ``[0, 1]``) -> ``(value, dZ)``: ``value`` is the mean
        over all ``n*k`` elements of ``max(z, 0) - z t + log(1 + exp(-|z|))`` (which
        equals ``-(t log s + (1-t) log(1-s))`` for ``s = sigmoid(z)`` without forming
        ``log(0)``), and ``dZ = (sigmoid(Z) - T) / (n*k)``.
        """

    @abc.abstractmethod
    def sgd_update(self, param, grad, velocity, lr, momentum):
        """SGD with (heavy-ball) momentum, in place; returns None.

        ``velocity = momentum * velocity - lr * grad``; ``param += velocity``.
        ``param``, ``grad``, ``velocity`` share one shape (any rank, C-contiguous).
        """

    @abc.abstractmethod
    def adam_update(self, param, grad, m, v, step, lr, beta1, beta2, eps):
        """Adam (Kingma & Ba, 2015) with bias correction, in place; returns None.

        ``step`` is the 1-based count of this update::

            m = beta1 m + (1 - beta1) g
            v = beta2 v + (1 - beta2) g^2
            param -= lr * (m / (1 - beta1^step)) / (sqrt(v / (1 - beta2^step)) + eps)
        """

    def train_batches(
        self, Ws, bs, activations, X, T, order, batch_size, head, optimizer, state, hyper, step
    ):
        """Train a stack of dense layers over consecutive mini-batches, in place.

        * ``Ws[l]: (in_l, out_l)``, ``bs[l]: (out_l,)`` -- updated in place;
          ``activations[l]`` the name of layer ``l``'s activation.
        * ``X: (N, in)``; ``T``: ``(N,)`` int64 labels for the ``"softmax_cross_entropy"``
          head, else ``(N, k)`` targets of ``X``'s dtype.
        * ``order: (m,)`` int64 row indices; batch ``j`` is rows
          ``order[j*batch_size : (j+1)*batch_size]`` (the last may be smaller).
        * ``head`` in :data:`HEADS`: the loss of the last layer's output.
        * ``optimizer`` in :data:`OPTIMIZERS`; ``state[p]`` is the tuple of that
          optimizer's state arrays for parameter ``p`` in the order
          ``W0, b0, W1, b1, ...`` (updated in place); ``hyper`` its hyper-parameters.
        * ``step``: updates already applied (Adam's step count continues from it).

        Returns ``(losses, correct)``, float64 arrays ``(n_batches,)``: each batch's
        loss before its update, and its number of correct predictions (argmax of
        the output against the label / argmax of ``T`` for ``k > 1``; output above
        the decision threshold -- 0 for logit heads, 0.5 otherwise -- against
        ``T > 0.5`` for ``k == 1``).

        This default composes the primitive ops above and is the definition;
        backends may override it with a fused implementation giving the same numbers.
        """
        L = len(Ws)
        n_batches = -(-len(order) // batch_size)
        losses = np.zeros(n_batches)
        correct = np.zeros(n_batches)
        dtype = X.dtype.type
        for j in range(n_batches):
            rows = order[j * batch_size : (j + 1) * batch_size]
            A = [np.ascontiguousarray(X[rows])]
            Zs = []
            for l in range(L):
                Z, Y = self.dense_forward(A[l], Ws[l], bs[l], activations[l])
                Zs.append(Z)
                A.append(Y)
            out = A[L]
            Tb = np.ascontiguousarray(T[rows])
            if head == "softmax_cross_entropy":
                value, dY = self.softmax_cross_entropy(out, Tb)
            elif head == "sigmoid_cross_entropy":
                value, dY = self.sigmoid_cross_entropy(out, Tb)
            else:
                value, dY = self.loss(head, out, Tb)
            losses[j] = value
            correct[j] = count_correct(out, Tb, head)
            grads = []
            for l in reversed(range(L)):
                dY, dW, db = self.dense_backward(dY, A[l], Ws[l], Zs[l], A[l + 1], activations[l])
                grads[:0] = [dW, db]
            params = [p for l in range(L) for p in (Ws[l], bs[l])]
            for p, (param, grad) in enumerate(zip(params, grads)):
                if optimizer == "sgd":
                    lr, momentum = hyper
                    self.sgd_update(param, grad, state[p][0], dtype(lr), dtype(momentum))
                else:
                    lr, beta1, beta2, eps = hyper
                    self.adam_update(
                        param, grad, state[p][0], state[p][1], step + j + 1,
                        dtype(lr), dtype(beta1), dtype(beta2), dtype(eps),
                    )  # fmt: skip
        return losses, correct

    def __repr__(self) -> str:
        return f"<{type(self).__name__} backend={self.name!r}>"


def count_correct(out, T, head) -> int:
    """Correct predictions in one batch, as :meth:`Ops.train_batches` defines them."""
    if head == "softmax_cross_entropy":
        return int(np.sum(np.argmax(out, axis=1) == T))
    if out.shape[1] > 1:
        return int(np.sum(np.argmax(out, axis=1) == np.argmax(T, axis=1)))
    threshold = 0.0 if head == "sigmoid_cross_entropy" else 0.5
    return int(np.sum((out[:, 0] > threshold) == (T[:, 0] > 0.5)))
