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

Loss objects (Keras 3 names): :class:`SparseCategoricalCrossentropy`,
:class:`CategoricalCrossentropy`, :class:`BinaryCrossentropy` (each with
``from_logits=False``) and :class:`MeanSquaredError`, usable in ``compile`` next to
the strings.  ``from_logits=True`` needs a linear last layer, whose outputs are the
logits: training and ``evaluate`` go through the fused heads above, ``predict``
returns the logits (as in Keras).  ``CategoricalCrossentropy(from_logits=True)``
needs one-hot targets (the fused head takes labels).

A cross-entropy with probabilities (``from_logits=False``) on an output that cannot
be a probability (any activation but ``sigmoid``/``softmax``) is refused by
:func:`check_output`, naming the fix: a model with a linear output and
``"sparse_categorical_crossentropy"`` would otherwise train on clipped
"probabilities" and learn nothing useful.
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


#: Output activations whose values are probabilities.
PROBABILITY_OUTPUTS = ("sigmoid", "softmax")


class Loss:
    """A loss object for ``compile``: a loss name and ``from_logits``."""

    #: The loss name of :data:`LOSS_NAMES` this object computes.
    loss_name: str = ""

    def __init__(self, from_logits=False):
        if not isinstance(from_logits, (bool, np.bool_)):
            raise TypeError(f"from_logits must be True or False, got {from_logits!r}")
        self.from_logits = bool(from_logits)

    def get_config(self) -> dict:
        return {"from_logits": self.from_logits}

    def __eq__(self, other) -> bool:
        return type(self) is type(other) and self.get_config() == other.get_config()

    def __hash__(self) -> int:
        return hash((type(self).__name__, self.from_logits))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class SparseCategoricalCrossentropy(Loss):
    """Cross-entropy against integer labels ``y: (n,)``."""

    loss_name = "sparse_categorical_crossentropy"


class CategoricalCrossentropy(Loss):
    """Cross-entropy against one-hot (or, with probabilities, soft) targets ``(n, k)``."""

    loss_name = "categorical_crossentropy"


class BinaryCrossentropy(Loss):
    """Binary cross-entropy against targets in ``[0, 1]``, elementwise."""

    loss_name = "binary_crossentropy"


class MeanSquaredError(Loss):
    """``mean((y_pred - y)**2)``."""

    loss_name = "mse"

    def __init__(self):
        super().__init__(from_logits=False)

    def get_config(self) -> dict:
        return {}


#: Class names in saved configurations.
LOSS_CLASSES: dict[str, type[Loss]] = {
    cls.__name__: cls
    for cls in (
        SparseCategoricalCrossentropy,
        CategoricalCrossentropy,
        BinaryCrossentropy,
        MeanSquaredError,
    )  # fmt: skip
}


def as_object(loss) -> Loss:
    """The loss object of a canonical name or a :class:`Loss` (``from_logits=False``
    for names, as in Keras)."""
    if isinstance(loss, Loss):
        return loss
    return next(cls for cls in LOSS_CLASSES.values() if cls.loss_name == loss)()


def serialize(loss) -> str | dict:
    """A name stays a name; an object is ``{"class_name", "config"}``."""
    if isinstance(loss, Loss):
        return {"class_name": type(loss).__name__, "config": loss.get_config()}
    return loss


def check_output(loss, activation: str, layer_name: str) -> None:
    """Refuse a loss that cannot meet the last layer's output ``activation``.

    A cross-entropy on probabilities needs a ``sigmoid``/``softmax`` output; with
    ``from_logits=True`` the output must be ``linear`` (the logits).
    """
    spec = as_object(loss)
    if spec.loss_name == "mse":
        return
    cls = type(spec).__name__
    if spec.from_logits and activation != "linear":
        raise ValueError(
            f"{cls}(from_logits=True) takes logits, but the last layer {layer_name!r} applies "
            f"activation={activation!r}; use no activation (activation=None) on the last "
            f"layer, or {cls}(from_logits=False) with a probability output"
        )
    if spec.from_logits or activation in PROBABILITY_OUTPUTS:
        return
    prob = "sigmoid" if spec.loss_name == "binary_crossentropy" else "softmax"
    raise ValueError(
        f"loss {spec.loss_name!r} expects probabilities, but the last layer {layer_name!r} "
        f"has activation={activation!r}, whose outputs are not probabilities (training would "
        f"fit clipped values and learn nothing useful); use activation='{prob}' on the last "
        f"layer, or loss=fastnn.losses.{cls}(from_logits=True) with a linear last layer"
    )


def get(loss) -> str | Loss:
    """The canonical name of ``loss`` (a string), the :class:`Loss` object itself, or a
    ValueError listing the valid names."""
    if isinstance(loss, Loss):
        return loss
    if isinstance(loss, dict) and loss.get("class_name") in LOSS_CLASSES:
        return LOSS_CLASSES[loss["class_name"]](**loss.get("config", {}))
    if isinstance(loss, str):
        key = ALIASES.get(loss.strip().lower(), loss.strip().lower())
        if key in LOSS_NAMES:
            return key
    if not isinstance(loss, str):
        raise TypeError(
            "loss must be a string naming a loss or a fastnn.losses object (e.g. "
            f"SparseCategoricalCrossentropy(from_logits=True)), got {type(loss).__name__}"
        )
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


