"""Metric names for ``Sequential.compile(metrics=...)``.

``"accuracy"`` is the fraction of correctly classified samples, defined exactly
as :meth:`fastnn.kernels.contract.Ops.train_batches` counts them: argmax of the
output against the label (or the argmax of one-hot targets) for several output
units; for one output unit, output above the decision threshold (0 on the
logits of a fused sigmoid head, 0.5 on probabilities) against target > 0.5.
"""

from __future__ import annotations

from fastnn.kernels import contract

#: Metric names ``compile`` accepts.
METRIC_NAMES: tuple[str, ...] = ("accuracy",)

#: Keras' short spelling, accepted as a synonym.
ALIASES = {"acc": "accuracy"}


def get_list(metrics) -> tuple[str, ...]:
    """Canonical metric names from ``None``, one name, or a list of names."""
    if metrics is None:
        return ()
    if isinstance(metrics, str):
        metrics = [metrics]
    if not isinstance(metrics, (list, tuple)):
        raise TypeError(f"metrics must be a list of metric names, got {type(metrics).__name__}")
    names = []
    for m in metrics:
        key = ALIASES.get(m, m) if isinstance(m, str) else m
        if key not in METRIC_NAMES:
            raise ValueError(
                f"unknown metric {m!r}; valid choices are: "
                f"{', '.join(repr(n) for n in METRIC_NAMES)}"
            )
        if key not in names:
            names.append(key)
    return tuple(names)


def count_correct(out, T, head: str) -> int:
    """Correct predictions in one batch (``out``: the last layer's training output)."""
    return contract.count_correct(out, T, head)
