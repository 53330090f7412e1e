"""fastnn: dense neural-network ops with interchangeable CPU backends.

>>> import fastnn
>>> fastnn.available_backends()          # doctest: +SKIP
['python', 'numpy', 'numba']
>>> with fastnn.use_backend("numpy"):    # doctest: +SKIP
...     Z, Y = fastnn.get_ops().dense_forward(X, W, b, "relu")
"""

from .dispatch import (
    available_backends,
    get_backend,
    get_ops,
    set_backend,
    use_backend,
)

__version__ = "0.1.0"

__all__ = [
    "available_backends",
    "get_backend",
    "get_ops",
    "set_backend",
    "use_backend",
    "__version__",
]
