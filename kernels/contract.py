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
)


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
        subtracts each row's maximum before ``exp``.
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

    def __repr__(self) -> str:
        return f"<{type(self).__name__} backend={self.name!r}>"
