"""The validating edge of the op contract: :class:`CheckedOps`.

It wraps one backend: validates arguments (shape, dtype, names, label range),
makes inputs C-contiguous and casts scalars to the arrays' dtype, then calls the
backend's kernel.  Backends themselves never validate.
"""

from __future__ import annotations

import inspect

import numpy as np

from fastnn.kernels.contract import (
    ALL_ACTIVATIONS,
    ALL_DIFFERENTIABLE_ACTIVATIONS,
    ALL_OPTIMIZERS,
    HEADS,
    HYPER_REQUIRED,
    LEAKY_RELU_SLOPE,
    LOGIT_HEADS,
    LOSSES,
    OP_NAMES,
    Ops,
    count_batches,
)

from . import validation as chk


class CheckedOps:
    """The op contract's API edge: validates, then calls one backend's kernel.

    ``name`` is the requested backend (``"auto"`` included); ``impl`` the
    :class:`~fastnn.kernels.contract.Ops` object that computes.  Method
    signatures are exactly the contract's.
    """

    def __init__(self, name: str, impl: Ops):
        self.name = name
        self.impl = impl

    def __repr__(self) -> str:
        return f"<fastnn ops backend={self.name!r} impl={self.impl.name!r}>"

    def _impl_for(self, op: str, *args) -> Ops:
        """The backend that runs ``op`` on these (validated) arguments.

        A fixed backend always answers itself; ``auto`` (:class:`fastnn.dispatch.autotune.AutoOps`)
        answers from per-machine measurements keyed by op, dtype and shape.
        """
        return self.impl

    def _run(self, op: str, *args, **options):
        return getattr(self._impl_for(op, *args), op)(*args, **given_options(op, options))

    def run_prevalidated(self, op: str, *args, **options):
        """Run ``op`` on arguments the caller already validated, skipping the checks.

        For callers that are themselves an API edge and build every argument in the
        form the checks produce (contiguous arrays of one float dtype, int64
        indices and labels, lists, hyper-parameters in the dtype): the model layer's
        training loop, which checks the user's data once per ``fit`` and then calls
        ``train_batches`` many times.  Backend selection (``auto``) still applies.
        """
        return self._run(op, *args, **options)

    # ----------------------------------------------------------------- layer ops

    def dense_forward(self, X, W, b, activation, *, negative_slope=LEAKY_RELU_SLOPE):
        chk.check_name("activation", activation, ALL_ACTIVATIONS)
        X = chk.as_array("X", X, 2)
        W = chk.as_array("W", W, 2, X.dtype)
        b = chk.as_array("b", b, 1, X.dtype)
        if X.shape[1] != W.shape[0]:
            raise ValueError(
                f"X has {X.shape[1]} features (shape {X.shape}) but W expects "
                f"{W.shape[0]} (shape {W.shape})"
            )
        if b.shape[0] != W.shape[1]:
            raise ValueError(f"b has shape {b.shape} but W has {W.shape[1]} output units")
        chk.check_nonempty("W", W, "a dense layer needs at least one input and one unit")
        slope = chk.check_scalar("negative_slope", negative_slope)
        return self._run("dense_forward", X, W, b, activation, negative_slope=slope)

    def dense_backward(
        self, dY, X, W, Z, Y, activation, *, need_dX=True, negative_slope=LEAKY_RELU_SLOPE
    ):
        chk.check_name("activation", activation, ALL_ACTIVATIONS)
        X = chk.as_array("X", X, 2)
        dt = X.dtype
        W = chk.as_array("W", W, 2, dt)
        dY = chk.as_array("dY", dY, 2, dt)
        Z = chk.as_array("Z", Z, 2, dt)
        Y = chk.as_array("Y", Y, 2, dt)
        chk.check_nonempty("W", W, "a dense layer needs at least one input and one unit")
        n, n_out = X.shape[0], W.shape[1]
        if X.shape[1] != W.shape[0]:
            raise ValueError(f"X has shape {X.shape} but W has shape {W.shape}")
        for nm, A in (("dY", dY), ("Z", Z), ("Y", Y)):
            if A.shape != (n, n_out):
                raise ValueError(f"{nm} must have shape {(n, n_out)}, got {A.shape}")
        slope = chk.check_scalar("negative_slope", negative_slope)
        return self._run(
            "dense_backward", dY, X, W, Z, Y, activation,
            need_dX=chk.check_flag("need_dX", need_dX), negative_slope=slope,
        )  # fmt: skip

    # ------------------------------------------------------------------- losses

    def loss(self, name, Y, T, *, weights=None):
        chk.check_name("loss", name, LOSSES)
        Y = chk.as_array("Y", Y, 2)
        T = chk.as_array("T", T, 2, Y.dtype)
        chk.check_same_shape([("Y", Y), ("T", T)])
        chk.check_nonempty("Y", Y, "a loss needs at least one row and one column")
        weights = chk.as_weights("weights", weights, Y.shape[0], Y.dtype)
        return self._run("loss", name, Y, T, weights=weights)

    def softmax_cross_entropy(self, Z, labels, *, weights=None):
        Z = chk.as_array("Z", Z, 2)
        chk.check_nonempty("Z", Z, "a loss needs at least one row and one column")
        labels = chk.as_labels("labels", labels, Z.shape[0], Z.shape[1])
        weights = chk.as_weights("weights", weights, Z.shape[0], Z.dtype)
        return self._run("softmax_cross_entropy", Z, labels, weights=weights)

    def sigmoid_cross_entropy(self, Z, T, *, weights=None):
        Z = chk.as_array("Z", Z, 2)
        T = chk.as_array("T", T, 2, Z.dtype)
        chk.check_same_shape([("Z", Z), ("T", T)])
        chk.check_nonempty("Z", Z, "a loss needs at least one row and one column")
        weights = chk.as_weights("weights", weights, Z.shape[0], Z.dtype)
        return self._run("sigmoid_cross_entropy", Z, T, weights=weights)

    # --------------------------------------------------------------- optimizers

    def _state(self, param, grad, **state):
        chk.check_array_type("param", param)
        dt = chk.float_dtype_of("param", param)
        chk.check_inplace("param", param)
        chk.check_array_type("grad", grad)
        grad = chk.as_array("grad", grad, grad.ndim, dt)
        pairs = [("param", param), ("grad", grad)]
        for nm, A in state.items():
            chk.check_array_type(nm, A)
            chk.as_array(nm, A, A.ndim, dt)
            chk.check_inplace(nm, A)
            pairs.append((nm, A))
        chk.check_same_shape(pairs)
        return dt.type, grad

    def sgd_update(self, param, grad, velocity, lr, momentum, *, nesterov=False, weight_decay=0):
        lr, momentum, wd = chk.check_hypers(lr=lr, momentum=momentum, weight_decay=weight_decay)
        cast, grad = self._state(param, grad, velocity=velocity)
        self._run(
            "sgd_update", param, grad, velocity, cast(lr), cast(momentum),
            nesterov=chk.check_flag("nesterov", nesterov), weight_decay=cast(wd),
        )  # fmt: skip

    def adam_update(
        self, param, grad, m, v, step, lr, beta1, beta2, eps, *, weight_decay=0, eps_outside=False
    ):
        step = chk.check_int("step", step, low=1)
        lr, beta1, beta2, eps, wd = chk.check_hypers(
            lr=lr, beta1=beta1, beta2=beta2, eps=eps, weight_decay=weight_decay
        )
        outside = chk.check_flag("eps_outside", eps_outside)
        cast, grad = self._state(param, grad, m=m, v=v)
        self._run(
            "adam_update", param, grad, m, v, step, cast(lr), cast(beta1), cast(beta2),
            cast(eps), weight_decay=cast(wd), eps_outside=outside,
        )  # fmt: skip

    def rmsprop_update(self, param, grad, ms, mom, lr, rho, momentum, eps, *, weight_decay=0):
        lr, rho, momentum, eps, wd = chk.check_hypers(
            lr=lr, rho=rho, momentum=momentum, eps=eps, weight_decay=weight_decay
        )
        cast, grad = self._state(param, grad, ms=ms, mom=mom)
        self._run(
            "rmsprop_update", param, grad, ms, mom, cast(lr), cast(rho), cast(momentum),
            cast(eps), weight_decay=cast(wd),
        )  # fmt: skip

    # ------------------------------------------------------- regularization ops

    def penalty(self, W, dW, l1, l2, scale=1.0):
        chk.check_array_type("W", W)
        W = chk.as_array("W", W, W.ndim)
        chk.check_array_type("dW", dW)
        chk.as_array("dW", dW, dW.ndim, W.dtype)
        chk.check_inplace("dW", dW)
        chk.check_same_shape([("W", W), ("dW", dW)])
        l1, l2 = chk.check_penalty_pair("penalty", (l1, l2))
        scale = chk.check_scalar("scale", scale, low=0)
        return self._run("penalty", W, dW, l1, l2, scale)

    def dropout_mask(self, shape, rate, seed, step, layer, dtype):
        if not isinstance(shape, tuple) or len(shape) != 2:
            raise ValueError(f"shape must be a tuple (n, width), got {shape!r}")
        n = chk.check_int("shape[0]", shape[0], low=0)
        width = chk.check_int("shape[1]", shape[1], low=0)
        rate = chk.check_dropout_rate("rate", rate)
        seed = chk.check_int("seed", seed)
        step = chk.check_int("step", step, low=0)
        layer = chk.check_int("layer", layer, low=0)
        dt = chk.check_float_dtype("dtype", dtype)
        return self._run("dropout_mask", (n, width), rate, seed, step, layer, dt)

    # --------------------------------------------------------------- training

    def train_batches(
        self, Ws, bs, activations, X, T, order, batch_size, head, optimizer, state, hyper, step,
        *, penalties=None, penalty_per_row=False, trainable=None, lrs=None, epoch_size=None,
        dropout=None, seed=0, sample_weight=None, negative_slopes=None,
    ):  # fmt: skip
        chk.check_name("head", head, HEADS)
        chk.check_name("optimizer", optimizer, tuple(ALL_OPTIMIZERS))
        L = _check_layers(Ws, bs, activations, head)
        X = chk.as_array("X", X, 2)
        _check_weights_chain(Ws, bs, X)
        T = _check_targets(T, head, X, Ws[-1].shape[1])
        order = _check_order(order, X.shape[0])
        batch_size = chk.check_int("batch_size", batch_size, low=1)
        step = chk.check_int("step", step, low=0)
        _check_state(Ws, bs, state, optimizer, X.dtype)
        hyper = _check_hyper(hyper, optimizer, X.dtype)
        options = _check_train_options(
            L, X, order, batch_size, trainable=trainable, penalties=penalties,
            penalty_per_row=penalty_per_row, lrs=lrs, epoch_size=epoch_size, dropout=dropout,
            seed=seed, sample_weight=sample_weight, negative_slopes=negative_slopes,
        )  # fmt: skip
        return self._run(
            "train_batches", list(Ws), list(bs), list(activations), X, T, order, batch_size,
            head, optimizer, [tuple(S) for S in state], hyper, step, **options,
        )  # fmt: skip


