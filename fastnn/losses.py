"""Loss names, and which training head of the op contract computes each.

* ``"mse"``: head ``"mse"`` with any output activation.
* ``"binary_crossentropy"``: with a ``"sigmoid"`` output, the fused logit head
  ``"sigmoid_cross_entropy"``; with any other output (probabilities assumed),
  head ``"binary_crossentropy"``.
* ``"categorical_crossentropy"``: with a ``"softmax"`` output and one-hot targets,
  the fused logit head ``"softmax_cross_entropy"`` (on the labels the one-hot rows
  encode); soft targets or another output: head ``"categorical_crossentropy"``.
* ``"sparse_categorical_crossentropy"`` (integer labels): with a ``"softmax"``
  output, ``"softmax_cross_entropy"``; otherwise ``"categorical_crossentropy"`` on
  one-hot rows built from the labels.

The fused heads train the last layer with a ``"linear"`` activation and apply
sigmoid/softmax inside the loss op, which is overflow-safe and never takes
``log(0)``; they give the same loss value as the unfused pair wherever the latter
is finite.  ``predict`` still applies the layer's own activation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import data_checks

#: Loss names ``Sequential.compile`` accepts.
LOSS_NAMES: tuple[str, ...] = (
    "mse",
    "binary_crossentropy",
    "categorical_crossentropy",
    "sparse_categorical_crossentropy",
)

#: Keras' long spellings, accepted as synonyms.
ALIASES = {"mean_squared_error": "mse"}

FUSED_HEADS = ("softmax_cross_entropy", "sigmoid_cross_entropy")


def get(loss) -> str:
    """The canonical name of ``loss`` or a ValueError listing the valid names."""
    if isinstance(loss, str):
        key = ALIASES.get(loss.strip().lower(), loss.strip().lower())
        if key in LOSS_NAMES:
            return key
    if not isinstance(loss, str):
        raise TypeError(f"loss must be a string naming a loss, got {type(loss).__name__}")
    raise ValueError(
        f"unknown loss {loss!r}; valid choices are: {', '.join(repr(n) for n in LOSS_NAMES)}"
    )


@dataclass(frozen=True)
class Plan:
    """How one loss is trained and evaluated for a given output layer and targets.

    ``head``: the :data:`fastnn.kernels.contract.HEADS` entry; ``last_activation``:
    the activation the last layer applies during training (``"linear"`` for the
    fused heads); ``T``: the targets in the head's format -- ``(n,)`` int64 labels
    for ``"softmax_cross_entropy"``, else ``(n, k)`` of the model dtype.
    """

    head: str
    last_activation: str
    T: np.ndarray

    @property
    def fused(self) -> bool:
        return self.head in FUSED_HEADS


def prepare(loss: str, output_activation: str, y, n_outputs: int, dtype, name: str = "y") -> Plan:
    """Validate targets ``y`` for ``loss`` and choose the head (see the module table)."""
    if loss == "sparse_categorical_crossentropy":
        labels = data_checks.check_labels(name, y, n_outputs)
        if output_activation == "softmax":
            return Plan("softmax_cross_entropy", "linear", labels)
        T = np.zeros((labels.shape[0], n_outputs), dtype=dtype)
        T[np.arange(labels.shape[0]), labels] = 1
        return Plan("categorical_crossentropy", output_activation, T)
    T = data_checks.check_targets(name, y, n_outputs, dtype)
    if loss == "mse":
        return Plan("mse", output_activation, T)
    if T.min() < 0 or T.max() > 1:
        raise ValueError(
            f"{loss} targets {name} must lie in [0, 1] (probabilities or 0/1 labels); "
            f"found values in [{T.min().item()}, {T.max().item()}]"
        )
    if loss == "binary_crossentropy":
        if output_activation == "sigmoid":
            return Plan("sigmoid_cross_entropy", "linear", T)
        return Plan("binary_crossentropy", output_activation, T)
    # categorical_crossentropy: one-hot rows are integer labels in disguise.
    one_hot = n_outputs > 1 and np.all((T == 0) | (T == 1)) and np.all(T.sum(axis=1) == 1)
    if output_activation == "softmax" and one_hot:
        return Plan("softmax_cross_entropy", "linear", np.argmax(T, axis=1).astype(np.int64))
    return Plan("categorical_crossentropy", output_activation, T)


def batch_loss(ops, plan: Plan, Z, Y, T):
    """Mean loss of one batch from the last layer's logits ``Z`` and outputs ``Y``."""
    if plan.head == "softmax_cross_entropy":
        value, _ = ops.softmax_cross_entropy(Z, T)
    elif plan.head == "sigmoid_cross_entropy":
        value, _ = ops.sigmoid_cross_entropy(Z, T)
    else:
        value, _ = ops.loss(plan.head, Y, T)
    return value
