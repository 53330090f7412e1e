"""Alternating matrix products between BLAS thread pools, in one process.

NumPy's ``@`` runs in NumPy's OpenBLAS; ``np.dot`` inside ``@njit`` code runs in
SciPy's separate OpenBLAS copy.  After a call, each pool's idle threads spin for a
while waiting for more work; when the other pool starts work meanwhile, the
spinning threads share the cores with it.  This prints, per size, the median time
of each pool alone, of the two alternating, and of the ``numpy`` and ``numba``
backends' ``dense_forward`` alternating (which share NumPy's pool by design).
Then the numba backend's fused trainer of a 784-256-10 MLP (Numba's pool, each
thread calling NumPy's BLAS limited to one thread) alone, NumPy products of the
same size (NumPy's pool) alone, and the two alternating.

    python benchmarks/alternate_pools.py            # BLAS default threads
    python benchmarks/alternate_pools.py --threads 1

A ratio ``alternating / (sum of the parts)`` far above 1 is the contention.
"""

from __future__ import annotations

import argparse
import statistics
import time
from functools import partial

import numpy as np
from numba import njit

import fastnn
from fastnn.optimizers import SGD


@njit(cache=True)
def _dot_in_njit(A, B, C):
    np.dot(A, B, C)  # SciPy's OpenBLAS


def _median_us(fn, reps):
    fn()
    samples = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples) * 1e6


def _row(n, reps, numpy_ops, numba_ops):
    """Medians (us) and alternation ratios for ``n x n`` float32 products."""
    rng = np.random.default_rng(n)
    A = rng.random((n, n), dtype=np.float32)
    B = rng.random((n, n), dtype=np.float32)
    C = np.empty((n, n), dtype=np.float32)
    b = np.zeros(n, dtype=np.float32)
    t_np = _median_us(lambda: np.matmul(A, B, out=C), reps)
    t_sp = _median_us(lambda: _dot_in_njit(A, B, C), reps)
    t_alt = _median_us(lambda: (np.matmul(A, B, out=C), _dot_in_njit(A, B, C)), reps)
    np_op = partial(numpy_ops.dense_forward, A, B, b, "relu")
    nb_op = partial(numba_ops.dense_forward, A, B, b, "relu")
    t_npop = _median_us(np_op, reps)
    t_nbop = _median_us(nb_op, reps)
    t_ops = _median_us(lambda: (np_op(), nb_op()), reps)
    return (t_np, t_sp, t_alt, t_alt / (t_np + t_sp), t_npop, t_nbop, t_ops,
            t_ops / (t_npop + t_nbop))  # fmt: skip


def _trainer_row(reps):
    """Medians (us) of one training call (8 batches of 256) on the numba backend,
    of a NumPy ``(256, 784) @ (784, 256)`` product, and of the two alternating."""
    rng = np.random.default_rng(0)
    X = rng.random((2048, 784), dtype=np.float32)
    y = rng.integers(0, 10, 2048)
    model = fastnn.Sequential(
        [fastnn.Dense(256, activation="relu", input_dim=784), fastnn.Dense(10, "softmax")],
        backend="numba",
    )
    model.compile(optimizer=SGD(0.01), loss="sparse_categorical_crossentropy")
    fit = partial(model.fit, X, y, batch_size=256, epochs=1, verbose=0, shuffle=False)
    A, B = X[:256], rng.random((784, 256), dtype=np.float32)
    C = np.empty((256, 256), np.float32)

    def products():
        for _ in range(8):
            np.matmul(A, B, out=C)

    t_fit = _median_us(fit, reps)
    t_mm = _median_us(products, reps)
    t_alt = _median_us(lambda: (fit(), products()), reps)
    return t_fit, t_mm, t_alt, t_alt / (t_fit + t_mm)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=None, help="fastnn.set_num_threads")
    parser.add_argument("--reps", type=int, default=200)
    parser.add_argument("--sizes", default="64,256,512")
    args = parser.parse_args(argv)
    if args.threads is not None:
        fastnn.set_num_threads(args.threads)
    print(f"threads: {fastnn.get_num_threads()}")
    numpy_ops, numba_ops = fastnn.get_ops("numpy").impl, fastnn.get_ops("numba").impl
    header = ("numpy@", "scipy-njit", "alt", "alt/sum", "np-op", "nb-op", "alt-ops", "/sum")
    print(f"{'n':>5s} " + " ".join(f"{h:>10s}" for h in header) + "   (us)")
    for n in map(int, args.sizes.split(",")):
        row = _row(n, args.reps, numpy_ops, numba_ops)
        print(f"{n:5d} " + " ".join(f"{v:10.1f}" for v in row))
    header = ("nb-train", "numpy@x8", "alt", "alt/sum")
    print("\ntrainer " + " ".join(f"{h:>10s}" for h in header) + "   (us)")
    print("        " + " ".join(f"{v:10.1f}" for v in _trainer_row(max(5, args.reps // 20))))


if __name__ == "__main__":
    main()
