"""What a tiny net's training step spends its time on, on the ``numba`` backend.

``fastnn bench --regimes tiny`` times full-batch steps of the tutorial nets (coffee
2-3-1 and 10-15-5: sigmoid layers, float64).  This script times the same steps
(``Sequential.fit`` with ``epochs=steps``, as the bench does) for variants that
each remove one kind of work -- sigmoid hidden layer -> relu, the loss -> mse,
Adam -> SGD, everything light at once -- and a float64 sigmoid pass over the
same number of elements alone, so the share of each part is a difference of
two measurements taken side by side::

    .venv/bin/python benchmarks/tiny_parts.py [--steps 2000] [--repeats 7]

Prints the median (min) microseconds per step of each variant.
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import numpy as np

from fastnn.tools.bench.workloads import TINY_NETS, tiny_call


def per_step(net, steps: int, repeats: int) -> tuple[float, float]:
    """Median and minimum seconds per step of ``net`` on numba."""
    run = tiny_call("numba", net, steps)
    run()
    run()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        run()
        times.append(time.perf_counter() - t0)
    return float(np.median(times)) / steps, min(times) / steps


def variants(net) -> dict:
    """The bench's net and variants with one kind of work removed."""
    light = dict(activations=("relu", "linear"), loss="mse", optimizer="sgd")
    return {
        "as benched": net,
        "relu hidden": dataclasses.replace(net, activations=("relu", net.activations[1])),
        "mse loss": dataclasses.replace(net, loss="mse"),
        "sgd": dataclasses.replace(net, optimizer="sgd"),
        "relu+linear, mse, sgd": dataclasses.replace(net, **light),
    }


def sigmoid_pass(n: int, repeats: int) -> float:
    """Seconds of one compiled float64 sigmoid pass over ``n`` elements."""
    from numba import njit

    from fastnn.kernels.numba import scalar
    from fastnn.kernels.numba.config import JIT

    @njit(**dict(JIT, cache=False))  # the trainers' options (error model, fast-math flags)
    def passes(Z, Y, k):
        for _ in range(k):
            for i in range(Z.size):
                Y[i] = scalar.sigmoid(Z[i])

    Z = np.random.default_rng(0).standard_normal(n)
    Y = np.empty_like(Z)
    passes(Z, Y, 1)
    k = max(1, 2_000_000 // n)
    best = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        passes(Z, Y, k)
        best = min(best, (time.perf_counter() - t0) / k)
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    for net in TINY_NETS[1:]:
        for name, v in variants(net).items():
            med, low = per_step(v, args.steps, args.repeats)
            print(f"{net.name:14s} {name:24s} {med * 1e6:7.2f} us/step (min {low * 1e6:.2f})")
        n = net.n_samples * sum(net.layers[1:])
        alone = sigmoid_pass(n, args.repeats) * 1e6
        print(f"{net.name:14s} {'sigmoid pass alone':24s} {alone:7.2f} us "
              f"({n} float64 elements, forward only)")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
