"""The validating edge of the op contract: :class:`CheckedOps`.

It wraps one backend: validates arguments (shape, dtype, names, label range),
makes inputs C-contiguous and casts scalars to the arrays' dtype, then calls the
backend's kernel.  Backends themselves never validate.
"""

from __future__ import annotations

import numpy as np

from fastnn.kernels.contract import (
    ACTIVATIONS,
    DIFFERENTIABLE_ACTIVATIONS,
    HEADS,
    LOSSES,
    OPTIMIZERS,
    Ops,
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

    def _run(self, op: str, *args):
        return getattr(self._impl_for(op, *args), op)(*args)

    def run_validated(self, op: str, *args):
        """Run ``op`` on arguments the caller already validated, skipping the checks.

        For callers that are themselves an API edge and build every argument in the
        form the checks produce (contiguous arrays of one float dtype, int64
        indices and labels, lists, hyper-parameters in the dtype): the model layer's
        training loop, which checks the user's data once per ``fit`` and then calls
        ``train_batches`` many times.  Backend selection (``auto``) still applies.
        """
        return self._run(op, *args)

    def dense_forward(self, X, W, b, activation):
        chk.check_name("activation", activation, ACTIVATIONS)
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
        return self._run("dense_forward", X, W, b, activation)

    def dense_backward(self, dY, X, W, Z, Y, activation):
        chk.check_name("activation", activation, ACTIVATIONS)
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
        return self._run("dense_backward", dY, X, W, Z, Y, activation)

    def loss(self, name, Y, T):
        chk.check_name("loss", name, LOSSES)
        Y = chk.as_array("Y", Y, 2)
        T = chk.as_array("T", T, 2, Y.dtype)
        chk.check_same_shape([("Y", Y), ("T", T)])
        chk.check_nonempty("Y", Y, "a loss needs at least one row and one column")
        return self._run("loss", name, Y, T)

    def softmax_cross_entropy(self, Z, labels):
        Z = chk.as_array("Z", Z, 2)
        chk.check_nonempty("Z", Z, "a loss needs at least one row and one column")
        labels = chk.as_labels("labels", labels, Z.shape[0], Z.shape[1])
        return self._run("softmax_cross_entropy", Z, labels)

    def sigmoid_cross_entropy(self, Z, T):
        Z = chk.as_array("Z", Z, 2)
        T = chk.as_array("T", T, 2, Z.dtype)
        chk.check_same_shape([("Z", Z), ("T", T)])
        chk.check_nonempty("Z", Z, "a loss needs at least one row and one column")
        return self._run("sigmoid_cross_entropy", Z, T)

    def _state(self, param, grad, **state):
        if not isinstance(param, np.ndarray):
            raise TypeError(f"param must be a numpy.ndarray, got {type(param).__name__}")
        dt = chk.float_dtype_of("param", param)
        chk.check_inplace("param", param)
        grad = chk.as_array("grad", grad, grad.ndim, dt)
        pairs = [("param", param), ("grad", grad)]
        for nm, A in state.items():
            if not isinstance(A, np.ndarray):
                raise TypeError(f"{nm} must be a numpy.ndarray, got {type(A).__name__}")
            chk.as_array(nm, A, A.ndim, dt)
            chk.check_inplace(nm, A)
            pairs.append((nm, A))
        chk.check_same_shape(pairs)
        return dt.type, grad

    def sgd_update(self, param, grad, velocity, lr, momentum):
        lr = chk.check_scalar("lr", lr, low=0)
        momentum = chk.check_scalar("momentum", momentum, low=0)
        if not isinstance(grad, np.ndarray):
            raise TypeError(f"grad must be a numpy.ndarray, got {type(grad).__name__}")
        cast, grad = self._state(param, grad, velocity=velocity)
        self._run("sgd_update", param, grad, velocity, cast(lr), cast(momentum))

    def adam_update(self, param, grad, m, v, step, lr, beta1, beta2, eps):
        step = chk.check_int("step", step, low=1)
        lr = chk.check_scalar("lr", lr, low=0)
        beta1 = chk.check_scalar("beta1", beta1, low=0, high=1, high_open=True)
        beta2 = chk.check_scalar("beta2", beta2, low=0, high=1, high_open=True)
        eps = chk.check_scalar("eps", eps, low=0, low_open=True)
        if not isinstance(grad, np.ndarray):
            raise TypeError(f"grad must be a numpy.ndarray, got {type(grad).__name__}")
        cast, grad = self._state(param, grad, m=m, v=v)
        self._run(
            "adam_update", param, grad, m, v, step, cast(lr), cast(beta1), cast(beta2), cast(eps)
        )

    def train_batches(
        self, Ws, bs, activations, X, T, order, batch_size, head, optimizer, state, hyper, step
    ):
        chk.check_name("head", head, HEADS)
        chk.check_name("optimizer", optimizer, tuple(OPTIMIZERS))
        for nm, seq in (("Ws", Ws), ("bs", bs), ("activations", activations), ("state", state)):
            if not isinstance(seq, (list, tuple)):
                raise TypeError(f"{nm} must be a list or tuple, got {type(seq).__name__}")
        L = len(Ws)
        if L < 1:
            raise ValueError("Ws must hold at least one layer's weights")
        if len(bs) != L or len(activations) != L:
            raise ValueError(
                f"Ws, bs and activations must have one entry per layer; got {L}, "
                f"{len(bs)} and {len(activations)}"
            )
        for l, act in enumerate(activations):
            chk.check_name(f"activation of layer {l}", act, DIFFERENTIABLE_ACTIVATIONS)
        if head in ("softmax_cross_entropy", "sigmoid_cross_entropy") and activations[-1] != (
            "linear"
        ):
            raise ValueError(
                f"head {head!r} takes logits: the last layer's activation must be 'linear', "
                f"got {activations[-1]!r}"
            )
        X = chk.as_array("X", X, 2)
        dt = X.dtype
        n_in = X.shape[1]
        for l in range(L):
            for nm, A, ndim in ((f"Ws[{l}]", Ws[l], 2), (f"bs[{l}]", bs[l], 1)):
                if not isinstance(A, np.ndarray):
                    raise TypeError(f"{nm} must be a numpy.ndarray, got {type(A).__name__}")
                chk.as_array(nm, A, ndim, dt)
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
        N, k = X.shape[0], n_in
        if head == "softmax_cross_entropy":
            T = chk.as_labels("T", T, N, k)
        else:
            T = chk.as_array("T", T, 2, dt)
            if T.shape != (N, k):
                raise ValueError(
                    f"T must have shape {(N, k)} (one row per row of X, one column per "
                    f"output unit), got {T.shape}"
                )
        if not isinstance(order, np.ndarray):
            raise TypeError(f"order must be a numpy.ndarray, got {type(order).__name__}")
        if order.ndim != 1 or order.dtype.kind not in "iu":
            raise ValueError(
                f"order must be a 1-D integer array of row indices, got a {order.ndim}-D "
                f"array of dtype {order.dtype}"
            )
        if order.size and (order.min() < 0 or order.max() >= N):
            raise ValueError(f"order must hold row indices in [0, {N}) for X with {N} rows")
        order = np.ascontiguousarray(order, dtype=np.int64)
        batch_size = chk.check_int("batch_size", batch_size, low=1)
        step = chk.check_int("step", step, low=0)
        state_names, hyper_names = OPTIMIZERS[optimizer]
        params = [(nm, A) for l in range(L) for nm, A in ((f"Ws[{l}]", Ws[l]), (f"bs[{l}]", bs[l]))]
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
                if not isinstance(A, np.ndarray):
                    raise TypeError(f"{nm} must be a numpy.ndarray, got {type(A).__name__}")
                chk.as_array(nm, A, P.ndim, dt)
                chk.check_inplace(nm, A)
                if A.shape != P.shape:
                    raise ValueError(f"{nm} has shape {A.shape} but {pname} has shape {P.shape}")
        if not isinstance(hyper, (list, tuple)) or len(hyper) != len(hyper_names):
            raise ValueError(
                f"hyper must hold {len(hyper_names)} values {hyper_names} for optimizer "
                f"{optimizer!r}, got {hyper!r}"
            )
        limits = {
            "lr": {"low": 0},
            "momentum": {"low": 0},
            "beta1": {"low": 0, "high": 1, "high_open": True},
            "beta2": {"low": 0, "high": 1, "high_open": True},
            "eps": {"low": 0, "low_open": True},
        }
        hyper = tuple(
            dt.type(chk.check_scalar(nm, h, **limits[nm])) for nm, h in zip(hyper_names, hyper)
        )
        return self._run(
            "train_batches", list(Ws), list(bs), list(activations), X, T, order, batch_size,
            head, optimizer, [tuple(S) for S in state], hyper, step,
        )  # fmt: skip
