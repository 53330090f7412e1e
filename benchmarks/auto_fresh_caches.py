"""Does ``auto`` pick the faster backend from a fresh autotune cache?

Runs ``--runs`` fresh processes, each with its own empty ``FASTNN_CACHE_DIR``, so
``auto`` probes from scratch every time.  In each, the headline workload (the
784-256-10 MLP, SGD, batch 256, ``--rows`` rows, one epoch) and the tiny nets are
timed on ``auto``, ``numba`` and ``numpy`` in alternating rounds (0.3 s idle
before each epoch sample), after untimed warm-up calls (where ``auto`` probes
and checks its choice in use).
Prints, per run and case, auto's time over the faster backend's and the backend
``auto`` recorded for ``train_batches``; the target is <= 1.05 in every run.  A
second ``numba`` runner (``numba-again``: the same code, a separate model) is timed
in the same rounds as a control: its ratio to ``numba`` is the spread of identical
code measured this way, against which auto's ratio is read.

Ratios of medians carry the machine's slow stretches (seconds long) into whichever
runner they hit.  So each round's samples are also paired: auto's sample over the
faster backend's sample of the same round.  The summary gives, per case over all
runs, the median of those per-round ratios with a bootstrap 95% interval, for auto
and for the control::

    .venv/bin/python benchmarks/auto_fresh_caches.py --runs 10
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np


def rounds(calls, repeats: int, min_time: float, units: float, settle: float) -> dict:
    """``{runner: [seconds per unit, one per round]}``: the bench's alternating rounds
    (``runner.measure_alternating``) with the samples kept in round order."""
    from fastnn.dispatch import timing

    for fn in calls.values():
        fn()
    number = dict.fromkeys(calls, 1)
    if min_time > 0:
        number = {name: timing.calibrate(fn, min_time) for name, fn in calls.items()}
    samples = timing.sample_rounds(calls, repeats, number=number, warm=False, settle=settle)
    return {name: [t / units for t in s] for name, s in samples.items()}


def one_run(rows: int, tiny_steps: int, repeats: int) -> dict:
    from fastnn.dispatch import autotune, coldstart
    from fastnn.tools.bench import runner as bench

    X, y, _ = bench.training_data(rows)
    # A fresh cache has no build stamp: wait for the (quick, Numba's cache is warm)
    # background build, so the choice measured is auto's steady one, not its cold start.
    for dtype in (X.dtype, np.float64):  # the epoch's, and the tiny nets' float64
        coldstart.wait_until_ready(dtype)
    out = {}
    calls = {b: bench.epoch_call(b, X, y, "sgd", 256) for b in ("auto", "numba", "numpy")}
    calls["numba-again"] = bench.epoch_call("numba", X, y, "sgd", 256)
    for _ in range(bench.AUTO_WARMUP_EPOCHS - 1):  # measure_alternating warms up once more
        calls["auto"]()
    out["sgd-b256"] = rounds(calls, repeats, 0.0, 1.0, bench.EPOCH_SETTLE_S)
    for net in bench.TINY_NETS:
        calls = {b: bench.tiny_call(b, net, tiny_steps) for b in ("auto", "numba", "numpy")}
        calls["numba-again"] = bench.tiny_call("numba", net, tiny_steps)
        for _ in range(bench.AUTO_WARMUP_EPOCHS - 1):
            calls["auto"]()
        out[net.name] = rounds(calls, repeats, 0.02, tiny_steps, bench.TINY_SETTLE_S)
    choices = {k.split("|")[2]: v["backend"] for k, v in autotune.entries().items()
               if k.startswith("train_batches")}  # fmt: skip
    return {"cases": out, "train_batches": choices}


def paired(samples: dict) -> tuple[float, list[float], list[float]]:
    """One run of one case: auto's median over the faster backend's, and per round
    auto / faster backend and numba-again / numba."""
    from statistics import median

    best = min(("numba", "numpy"), key=lambda b: median(samples[b]))
    ratio = median(samples["auto"]) / median(samples[best])
    auto = [a / b for a, b in zip(samples["auto"], samples[best])]
    same = [a / b for a, b in zip(samples["numba-again"], samples["numba"])]
    return ratio, auto, same


def interval(ratios: list[float]) -> str:
    """Median of ``ratios`` and its bootstrap 95% interval (2,000 resamples)."""
    rng = np.random.default_rng(0)
    meds = np.sort([np.median(rng.choice(ratios, len(ratios))) for _ in range(2000)])
    return f"{np.median(ratios):.3f} ({meds[50]:.3f}-{meds[1949]:.3f})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--tiny-steps", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=5, help="rounds per run")
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one_run(args.rows, args.tiny_steps, args.repeats)))
        return 0
    worst: dict[str, float] = {}
    control: dict[str, list[float]] = {}
    per_round: dict[str, tuple[list[float], list[float]]] = {}
    for i in range(args.runs):
        with tempfile.TemporaryDirectory() as cache:
            env = dict(os.environ, FASTNN_CACHE_DIR=cache)
            cmd = [sys.executable, __file__, "--one", "--rows", str(args.rows), "--tiny-steps",
                   str(args.tiny_steps), "--repeats", str(args.repeats)]  # fmt: skip
            res = json.loads(subprocess.run(cmd, env=env, capture_output=True, text=True,
                                            check=True).stdout)  # fmt: skip
        parts = []
        for case, samples in res["cases"].items():
            ratio, auto, same = paired(samples)
            worst[case] = max(worst.get(case, 0.0), ratio)
            control.setdefault(case, []).append(float(np.median(same)))
            rows = per_round.setdefault(case, ([], []))
            rows[0].extend(auto)
            rows[1].extend(same)
            parts.append(f"{case} {ratio:.3f} (control {np.median(same):.3f})")
        print(f"run {i + 1}: auto/best " + ", ".join(parts)
              + f"; train_batches choices {res['train_batches']}", flush=True)  # fmt: skip
    print("worst auto/best over runs: " + ", ".join(f"{k} {v:.3f}" for k, v in worst.items()))
    print("control numba-again/numba over runs: " + ", ".join(
        f"{k} {min(v):.3f}-{max(v):.3f}" for k, v in control.items()))  # fmt: skip
    for case, (auto, same) in per_round.items():
        print(
            f"{case}, per round over all runs ({len(auto)}): auto/best {interval(auto)}, "
            f"control {interval(same)}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
