"""NumPy's own OpenBLAS, located and called through CBLAS (no Numba needed).

NumPy wheels bundle OpenBLAS as ``numpy.libs/libscipy_openblas64_*.so`` with ILP64
CBLAS symbols ``scipy_cblas_?gemm64_``.  Calling that library, not SciPy's separate
OpenBLAS copy, keeps every product of the process in one thread pool: idle threads
of two pools spin against each other on few cores whenever the two alternate.

* :func:`numpy_blas`, :func:`numpy_gemm_address` -- the library and its ``?gemm``
  (the numba backend passes the address into compiled code, :mod:`.numba.blas`).
* :func:`gemm` -- ``C = alpha op(A) @ op(B) + beta C`` in place, from Python: what
  NumPy's ``matmul`` cannot do (``beta = 1`` adds the product into ``C``).

When NumPy's BLAS is not that build (MKL, a system BLAS, 32-bit integers) the
address is 0 and :func:`gemm` returns False: callers fall back to NumPy products.
"""

from __future__ import annotations

import ctypes
import glob
import os

import numpy as np

_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112

_NUMPY_BLAS: list = []
_GEMM: dict = {}  # dtype char -> (address, ctypes function or None), looked up once


def numpy_blas():
    """NumPy's bundled OpenBLAS as a ``ctypes.CDLL``, or None (another BLAS build).

    ``dlopen`` of the already loaded file returns NumPy's own handle, so calls run in
    NumPy's thread pool (and obey threadpoolctl limits on it).
    """
    if not _NUMPY_BLAS:
        libs = os.path.join(os.path.dirname(os.path.dirname(np.__file__)), "numpy.libs")
        paths = sorted(glob.glob(os.path.join(libs, "libscipy_openblas64_*.so")))
        lib = None
        if len(paths) == 1:
            try:
                lib = ctypes.CDLL(paths[0])
                for name in ("scipy_cblas_sgemm64_", "scipy_cblas_dgemm64_",
                             "scipy_openblas_get_num_threads64_",
                             "scipy_openblas_set_num_threads64_"):  # fmt: skip
                    getattr(lib, name)
            except (OSError, AttributeError):
                lib = None
        _NUMPY_BLAS.append(lib)
    return _NUMPY_BLAS[0]


def _gemm_entry(char: str):
    entry = _GEMM.get(char)
    if entry is None:
        lib = numpy_blas()
        fn = lib and getattr(lib, f"scipy_cblas_{'s' if char == 'f' else 'd'}gemm64_")
        if fn:
            real = ctypes.c_float if char == "f" else ctypes.c_double
            i32, i64, ptr = ctypes.c_int32, ctypes.c_int64, ctypes.c_void_p
            fn.argtypes = [i32, i32, i32, i64, i64, i64, real, ptr, i64, ptr, i64, real, ptr, i64]
            fn.restype = None
        entry = _GEMM[char] = ((ctypes.cast(fn, ctypes.c_void_p).value or 0) if fn else 0, fn)
    return entry


def numpy_gemm_address(dtype) -> int:
    """Address of ``cblas_sgemm``/``cblas_dgemm`` in NumPy's bundled OpenBLAS, or 0."""
    return _gemm_entry(np.dtype(dtype).char)[0]


def gemm(trans_a: bool, trans_b: bool, alpha, A, B, beta, C) -> bool:
    """``C = alpha op(A) @ op(B) + beta C`` in place through NumPy's CBLAS; ``op``
    transposes if asked.  ``A, B, C``: C-contiguous, one dtype (float32 or float64,
    native byte order), ``C`` writeable.  Returns False, doing nothing, when that BLAS
    or those layouts are not available (the caller computes the product another way)."""
    char = C.dtype.char
    if char not in "fd" or not C.dtype.isnative or not (A.dtype == B.dtype == C.dtype):
        return False
    if not (A.flags.c_contiguous and B.flags.c_contiguous and C.flags.c_contiguous):
        return False
    if not C.flags.writeable:
        return False
    fn = _gemm_entry(char)[1]
    if not fn:
        return False
    M, N = C.shape
    K = A.shape[0] if trans_a else A.shape[1]
    if (B.shape[1] if trans_b else B.shape[0]) != K:
        raise ValueError(f"gemm: inner dimensions differ ({A.shape}, {B.shape})")
    fn(
        _ROW_MAJOR, _TRANS if trans_a else _NO_TRANS, _TRANS if trans_b else _NO_TRANS,
        M, N, K, alpha, A.ctypes.data, A.shape[1], B.ctypes.data, B.shape[1],
        beta, C.ctypes.data, C.shape[1],
    )  # fmt: skip
    return True