def given_options(op: str, options: dict) -> dict:
    """The keyword options of a call of ``op`` that differ from the contract's defaults.

    Options at their defaults are not passed on: a call that uses no option is the
    plain call, and costs no keyword handling in the backend."""
    if not options:
        return options
    defaults = _OPTION_DEFAULTS[op]
    return {k: v for k, v in options.items() if not _equal(v, defaults[k])}


def _option_defaults(op: str) -> dict:
    """The contract's defaults of ``op``'s keyword-only options."""
    params = inspect.signature(getattr(Ops, op)).parameters.values()
    return {p.name: p.default for p in params if p.kind is p.KEYWORD_ONLY}


_OPTION_DEFAULTS = {op: _option_defaults(op) for op in OP_NAMES}


def _equal(value, default) -> bool:
    if value is None or default is None:
        return value is default
    return isinstance(value, (bool, int, float, np.floating)) and value == default


# ------------------------------------------------------ train_batches checks


def _check_layers(Ws, bs, activations, head) -> int:
    """The per-layer lists: one entry each, differentiable activations, logits for the
    fused heads.  Returns the number of layers."""
    for nm, seq in (("Ws", Ws), ("bs", bs), ("activations", activations)):
        chk.check_sequence(nm, seq)
    L = len(Ws)
    if L < 1:
        raise ValueError("Ws must hold at least one layer's weights")
    if len(bs) != L or len(activations) != L:
        raise ValueError(
            f"Ws, bs and activations must have one entry per layer; got {L}, "
            f"{len(bs)} and {len(activations)}"
        )
    for l, act in enumerate(activations):
        chk.check_name(f"activation of layer {l}", act, ALL_DIFFERENTIABLE_ACTIVATIONS)
    if head in LOGIT_HEADS and activations[-1] != "linear":
        raise ValueError(
            f"head {head!r} takes logits: the last layer's activation must be 'linear', "
            f"got {activations[-1]!r}"
        )
    return L


