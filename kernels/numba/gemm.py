"""Matrix products as ``@njit`` loops, for shapes too small to amortize a BLAS call.

The ``numba`` backend's large matrix products go to NumPy's OpenBLAS (see
:mod:`.ops`): one BLAS thread pool for the whole process.  These kernels are the
small-shape path (a few hundred nanoseconds of Python/BLAS call overhead saved per
product matters at batch 1-32 and widths <= 128) and building blocks callable from
other ``@njit`` code without touching SciPy's separate OpenBLAS copy, which
``@``/``np.dot`` inside ``njit`` would use.

Loop orders keep the innermost loop contiguous in memory so LLVM vectorizes it
(AVX2/AVX-512 FMA); the accumulation is in the arrays' dtype, like BLAS.
They are several times slower than single-threaded OpenBLAS and only pay
below a few thousand multiply-adds, where call overhead dominates (see
``ops.SMALL_PRODUCT``).

All arrays C-contiguous, one float dtype.
"""

from __future__ import annotations

from numba import njit

from .config import JIT, JIT_REDUCE


@njit(**JIT)
def gemm_nn(A, B, C, accumulate):
    """``C = A @ B`` (``C += A @ B`` if ``accumulate``).

    ``A: (n, p)``, ``B: (p, m)``, ``C: (n, m)``.
    """
    n, p = A.shape
    m = B.shape[1]
    if not accumulate:
        zero = C.dtype.type(0.0)
        for i in range(n):
            for j in range(m):
                C[i, j] = zero
    for i in range(n):
        for q in range(p):
            a = A[i, q]
            for j in range(m):
                C[i, j] += a * B[q, j]


@njit(**JIT_REDUCE)  # dot products: reassociation only reorders (and vectorizes) the sum
def gemm_nt(A, B, C):
    """``C = A @ B.T``; ``A: (n, p)``, ``B: (m, p)``, ``C: (n, m)`` (e.g. ``dX = dZ @ W.T``)."""
    n, p = A.shape
    m = B.shape[0]
    for i in range(n):
        for j in range(m):
            total = C.dtype.type(0.0)
            for q in range(p):
                total += A[i, q] * B[j, q]
            C[i, j] = total


@njit(**JIT)
def gemm_tn(A, B, C):
    """``C = A.T @ B``; ``A: (n, p)``, ``B: (n, m)``, ``C: (p, m)`` (e.g. ``dW = X.T @ dZ``)."""
    n, p = A.shape
    m = B.shape[1]
    zero = C.dtype.type(0.0)
    for q in range(p):
        for j in range(m):
            C[q, j] = zero
    for i in range(n):
        for q in range(p):
            a = A[i, q]
            for j in range(m):
                C[q, j] += a * B[i, j]