def prepare(loss, output_activation: str, y, n_outputs: int, dtype, name: str = "y") -> Plan:
    """Validate targets ``y`` for ``loss`` (a name or :class:`Loss`) and choose the head
    (see the module table)."""
    spec = as_object(loss)
    if spec.from_logits:
        return _prepare_logits(spec, y, n_outputs, dtype, name)
    loss = spec.loss_name
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


def _prepare_logits(spec: Loss, y, n_outputs, dtype, name) -> Plan:
    """Targets of a ``from_logits=True`` loss: always a fused head on a linear output."""
    if spec.loss_name == "sparse_categorical_crossentropy":
        return Plan("softmax_cross_entropy", "linear", data_checks.check_labels(name, y, n_outputs))
    T = data_checks.check_targets(name, y, n_outputs, dtype)
    if spec.loss_name == "binary_crossentropy":
        if T.min() < 0 or T.max() > 1:
            raise ValueError(
                f"binary_crossentropy targets {name} must lie in [0, 1]; found values in "
                f"[{T.min().item()}, {T.max().item()}]"
            )
        return Plan("sigmoid_cross_entropy", "linear", T)
    if not (np.all((T == 0) | (T == 1)) and np.all(T.sum(axis=1) == 1)):
        raise ValueError(
            f"CategoricalCrossentropy(from_logits=True) needs one-hot targets {name} (each row "
            "one 1, the rest 0); for soft targets use a softmax output with from_logits=False"
        )
    return Plan("softmax_cross_entropy", "linear", np.argmax(T, axis=1).astype(np.int64))


def batch_loss(ops, plan: Plan, Z, Y, T, weights=None):
    """Mean loss of one batch from the last layer's logits ``Z`` and outputs ``Y``
    (``weights: (n,)``: Keras' ``sample_weight``, ``sum(w_i loss_i) / n``)."""
    kw = {} if weights is None else {"weights": weights}
    if plan.head == "softmax_cross_entropy":
        value, _ = ops.softmax_cross_entropy(Z, T, **kw)
    elif plan.head == "sigmoid_cross_entropy":
        value, _ = ops.sigmoid_cross_entropy(Z, T, **kw)
    else:
        value, _ = ops.loss(plan.head, Y, T, **kw)
    return value


# ---------------------------------------------------------------- sample weights
def check_sample_weight(sample_weight, n: int, dtype, name: str = "sample_weight"):
    """Keras' ``sample_weight``: ``(n,)`` finite numbers ``>= 0`` (None stays None),
    as a C-contiguous array of ``dtype``."""
    if sample_weight is None:
        return None
    w = data_checks.as_numeric(name, sample_weight)
    if w.ndim == 2 and w.shape[1] == 1:
        w = w[:, 0]
    if w.ndim != 1 or w.shape[0] != n:
        raise ValueError(
            f"{name} must hold one weight per sample: shape ({n},), got shape {w.shape}"
        )
    bad = ~np.isfinite(w) | (w < 0)
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(f"{name} must be finite and >= 0; {name}[{i}] is {w[i]}")
    return np.ascontiguousarray(w, dtype=dtype)


def class_weight_to_sample_weight(class_weight, plan: Plan, n_outputs: int, dtype):
    """Keras' ``class_weight`` ``{class: weight}`` as per-sample weights ``(n,)``.

    A sample's class is its label (integer labels), the argmax of its one-hot row, or
    its rounded 0/1 target for a single output; classes missing from the dict weigh 1
    (as in Keras).  Keys must be classes of the model: integers in ``[0, k)``
    (``{0, 1}`` for a single output).
    """
    if not isinstance(class_weight, dict):
        raise TypeError(
            f"class_weight must be a dict {{class: weight}}, got {type(class_weight).__name__}"
        )
    n_classes = max(n_outputs, 2)
    table = np.ones(n_classes, dtype=np.float64)
    for key, value in class_weight.items():
        if isinstance(key, (bool, np.bool_)) or not isinstance(key, (int, np.integer)):
            raise TypeError(f"class_weight keys must be integer classes, got {key!r}")
        if not 0 <= key < n_classes:
            raise ValueError(
                f"class_weight has unknown class {key}: the model's classes are 0..{n_classes - 1}"
            )
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number)):
            raise TypeError(f"class_weight[{key}] must be a number, got {value!r}")
        if not np.isfinite(value) or value < 0:
            raise ValueError(f"class_weight[{key}] must be finite and >= 0, got {value}")
        table[int(key)] = float(value)
    T = plan.T
    if T.ndim == 1:
        labels = T
    elif T.shape[1] > 1:
        labels = np.argmax(T, axis=1)
    else:
        labels = np.rint(T[:, 0]).astype(np.int64)
    return np.ascontiguousarray(table[labels], dtype=dtype)
