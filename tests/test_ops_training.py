"""The training ops of issue 10 (contract extension): agreement, formulas, references.

Covers the new and changed ops of :mod:`fastnn.kernels.contract` -- the activations
``leaky_relu, elu, gelu, softplus, silu``, ``dense_backward(need_dX=)``, the loss ops'
``weights=``, ``sgd_update(nesterov=, weight_decay=)``, ``adam_update(weight_decay=,
eps_outside=)``, ``rmsprop_update``, ``penalty``, ``dropout_mask`` and the new
``train_batches`` keywords -- on every backend, against the python reference and
against independent references (hand computations, PyTorch, scikit-learn's formula).

The tests call the backends directly (``fastnn.get_ops(name).impl``): the validating
edge (``fastnn.dispatch``) does not know the new keywords yet.

``numba`` implements these ops in a follow-up: its cases are marked through
:func:`numba_pending` only (strict xfail, so they must fail until then, and one
deletion re-enables all of them).
"""

from __future__ import annotations

import pytest

NUMBA_PENDING_REASON = "numba implementation pending (issue 10 ops: contract extension)"


def numba_pending(request, backend: str) -> None:
    """Mark the running test as a strict expected failure when ``backend`` is ``numba``.

    The one place that defers the new ops on numba: remove it (and its calls) when the
    numba backend implements the contract extension.
    """
    if backend == "numba":
        request.applymarker(pytest.mark.xfail(strict=True, reason=NUMBA_PENDING_REASON))
