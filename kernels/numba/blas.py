"""NumPy's OpenBLAS, called from compiled code, for the batch-major trainer.

Matrix products of the fused trainer call the CBLAS ``?gemm`` of NumPy's own
OpenBLAS through its address, passed in as an integer: the same library and thread
pool as every other product of the process (the numba backend's ops and the numpy
backend call it through NumPy).  ``np.dot`` inside ``njit`` would call SciPy's
separate OpenBLAS copy, whose idle threads spin against NumPy's on few cores
whenever the two alternate (e.g. training chunks and validation).  When NumPy's
BLAS cannot be located (another NumPy build), the address is 0 and ``np.dot`` is
used.

* :func:`blas_gemm`, :func:`blas_gemm_at` -- ``@njit`` products through the address.
* :func:`numpy_blas`, :func:`numpy_gemm_address` -- finding the library and symbols
  (:mod:`fastnn.kernels.cblas`, re-exported).
* :func:`parallel_threads`, :class:`SerialBlas` -- the thread setting of the
  multi-threaded trainer.
"""

from __future__ import annotations

import threading

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

from ..cblas import numpy_blas, numpy_gemm_address
from .config import JIT

__all__ = [
    "SerialBlas",
    "blas_gemm",
    "blas_gemm_at",
    "numpy_blas",
    "numpy_gemm_address",
    "parallel_threads",
]

_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112


@intrinsic
def _cblas_gemm(typingctx, fn, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc):
    """Call ``cblas_?gemm`` (ILP64, row-major) at address ``fn`` on raw data addresses."""
    if alpha not in (types.float32, types.float64) or beta != alpha:
        return None
    sig = types.void(fn, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)

    def codegen(context, builder, signature, args):
        i32, i64 = ir.IntType(32), ir.IntType(64)
        real = ir.FloatType() if signature.args[6] == types.float32 else ir.DoubleType()
        ptr = real.as_pointer()
        fnty = ir.FunctionType(
            ir.VoidType(), [i32, i32, i32, i64, i64, i64, real, ptr, i64, ptr, i64, real, ptr, i64]
        )

        def int64(i):
            return context.cast(builder, args[i], signature.args[i], types.int64)

        def address(i):
            return builder.inttoptr(int64(i), ptr)

        callee = builder.inttoptr(int64(0), fnty.as_pointer())
        builder.call(
            callee,
            [
                ir.Constant(i32, _ROW_MAJOR),
                builder.trunc(int64(1), i32),
                builder.trunc(int64(2), i32),
                int64(3), int64(4), int64(5),
                args[6], address(7), int64(8), address(9), int64(10),
                args[11], address(12), int64(13),
            ],
        )  # fmt: skip
        return context.get_dummy_value()

    return sig, codegen


@njit(**JIT)
def blas_gemm(fn, trans_a, trans_b, A, B, C, alpha, beta):
    """``C = alpha op(A) @ op(B) + beta C`` for C-contiguous ``A, B, C``; ``op``
    transposes if asked.

    ``fn``: address of NumPy's ``cblas_?gemm`` for the dtype, or 0 for ``np.dot``,
    which only computes ``alpha = 1, beta = 0``.
    """
    M, N = C.shape
    K = A.shape[0] if trans_a else A.shape[1]
    if fn != 0:
        _cblas_gemm(
            fn, _TRANS if trans_a else _NO_TRANS, _TRANS if trans_b else _NO_TRANS,
            M, N, K, alpha, A.ctypes.data, A.shape[1], B.ctypes.data, B.shape[1],
            beta, C.ctypes.data, C.shape[1],
        )  # fmt: skip
    elif trans_a:
        np.dot(A.T, B, C)
    elif trans_b:
        np.dot(A, B.T, C)
    else:
        np.dot(A, B, C)


@njit(**JIT)
def blas_gemm_at(
    fn, trans_a, trans_b, M, N, K, alpha, A, a_off, lda, B, b_off, ldb, beta, C, c_off, ldc
):
    """``C[c_off:] = alpha op(A[a_off:]) @ op(B[b_off:]) + beta C[c_off:]`` on flat
    buffers with leading dimensions ``lda, ldb, ldc`` (so a block of columns can be
    addressed).  ``fn`` must be a CBLAS address (not 0)."""
    size = A.itemsize
    _cblas_gemm(
        fn, _TRANS if trans_a else _NO_TRANS, _TRANS if trans_b else _NO_TRANS, M, N, K,
        alpha, A.ctypes.data + a_off * size, lda, B.ctypes.data + b_off * size, ldb,
        beta, C.ctypes.data + c_off * size, ldc,
    )  # fmt: skip


def parallel_threads() -> int:
    """Threads the multi-threaded trainer may use: 1 (serial) unless NumPy's OpenBLAS
    is the one found, Numba's threading layer is thread-safe (``workqueue`` aborts
    on concurrent parallel calls) and both Numba and that BLAS may use more than one
    thread (:func:`fastnn.set_num_threads` sets both; a threadpoolctl limit on the
    BLAS counts too)."""
    import numba

    lib = numpy_blas()
    if lib is None or numba.config.THREADING_LAYER not in ("threadsafe", "tbb", "omp"):
        return 1
    return max(1, min(numba.get_num_threads(), lib.scipy_openblas_get_num_threads64_()))


class SerialBlas:
    """Context: NumPy's OpenBLAS limited to one thread (the calling thread does the
    work, its pool stays idle), restored on exit.  Process-wide, as every BLAS
    thread setting is: other threads' products run single-threaded meanwhile.
    Overlapping uses from several threads are counted: the first entry saves the
    setting, the last exit restores it."""

    _lock = threading.Lock()
    _depth = 0
    _saved = 1

    def __enter__(self):
        cls = type(self)
        with cls._lock:
            if cls._depth == 0:
                lib = numpy_blas()
                cls._saved = lib.scipy_openblas_get_num_threads64_()
                lib.scipy_openblas_set_num_threads64_(1)
            cls._depth += 1

    def __exit__(self, *exc):
        cls = type(self)
        with cls._lock:
            cls._depth -= 1
            if cls._depth == 0:
                numpy_blas().scipy_openblas_set_num_threads64_(cls._saved)
