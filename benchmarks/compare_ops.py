"""Side-by-side op timings of two backends in one process, as ratios.

Each sample times a short run of calls of one backend; samples alternate between
the backends (in alternating order) so both see the same machine state, and the
median of many samples is reported.  Kernels are called once before timing, so
no compile lands in a timed sample.  Backends are called directly (the
validating edge costs the same for every backend and is left out).

    python benchmarks/compare_ops.py                               # FMNIST layers
    python benchmarks/compare_ops.py --grid                        # the full issue grid
    python benchmarks/compare_ops.py --ops loss,optim --dtype float32

``speed`` is ``time(baseline) / time(candidate)``: above 1 the candidate is faster.
"""

from __future__ import annotations

import argparse
import statistics
import time
from functools import partial

import numpy as np

import fastnn
from fastnn.kernels.contract import DIFFERENTIABLE_ACTIVATIONS, LOSSES

FMNIST_LAYERS = [(256, 784, 256, "relu"), (256, 256, 10, "softmax"), (256, 256, 10, "linear")]
GRID_BATCHES = (1, 32, 256, 1024)
GRID_WIDTHS = ((16, 16), (128, 128), (784, 256), (256, 10), (1024, 1024))


def _median_seconds(fns, reps, target_seconds):
    """Median seconds per call of each function in ``fns``, sampled alternately."""
    for fn in fns:
        fn()  # compile / load from cache, fault in outputs: never timed
    # calls per sample so that one sample lasts about target_seconds
    start = time.perf_counter()
    fns[0]()
    one = max(time.perf_counter() - start, 1e-7)
    inner = max(1, int(target_seconds / one))
    samples = [[] for _ in fns]
    for rep in range(reps):
        order = range(len(fns)) if rep % 2 == 0 else reversed(range(len(fns)))
        for k in order:
            fn = fns[k]
            start = time.perf_counter()
            for _ in range(inner):
                fn()
            samples[k].append((time.perf_counter() - start) / inner)
    return [statistics.median(s) for s in samples]


def _cases(args, rng):
    """(label, {backend: zero-argument callable}) pairs."""
    dtypes = [np.dtype(d) for d in args.dtype.split(",")]
    ops = {name: fastnn.get_ops(name).impl for name in (args.baseline, args.candidate)}
    layers = (
        [(n, i, o, a) for n in GRID_BATCHES for (i, o) in GRID_WIDTHS for a in args.acts]
        if args.grid
        else FMNIST_LAYERS
    )
    wanted = set(args.ops.split(","))
    for dt in dtypes:
        for n, n_in, n_out, act in layers:
            X = rng.standard_normal((n, n_in)).astype(dt)
            W = (rng.standard_normal((n_in, n_out)) / np.sqrt(n_in)).astype(dt)
            b = rng.standard_normal(n_out).astype(dt) * dt.type(0.1)
            Z, Y = ops[args.baseline].dense_forward(X, W, b, act)
            dY = rng.standard_normal(Y.shape).astype(dt)
            shape = f"{n}x{n_in}->{n_out}"
            if "forward" in wanted:
                yield (
                    f"dense_forward  {dt.name:7s} {shape:14s} {act}",
                    {k: partial(o.dense_forward, X, W, b, act) for k, o in ops.items()},
                )
            if "backward" in wanted and act in DIFFERENTIABLE_ACTIVATIONS:
                yield (
                    f"dense_backward {dt.name:7s} {shape:14s} {act}",
                    {k: partial(o.dense_backward, dY, X, W, Z, Y, act) for k, o in ops.items()},
                )
        for n, k_out in ((256, 10), (1024, 1024)) if "loss" in wanted else ():
            P = rng.uniform(0.01, 0.99, (n, k_out)).astype(dt)
            T = (rng.uniform(size=(n, k_out)) < 0.5).astype(dt)
            labels = rng.integers(0, k_out, n)
            Zl = rng.standard_normal((n, k_out)).astype(dt)
            for name in LOSSES:
                yield (
                    f"loss           {dt.name:7s} {n}x{k_out:<9d} {name}",
                    {k: partial(o.loss, name, P, T) for k, o in ops.items()},
                )
            yield (
                f"softmax_ce     {dt.name:7s} {n}x{k_out:<9d}",
                {k: partial(o.softmax_cross_entropy, Zl, labels) for k, o in ops.items()},
            )
            yield (
                f"sigmoid_ce     {dt.name:7s} {n}x{k_out:<9d}",
                {k: partial(o.sigmoid_cross_entropy, Zl, T) for k, o in ops.items()},
            )
        for size in (256 * 10, 784 * 256, 1024 * 1024) if "optim" in wanted else ():
            states = {k: [rng.standard_normal(size).astype(dt) for _ in range(4)] for k in ops}
            c = dt.type
            yield (
                f"sgd_update     {dt.name:7s} {size:<14d}",
                {k: partial(o.sgd_update, *states[k][:3], c(1e-3), c(0.9)) for k, o in ops.items()},
            )
            for s in states.values():
                s[3] = np.abs(s[3])  # v >= 0
            yield (
                f"adam_update    {dt.name:7s} {size:<14d}",
                {
                    k: partial(o.adam_update, *states[k], 10, c(1e-3), c(0.9), c(0.999), c(1e-7))
                    for k, o in ops.items()
                },
            )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default="numpy")
    parser.add_argument("--candidate", default="numba")
    parser.add_argument("--dtype", default="float32,float64")
    parser.add_argument("--ops", default="forward,backward", help="forward,backward,loss,optim")
    parser.add_argument("--grid", action="store_true", help="batches x widths x activations")
    parser.add_argument("--acts", default=",".join(DIFFERENTIABLE_ACTIVATIONS))
    parser.add_argument("--reps", type=int, default=31, help="samples per backend")
    parser.add_argument("--sample-ms", type=float, default=2.0, help="length of one sample")
    parser.add_argument("--threads", type=int, default=None, help="fastnn.set_num_threads")
    args = parser.parse_args(argv)
    args.acts = args.acts.split(",")
    if args.threads is not None:
        fastnn.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    base, cand = args.baseline, args.candidate
    print(f"{'case':52s} {base + ' us':>11s} {cand + ' us':>11s} {'speed':>7s}")
    worst = None
    for label, fns in _cases(args, rng):
        t_base, t_cand = _median_seconds([fns[base], fns[cand]], args.reps, args.sample_ms / 1000)
        speed = t_base / t_cand
        worst = speed if worst is None else min(worst, speed)
        flag = "" if speed >= 0.95 else "  <0.95"
        print(f"{label:52s} {t_base * 1e6:11.2f} {t_cand * 1e6:11.2f} {speed:7.2f}{flag}")
    print(f"worst speed {cand}/{base}: {worst:.2f}")


if __name__ == "__main__":
    main()
