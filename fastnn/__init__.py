"""fastnn: dense neural-network ops with interchangeable CPU backends.

>>> import fastnn
>>> fastnn.available_backends()          # doctest: +SKIP
['python', 'numpy', 'numba']
>>> with fastnn.use_backend("numpy"):    # doctest: +SKIP
...     Z, Y = fastnn.get_ops().dense_forward(X, W, b, "relu")

Importing fastnn is cheap: it imports neither Numba nor any model code until a
name below is first used, and never compiles anything.
"""

import importlib

from .dispatch import (
    available_backends,
    get_backend,
    get_ops,
    set_backend,
    use_backend,
)

__version__ = "0.1.0"

# Public name -> module that defines it, imported on first access (PEP 562).
_LAZY = {
    "Sequential": "fastnn.model",
    "load_model": "fastnn.model",
    "Dense": "fastnn.layers",
    "Flatten": "fastnn.layers",
    "Dropout": "fastnn.layers",
    "Input": "fastnn.layers",
    "Perceptron": "fastnn.perceptron",
    "History": "fastnn.callbacks",
    "EarlyStopping": "fastnn.callbacks",
    "set_num_threads": "fastnn.dispatch.runtime",
    "get_num_threads": "fastnn.dispatch.runtime",
    "warmup": "fastnn.dispatch.runtime",
}
_SUBMODULES = (
    "optimizers",
    "datasets",
    "callbacks",
    "model",
    "layers",
    "training",
    "utils",
    "saving",
    "losses",
    "regularizers",
    "activations",
    "metrics",
    "perceptron",
    "progress",
    "initializers",
    "dispatch",
)

__all__ = [
    "available_backends",
    "get_backend",
    "get_ops",
    "set_backend",
    "use_backend",
    "__version__",
    *_LAZY,
    *_SUBMODULES,
]


def __getattr__(name):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    if name in _SUBMODULES:
        return importlib.import_module(f"fastnn.{name}")
    raise AttributeError(f"module 'fastnn' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