def _check_weights_chain(Ws, bs, X) -> None:
    """Every ``W_l``/``b_l``: an updatable array of X's dtype, chaining layer to layer."""
    n_in = X.shape[1]
    for l in range(len(Ws)):
        for nm, A, ndim in ((f"Ws[{l}]", Ws[l], 2), (f"bs[{l}]", bs[l], 1)):
            chk.check_array_type(nm, A)
            chk.as_array(nm, A, ndim, X.dtype)
            chk.check_inplace(nm, A)
        if Ws[l].shape[0] != n_in:
            what = "X has" if l == 0 else f"layer {l - 1} outputs"
            raise ValueError(
                f"Ws[{l}] has shape {Ws[l].shape} but {what} {n_in} features; "
                "each layer's W must be (inputs, units) and chain with the previous one"
            )
        n_in = Ws[l].shape[1]
        if bs[l].shape != (n_in,):
            raise ValueError(f"bs[{l}] must have shape ({n_in},), got {bs[l].shape}")


def _check_targets(T, head, X, k) -> np.ndarray:
    N = X.shape[0]
    if head == "softmax_cross_entropy":
        return chk.as_labels("T", T, N, k)
    T = chk.as_array("T", T, 2, X.dtype)
    if T.shape != (N, k):
        raise ValueError(
            f"T must have shape {(N, k)} (one row per row of X, one column per "
            f"output unit), got {T.shape}"
        )
    return T


