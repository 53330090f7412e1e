"""The epoch regime's runners in many paired rounds: ratios with intervals.

``fastnn bench --regimes epoch`` times each runner three times, in its own worker
process, and reports ratios of medians; on a machine whose speed drifts over
seconds, such a ratio moves by as much as the drift between runs.  This script
starts the same workers (:class:`fastnn.tools.bench.worker.Worker`, the specs of
:func:`fastnn.tools.bench.runner.epoch_spec`) and times ``--rounds`` rounds, each
runner once per round in a random order (``--seed``), with the bench's idle gap
before each epoch.  Each pair of
runners is compared round by round (:mod:`fastnn.tools.bench.paired`): the median
of the per-round ratios and its bootstrap 95% interval.  The pairs reported are the
issue targets' (numba against torch and the hand loop, the numpy backend against
the hand loop, auto against numba)::

    .venv/bin/python benchmarks/paired_epochs.py --rounds 15
    .venv/bin/python benchmarks/paired_epochs.py --optimizer adam --batch-size 32 --rounds 9
"""

from __future__ import annotations

import argparse
import contextlib
import sys

from fastnn.dispatch import timing
from fastnn.tools.bench import workloads
from fastnn.tools.bench.paired import fmt_interval, per_round
from fastnn.tools.bench.runner import epoch_spec
from fastnn.tools.bench.worker import Worker
from fastnn.tools.bench.workloads import Unavailable

#: Pairs reported, when both runners ran: (numerator, denominator).
PAIRS = (
    ("numba", "torch"),
    ("numba", "numpy-loop"),
    ("numpy", "numpy-loop"),
    ("auto", "numba"),
    ("numpy", "numba"),
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runners", default="numba,numpy,auto,numpy-loop,torch")
    parser.add_argument("--optimizer", default="sgd", choices=("sgd", "adam"))
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--samples", type=int, default=None, help="rows (default: all 60,000)")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    workers: dict[str, Worker] = {}
    try:
        for runner in args.runners.split(","):  # one at a time: auto's warm-up measures
            try:
                workers[runner] = Worker(epoch_spec(runner, args.optimizer, args.batch_size,
                                                    args.samples))  # fmt: skip
            except Unavailable as exc:
                print(f"{runner}: n/a ({exc})")
        samples = timing.sample_rounds(
            workers, args.rounds, warm=False, settle=workloads.EPOCH_SETTLE_S,
            self_timed=True, seed=args.seed,
        )  # fmt: skip
        info = workers["auto"].info() if "auto" in workers else {}
    finally:
        for w in workers.values():
            with contextlib.suppress(Exception):
                w.close()
    rows = args.samples or 60_000
    print(f"{args.optimizer} b{args.batch_size}, {rows} rows, {args.rounds} rounds, "
          "each runner in its own process; seconds per epoch, median (min-max):")  # fmt: skip
    for runner, s in samples.items():
        print(f"  {runner:<11} {timing.median(s):.3f} ({min(s):.3f}-{max(s):.3f})")
    if info.get("trained"):
        print(f"  auto's timed batches: {info['trained']}")
    print("per round (median, bootstrap 95% interval):")
    for a, b in PAIRS:
        if a in samples and b in samples:
            print(f"  {a}/{b}: {fmt_interval(per_round(samples, a, b))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
