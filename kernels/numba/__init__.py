"""The ``numba`` backend: the op contract on ``@njit(cache=True)`` kernels.

Importing this package imports Numba (~0.3 s) but compiles nothing: kernels
compile, or load from Numba's on-disk cache, on their first call per dtype
(``fastnn.warmup()`` does all of them ahead of time).  The dispatcher imports it
only when the ``numba`` backend is first requested (and then applies a pending
thread count: ``fastnn.runtime.numba_backend_loaded``; nothing here imports
``fastnn``'s API modules).

Modules:

* :mod:`.config` -- the Numba compilation options (one place).
* :mod:`.codes` -- activation / head / optimizer integer codes, from the contract.
* :mod:`.mathfn` -- vectorizable ``exp``/``log``/``log1p``.
* :mod:`.scalar` -- every formula once: activations and derivatives, loss terms,
  optimizer steps, the NaN-aware argmax comparison.
* :mod:`.kernels` -- the op kernels (loops around the formulas).
* :mod:`.gemm` -- small matrix products as loops, callable from other kernels.
* :mod:`.ops` -- :class:`NumbaOps`, allocating outputs and calling the kernels.
* :mod:`.blas` -- NumPy's OpenBLAS from compiled code; thread settings.
* :mod:`.layout` -- the trainers' flat parameter buffers, constants and update.
* :mod:`.train_small`, :mod:`.train_gemm` -- the compiled training loops.
* :mod:`.train` -- the fused ``train_batches`` (mixed into :class:`NumbaOps`).
"""

from .blas import parallel_threads
from .config import select_threading_layer
from .ops import NumbaOps
from .train import SMALL_MACS, SMALL_WIDTH, choose_path, compile_trainers

select_threading_layer()

__all__ = [
    "SMALL_MACS",
    "SMALL_WIDTH",
    "NumbaOps",
    "choose_path",
    "compile_trainers",
    "parallel_threads",
]