def _check_order(order, N) -> np.ndarray:
    chk.check_array_type("order", order)
    if order.ndim != 1 or order.dtype.kind not in "iu":
        raise ValueError(
            f"order must be a 1-D integer array of row indices, got a {order.ndim}-D "
            f"array of dtype {order.dtype}"
        )
    if order.size and (order.min() < 0 or order.max() >= N):
        raise ValueError(f"order must hold row indices in [0, {N}) for X with {N} rows")
    return np.ascontiguousarray(order, dtype=np.int64)


def _check_state(Ws, bs, state, optimizer, dt) -> None:
    """``state[p]``: the optimizer's state arrays of parameter ``p`` (W0, b0, W1, ...)."""
    chk.check_sequence("state", state)
    state_names = ALL_OPTIMIZERS[optimizer][0]
    params = [
        (nm, A) for l in range(len(Ws)) for nm, A in ((f"Ws[{l}]", Ws[l]), (f"bs[{l}]", bs[l]))
    ]
    if len(state) != len(params):
        raise ValueError(
            f"state must hold one entry per parameter (W0, b0, W1, b1, ...): expected "
            f"{len(params)}, got {len(state)}"
        )
    for p, ((pname, P), S) in enumerate(zip(params, state)):
        if not isinstance(S, (list, tuple)) or len(S) != len(state_names):
            raise ValueError(
                f"state[{p}] must be a tuple of {len(state_names)} arrays "
                f"{state_names} for optimizer {optimizer!r}"
            )
        for sname, A in zip(state_names, S):
            nm = f"state[{p}] ({sname} of {pname})"
            chk.check_array_type(nm, A)
            chk.as_array(nm, A, P.ndim, dt)
            chk.check_inplace(nm, A)
            if A.shape != P.shape:
                raise ValueError(f"{nm} has shape {A.shape} but {pname} has shape {P.shape}")


def _check_hyper(hyper, optimizer, dt) -> tuple:
    """The optimizer's hyper-parameters in the dtype; trailing ones may be omitted."""
    names = ALL_OPTIMIZERS[optimizer][1]
    required = HYPER_REQUIRED[optimizer]
    if not isinstance(hyper, (list, tuple)) or not required <= len(hyper) <= len(names):
        raise ValueError(
            f"hyper must hold the values {names} for optimizer {optimizer!r} (the last "
            f"{len(names) - required} may be omitted), got {hyper!r}"
        )
    values = chk.check_hypers(**dict(zip(names, hyper)))
    return tuple(dt.type(h) for h in values)


def _check_train_options(
    L, X, order, batch_size, *, trainable, penalties, penalty_per_row, lrs, epoch_size,
    dropout, seed, sample_weight, negative_slopes,
) -> dict:  # fmt: skip
    """The keyword options of ``train_batches``, validated; defaults left as they are."""
    if epoch_size is not None:
        epoch_size = chk.check_int("epoch_size", epoch_size, low=1)
        if len(order) % epoch_size:
            raise ValueError(
                f"order has {len(order)} entries, not a whole number of epochs of "
                f"epoch_size={epoch_size}"
            )
    n_batches = count_batches(len(order), batch_size, epoch_size)
    return dict(
        penalties=chk.check_per_layer("penalties", penalties, L, chk.check_penalty_pair),
        penalty_per_row=chk.check_flag("penalty_per_row", penalty_per_row),
        trainable=chk.check_trainable(trainable, 2 * L),
        lrs=chk.check_lrs(lrs, n_batches),
        epoch_size=epoch_size,
        dropout=chk.check_dropout(dropout, L),
        seed=chk.check_int("seed", seed),
        sample_weight=chk.as_weights("sample_weight", sample_weight, X.shape[0], X.dtype),
        negative_slopes=chk.check_per_layer(
            "negative_slopes", negative_slopes, L, lambda nm, s: chk.check_scalar(nm, s)
        ),
    )
