"""Metrics for ``Sequential.compile(metrics=[...])``, under Keras 3's names.

=================================  ==============================================
name (string, or class here)       value (mean over samples)
=================================  ==============================================
``"accuracy"`` (``"acc"``)         the contract's correct count (below)
``"binary_accuracy"``              ``mean((Y > threshold) == (T > 0.5))`` over all
                                   outputs; ``BinaryAccuracy(threshold=0.5)``
``"categorical_accuracy"``         ``argmax(Y) == argmax(T)`` (one-hot targets)
``"sparse_categorical_accuracy"``  ``argmax(Y) == label`` (integer labels)
``"top_k_categorical_accuracy"``   the true class among the ``k`` (5) highest scores
                                   (ties with the k-th count as hits);
                                   ``TopKCategoricalAccuracy(k=5)``
``"mae"``, ``"mean_absolute_error"``  ``mean(|Y - T|)``; ``MeanAbsoluteError()``
``"mse"``, ``"mean_squared_error"``   ``mean((Y - T)**2)``; ``MeanSquaredError()``
=================================  ==============================================

``History`` and ``evaluate(return_dict=True)`` report each metric under the string
the user passed (``"mae"`` as ``mae``, ``"acc"`` as ``accuracy``) or the object's
``name`` (``MeanAbsoluteError().name == "mean_absolute_error"``); validation values
get a ``val_`` prefix.  ``T`` is the target in one-hot form when the loss takes labels.

``"accuracy"`` is the fraction of correctly classified samples exactly as
:meth:`fastnn.kernels.contract.Ops.train_batches` counts them: argmax of the output
against the label (or the argmax of one-hot targets) for several output units; for
one output unit, output above the decision threshold (0 on the logits of a fused
sigmoid head, 0.5 on probabilities) against target > 0.5.

**Training-time values.**  Accuracy-type metrics that coincide with that count
(``accuracy``; ``categorical_accuracy``/``sparse_categorical_accuracy`` with several
outputs; ``binary_accuracy`` at threshold 0.5 with one output) are counted inside
the fused trainer, as running means over the epoch's batches like Keras.  The
others (``mae``, ``mse``, ``top_k_categorical_accuracy``, ...) cannot be, so their
training value is computed after each epoch over the training data with that
epoch's final weights (Keras averages them during the epoch).  Validation and
``evaluate`` values are exact means over the data in every case.
"""

from __future__ import annotations

import numpy as np

from fastnn.kernels import contract

#: Keras' short spellings, accepted as synonyms and reported under the canonical name.
ALIASES = {"acc": "accuracy"}


