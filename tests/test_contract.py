"""Contract consistency: every backend and the validating edge expose exactly the ops
of :class:`fastnn.kernels.contract.Ops`, with the same parameter names and defaults."""

from __future__ import annotations

import abc
import inspect

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fastnn
from fastnn.dispatch import CheckedOps
from fastnn.kernels.contract import (
    ACTIVATIONS,
    ALL_ACTIVATIONS,
    ALL_DIFFERENTIABLE_ACTIVATIONS,
    ALL_OPTIMIZERS,
    COMPOSITION_HOOKS,
    DIFFERENTIABLE_ACTIVATIONS,
    HYPER_REQUIRED,
    NEW_ACTIVATIONS,
    NEW_OPS,
    OP_NAMES,
    OPTIMIZERS,
    Ops,
    StepBackwardError,
)


def params_of(cls, op):
    """(name, kind, default) of every parameter of ``cls.op``, ``self`` included."""
    return [
        (p.name, p.kind, p.default) for p in inspect.signature(getattr(cls, op)).parameters.values()
    ]


def public_methods(cls) -> set[str]:
    """Public callables defined on ``cls`` or a base class other than ``Ops``/``object``."""
    names = set()
    for klass in cls.__mro__:
        if klass in (Ops, abc.ABC, object):
            continue
        for attr, value in vars(klass).items():
            if not attr.startswith("_") and callable(value):
                names.add(attr)
    return names


def test_contract_lists_every_op():
    """OP_NAMES, the Ops methods and the activation lists agree with each other."""
    contract_methods = {
        name for name, value in vars(Ops).items() if not name.startswith("_") and callable(value)
    }
    assert contract_methods == set(OP_NAMES) | set(COMPOSITION_HOOKS)
    assert not set(COMPOSITION_HOOKS) & set(OP_NAMES)
    assert set(Ops.__abstractmethods__) | {"train_batches"} == set(OP_NAMES)
    assert set(NEW_OPS) <= set(Ops.__abstractmethods__)
    assert set(DIFFERENTIABLE_ACTIVATIONS) == set(ACTIVATIONS) - {"step"}


def test_lists_keep_the_earlier_codes():
    """Issue 10's names are appended: every earlier integer code (index) is kept, and
    the earlier hyper tuples are the required prefixes of the full ones."""
    earlier = ("linear", "sigmoid", "relu", "tanh", "softmax", "step")
    assert ACTIVATIONS == earlier + NEW_ACTIVATIONS
    assert list(OPTIMIZERS)[:2] == ["sgd", "adam"]
    assert OPTIMIZERS["sgd"][1][: HYPER_REQUIRED["sgd"]] == ("lr", "momentum")
    assert OPTIMIZERS["adam"][1][: HYPER_REQUIRED["adam"]] == ("lr", "beta1", "beta2", "eps")
    assert set(HYPER_REQUIRED) == set(OPTIMIZERS)
    # aliases of the staged rollout, used by the validating edge
    assert ALL_ACTIVATIONS is ACTIVATIONS and ALL_OPTIMIZERS is OPTIMIZERS
    assert ALL_DIFFERENTIABLE_ACTIVATIONS is DIFFERENTIABLE_ACTIVATIONS


@pytest.mark.parametrize("op", OP_NAMES + COMPOSITION_HOOKS)
def test_backend_signatures(backend, op):
    cls = type(fastnn.get_ops(backend).impl)
    assert issubclass(cls, Ops)
    assert cls.name == backend
    assert params_of(cls, op) == params_of(Ops, op), f"{cls.__name__}.{op}"


@pytest.mark.parametrize("op", NEW_OPS)
def test_backend_implements_new_ops(backend, op):
    """A backend overrides each op added by issue 10."""
    cls = type(fastnn.get_ops(backend).impl)
    assert getattr(cls, op) is not getattr(Ops, op), f"{cls.__name__} lacks {op}"


@pytest.mark.parametrize("op", OP_NAMES)
@pytest.mark.parametrize("name", [None, "auto"])
def test_checked_ops_signatures(op, name):
    """The validating edge, and the class ``auto`` uses for it, mirror the contract."""
    cls = CheckedOps if name is None else type(fastnn.get_ops(name))
    assert issubclass(cls, CheckedOps)
    assert params_of(cls, op) == params_of(Ops, op), f"{cls.__name__}.{op}"


def test_backends_define_no_extra_public_methods(backend):
    cls = type(fastnn.get_ops(backend).impl)
    extra = public_methods(cls) - set(OP_NAMES) - set(COMPOSITION_HOOKS)
    assert not extra, f"{cls.__name__} defines public methods outside the contract: {extra}"
    assert not inspect.isabstract(cls)


def test_checked_ops_exposes_every_op():
    assert public_methods(CheckedOps) >= set(OP_NAMES)


def test_step_backward_raises(backend, dtype):
    """'step' is forward-only: its backward raises a clear error on every backend."""
    ops = fastnn.get_ops(backend)
    X = np.ones((2, 3), dtype)
    W = np.ones((3, 2), dtype)
    Z, Y = ops.dense_forward(X, W, np.zeros(2, dtype), "step")
    with pytest.raises(StepBackwardError, match="'step'.*no gradient"):
        ops.dense_backward(np.ones((2, 2), dtype), X, W, Z, Y, "step")
    # Also for an empty batch: the error does not depend on the data.
    empty = np.ones((0, 2), dtype)
    with pytest.raises(StepBackwardError):
        ops.dense_backward(empty, X[:0], W, empty, empty, "step")
    # It is a ValueError, so callers catching bad arguments catch it too.
    assert issubclass(StepBackwardError, ValueError)


@settings(max_examples=200, deadline=None)
@given(
    batch_size=st.integers(1, 40),
    epoch_size=st.one_of(st.none(), st.integers(1, 30)),
    epochs=st.integers(0, 5),
    m=st.integers(0, 100),
)
def test_count_batches_is_the_number_of_batch_bounds(batch_size, epoch_size, epochs, m):
    from fastnn.kernels.contract import batch_bounds, count_batches

    if epoch_size is not None:
        m = epochs * epoch_size  # order holds whole epochs
    assert count_batches(m, batch_size, epoch_size) == len(batch_bounds(m, batch_size, epoch_size))
