"""``fastnn.kernels.cblas``: NumPy's own OpenBLAS called through CBLAS from Python."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import assert_close

from fastnn.kernels import cblas


def operands(dtype, trans_a, trans_b, M=7, N=5, K=6, seed=0):
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((K, M) if trans_a else (M, K)).astype(dtype)
    B = rng.standard_normal((N, K) if trans_b else (K, N)).astype(dtype)
    C = rng.standard_normal((M, N)).astype(dtype)
    return A, B, C


@pytest.mark.parametrize("trans_b", [False, True])
@pytest.mark.parametrize("trans_a", [False, True])
def test_gemm_adds_the_scaled_product(dtype, trans_a, trans_b):
    """C = alpha op(A) op(B) + beta C in place, against float64 NumPy; where NumPy's
    BLAS is another build, False and C untouched."""
    A, B, C = operands(dtype, trans_a, trans_b)
    wide = [M.astype(np.float64) for M in (A, B, C)]
    opA = wide[0].T if trans_a else wide[0]
    opB = wide[1].T if trans_b else wide[1]
    expected = -0.5 * (opA @ opB) + 1.0 * wide[2]
    before = C.copy()
    done = cblas.gemm(trans_a, trans_b, -0.5, A, B, 1.0, C)
    if cblas.numpy_gemm_address(dtype) == 0:
        assert done is False
        np.testing.assert_array_equal(C, before)
        return
    assert done is True
    assert C.dtype == dtype
    assert_close(C, expected, dtype, terms=6)


def test_gemm_declines_what_it_cannot_do(dtype):
    """Layouts and dtypes CBLAS cannot take here: False, C untouched; a shape mismatch
    is an error."""
    A, B, C = operands(dtype, False, False)
    before = C.copy()
    strided = np.zeros((7, 10), dtype)[:, ::2]
    readonly = C.copy()
    readonly.flags.writeable = False
    for args in (
        (A, B, strided),  # C not contiguous
        (np.asfortranarray(A), B, C),  # A not C-contiguous
        (A.astype(np.float16), B, C),  # dtypes differ
        (A, B, readonly),
        (A.astype(np.int64), B.astype(np.int64), C.astype(np.int64)),
        tuple(M.astype(M.dtype.newbyteorder()) for M in (A, B, C)),  # byte-swapped
    ):
        assert cblas.gemm(False, False, 1.0, *args[:2], 0.0, args[2]) is False
    np.testing.assert_array_equal(C, before)
    if cblas.numpy_gemm_address(dtype):
        with pytest.raises(ValueError, match="inner dimensions"):
            cblas.gemm(False, False, 1.0, A, B[:4], 0.0, C)