class Metric:
    """A stateless per-batch metric with Keras' streaming interface on top.

    ``metric(y_true, y_pred)`` returns the mean over the samples; ``update_state``
    / ``result`` / ``reset_state`` accumulate over several batches.
    """

    #: The Keras name (history key).
    default_name = "metric"

    def __init__(self, name=None):
        self.name = self.default_name if name is None else str(name)
        self.reset_state()

    def values(self, Y: np.ndarray, T: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """Per-sample values (``(n,)`` float64) from outputs ``Y: (n, k)``, dense targets
        ``T: (n, k)`` and class labels ``(n,)``."""
        raise NotImplementedError

    def counted_by_trainer(self, n_outputs: int) -> bool:
        """True if the fused trainer's correct count is exactly this metric."""
        return False

    def __call__(self, y_true, y_pred) -> float:
        Y, T, labels = _standard(y_true, y_pred)
        return float(np.mean(self.values(Y, T, labels)))

    def update_state(self, y_true, y_pred) -> None:
        Y, T, labels = _standard(y_true, y_pred)
        v = self.values(Y, T, labels)
        self._total += float(np.sum(v))
        self._count += len(v)

    def result(self) -> float:
        return self._total / self._count if self._count else 0.0

    def reset_state(self) -> None:
        self._total = 0.0
        self._count = 0

    def get_config(self) -> dict:
        return {"name": self.name}

    def __eq__(self, other) -> bool:
        return type(self) is type(other) and self.get_config() == other.get_config()

    def __hash__(self) -> int:
        return hash((type(self).__name__, self.name))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


def _standard(y_true, y_pred):
    """(Y, dense T, labels) from user arrays: labels ``(n,)`` or dense ``(n, k)``."""
    Y = np.asarray(y_pred, dtype=np.float64)
    if Y.ndim == 1:
        Y = Y[:, None]
    T = np.asarray(y_true)
    if T.ndim == 1 and Y.shape[1] > 1:
        labels = T.astype(np.int64)
        return Y, np.eye(Y.shape[1])[labels], labels
    T = T.astype(np.float64).reshape(len(Y), -1)
    return Y, T, labels_of(T)


def labels_of(T: np.ndarray) -> np.ndarray:
    """Class labels of dense targets: the value itself for one column, else argmax."""
    if T.shape[1] == 1:
        return np.rint(T[:, 0]).astype(np.int64)
    return np.argmax(T, axis=1)


class Accuracy(Metric):
    """``"accuracy"``: the contract's correct count (see the module doc)."""

    default_name = "accuracy"

    def values(self, Y, T, labels):
        if Y.shape[1] == 1:
            return ((Y[:, 0] > 0.5) == (T[:, 0] > 0.5)).astype(np.float64)
        return (np.argmax(Y, axis=1) == labels).astype(np.float64)

    def counted_by_trainer(self, n_outputs):
        return True


class BinaryAccuracy(Metric):
    default_name = "binary_accuracy"

    def __init__(self, name=None, threshold=0.5):
        self.threshold = float(threshold)
        super().__init__(name)

    def values(self, Y, T, labels):
        return np.mean((Y > self.threshold) == (T > 0.5), axis=1)

    def counted_by_trainer(self, n_outputs):
        return n_outputs == 1 and self.threshold == 0.5

    def get_config(self):
        return {"name": self.name, "threshold": self.threshold}


class CategoricalAccuracy(Metric):
    default_name = "categorical_accuracy"

    def values(self, Y, T, labels):
        return (np.argmax(Y, axis=1) == labels).astype(np.float64)

    def counted_by_trainer(self, n_outputs):
        return n_outputs > 1


class SparseCategoricalAccuracy(CategoricalAccuracy):
    default_name = "sparse_categorical_accuracy"


class TopKCategoricalAccuracy(Metric):
    default_name = "top_k_categorical_accuracy"

    def __init__(self, k=5, name=None):
        self.k = int(k)
        super().__init__(name)

    def values(self, Y, T, labels):
        true_score = Y[np.arange(len(Y)), labels]
        higher = np.sum(Y > true_score[:, None], axis=1)
        return (higher < self.k).astype(np.float64)

    def get_config(self):
        return {"name": self.name, "k": self.k}


class MeanAbsoluteError(Metric):
    default_name = "mean_absolute_error"

    def values(self, Y, T, labels):
        return np.mean(np.abs(Y - T), axis=1)


class MeanSquaredError(Metric):
    default_name = "mean_squared_error"

    def values(self, Y, T, labels):
        return np.mean((Y - T) ** 2, axis=1)


#: String names ``compile`` accepts -> metric classes.
METRICS: dict[str, type[Metric]] = {
    "accuracy": Accuracy,
    "binary_accuracy": BinaryAccuracy,
    "categorical_accuracy": CategoricalAccuracy,
    "sparse_categorical_accuracy": SparseCategoricalAccuracy,
    "top_k_categorical_accuracy": TopKCategoricalAccuracy,
    "mae": MeanAbsoluteError,
    "mean_absolute_error": MeanAbsoluteError,
    "mse": MeanSquaredError,
    "mean_squared_error": MeanSquaredError,
}

#: Metric names ``compile`` accepts.
METRIC_NAMES: tuple[str, ...] = tuple(METRICS)


def get(identifier) -> Metric:
    """A metric object from a name (reported under that name) or a :class:`Metric`."""
    if isinstance(identifier, Metric):
        return identifier
    if isinstance(identifier, str):
        key = ALIASES.get(identifier, identifier)
        if key in METRICS:
            return METRICS[key](name=key)
        raise ValueError(
            f"unknown metric {identifier!r}; valid choices are: "
            f"{', '.join(repr(n) for n in (*METRICS, *ALIASES))} (or a fastnn.metrics object)"
        )
    raise TypeError(
        f"a metric must be a name or a fastnn.metrics.Metric, got {type(identifier).__name__}"
    )


def get_list(metrics) -> tuple[Metric, ...]:
    """Metric objects from ``None``, one name/object, or a list; duplicates dropped."""
    if metrics is None:
        return ()
    if isinstance(metrics, (str, Metric)):
        metrics = [metrics]
    if not isinstance(metrics, (list, tuple)):
        raise TypeError(f"metrics must be a list of metric names, got {type(metrics).__name__}")
    out: list[Metric] = []
    for m in metrics:
        metric = get(m)
        if all(metric.name != other.name for other in out):
            out.append(metric)
    return tuple(out)


def count_correct(out, T, head: str) -> int:
    """Correct predictions in one batch (``out``: the last layer's training output)."""
    return contract.count_correct(out, T, head)
