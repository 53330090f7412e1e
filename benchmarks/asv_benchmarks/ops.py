"""The op contract's kernels per backend, dtype and shape, and speedups between backends."""

import math

from ._common import (
    BACKENDS,
    DENSE_SHAPES,
    DTYPES,
    QUICK,
    alternate,
    get_ops,
    op_callable,
    parse_shape,
    skip_python_if_large,
)


class _OpBench:
    """setup() builds the data and runs the op once, so JIT compile and autotune are untimed."""

    op = ""

    def setup(self, backend, dtype, shape):
        dims = parse_shape(shape)
        skip_python_if_large(backend, self.macs(dims))
        self.call = op_callable(get_ops(backend), self.op, dtype, dims)
        self.call()

    @staticmethod
    def macs(dims):
        return math.prod(dims)


class DenseForward(_OpBench):
    """``Z = X @ W + b``, ``Y = relu(Z)``; shape is batch x in x out."""

    op = "dense_forward"
    params = (BACKENDS, DTYPES, DENSE_SHAPES)
    param_names = ("backend", "dtype", "shape")

    def time_dense_forward(self, backend, dtype, shape):
        self.call()


class DenseBackward(_OpBench):
    """``dX, dW, db`` through a ReLU dense layer; shape is batch x in x out."""

    op = "dense_backward"
    params = (BACKENDS, DTYPES, DENSE_SHAPES)
    param_names = ("backend", "dtype", "shape")

    def time_dense_backward(self, backend, dtype, shape):
        self.call()


class Loss(_OpBench):
    """Loss value and gradient of a (batch 256, 10 classes) output."""

    params = (
        BACKENDS,
        DTYPES,
        ["softmax_cross_entropy", "sigmoid_cross_entropy", "mse"]
        + ([] if QUICK else ["binary_crossentropy", "categorical_crossentropy"]),
    )
    param_names = ("backend", "dtype", "loss")

    def setup(self, backend, dtype, loss):
        self.call = op_callable(get_ops(backend), loss, dtype, (256, 10))
        self.call()

    def time_loss(self, backend, dtype, loss):
        self.call()


class OptimizerUpdate(_OpBench):
    """One in-place SGD-momentum or Adam update of a parameter of the given shape."""

    params = (BACKENDS, DTYPES, ["sgd_update", "adam_update"], ["256x10", "784x256"])
    param_names = ("backend", "dtype", "update", "shape")

    def setup(self, backend, dtype, update, shape):
        dims = parse_shape(shape)
        # interpreted elementwise loops: ~8 multiply-add equivalents per element
        skip_python_if_large(backend, 8 * math.prod(dims))
        self.call = op_callable(get_ops(backend), update, dtype, dims)
        self.call()

    def time_update(self, backend, dtype, update, shape):
        self.call()


#: (op, shape) pairs of the speedup benchmarks.  Small shapes, where the python
#: reference still runs; medium/large ones for the comparison with numpy.
SMALL_CASES = {
    "dense_forward": (32, 128, 128),
    "dense_backward": (32, 128, 128),
    "softmax_cross_entropy": (256, 10),
    "adam_update": (256, 10),
}
LARGE_CASES = {
    "dense_forward": (256, 784, 256),
    "dense_backward": (256, 784, 256),
    "softmax_cross_entropy": (1024, 10),
    "adam_update": (784, 256),
}


class SpeedupOverPython:
    """How many times faster than the ``python`` reference, at a small shape (float32)."""

    params = (["numpy", "numba", "auto"], list(SMALL_CASES))
    param_names = ("backend", "op")
    unit = "x"
    timeout = 300

    def setup(self, backend, op):
        shape = SMALL_CASES[op]
        self.calls = {
            "python": op_callable(get_ops("python"), op, "float32", shape),
            backend: op_callable(get_ops(backend), op, "float32", shape),
        }

    def track_speedup_over_python(self, backend, op):
        t = alternate(self.calls, repeats=3, min_time=0.02)
        return t["python"] / t[backend]


class SpeedupOverNumpy:
    """How many times faster than the ``numpy`` backend (float32), at small and large shapes."""

    params = (["numba", "auto"], list(SMALL_CASES), ["small", "large"])
    param_names = ("backend", "op", "size")
    unit = "x"
    timeout = 300

    def setup(self, backend, op, size):
        shape = (SMALL_CASES if size == "small" else LARGE_CASES)[op]
        self.calls = {
            "numpy": op_callable(get_ops("numpy"), op, "float32", shape),
            backend: op_callable(get_ops(backend), op, "float32", shape),
        }

    def track_speedup_over_numpy(self, backend, op, size):
        t = alternate(self.calls, repeats=5, min_time=0.02)
        return t["numpy"] / t[backend]
