"""The ``numba`` backend: the op contract on ``@njit(cache=True)`` kernels.

Importing this package imports Numba (~0.3 s) but compiles nothing: kernels
compile, or load from Numba's on-disk cache, on their first call per dtype
(``fastnn.warmup()`` does all of them ahead of time).  The dispatcher imports it
only when the ``numba`` backend is first requested.

Modules:

* :mod:`.config` -- the Numba compilation options (one place).
* :mod:`.kernels` -- elementwise/epilogue, loss and optimizer kernels.
* :mod:`.gemm` -- small matrix products as loops, callable from other kernels.
* :mod:`.ops` -- :class:`NumbaOps`, allocating outputs and calling the kernels.
* :mod:`.train` -- the fused ``train_batches`` (mixed into :class:`NumbaOps`).
"""

from .config import select_threading_layer
from .ops import NumbaOps

select_threading_layer()


__all__ = ["NumbaOps"]
