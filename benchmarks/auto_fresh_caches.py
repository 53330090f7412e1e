"""Does ``auto`` pick the faster backend from a fresh autotune cache?

Runs ``--runs`` fresh processes, each with its own empty ``FASTNN_CACHE_DIR``, so
``auto`` probes from scratch every time.  In each, the headline workload (the
784-256-10 MLP, SGD, batch 256, ``--rows`` rows, one epoch) and the tiny nets are
timed on ``auto``, ``numba`` and ``numpy`` in alternating rounds (0.3 s idle
before each epoch sample), after untimed warm-up calls (where ``auto`` probes
and checks its choice in use).  Each run shuffles its rounds with its own seed: with
one seed for all runs, every run repeats the same orders, and a runner's place in
them (after which runner, first or last) would weigh the same way every time.

A second ``numba`` runner (``numba-again``: the same code, a separate model) is timed
in the same rounds as a control: its ratio to ``numba`` is the spread of identical
code measured this way, against which auto's ratios are read.

Every ratio is taken per round (the two samples of one round, taken seconds apart)
and summarised by its median with a bootstrap 95% interval.  Per run and case it
prints which backend's code ``auto`` ran while timed and splits auto's time over the
faster backend's into two factors:

* ``auto/own``: auto over the backend whose code it ran (the cost of choosing and
  checking per call, ~1 when free);
* ``own/other``: that backend over the other one (below 1: the faster one was chosen).

The summary pools the rounds of all runs.  It also gives auto over the faster backend
*of the pooled rounds*: the faster of two backends picked per run, from 5 samples
each, is biased low (the minimum of two noisy medians), so per-run ``auto/best``
reads high exactly when the two backends are close and the choice matters least::

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

from fastnn.tools.bench.paired import fmt_interval, per_round

BACKENDS = ("numba", "numpy")


def rounds(calls, repeats: int, min_time: float, units: float, settle: float, seed: int) -> dict:
    """``{runner: [seconds per unit, one per round]}``: the bench's alternating rounds
    (``runner.measure_alternating``) with the samples kept in round order; ``seed``
    shuffles each round's order.  ``auto`` maps to ``{"trained": {backend: batches}}``
    under the key ``"auto:trained"`` too: the code auto ran during the rounds."""
    import fastnn
    from fastnn.dispatch import timing

    for fn in calls.values():
        fn()
    number = dict.fromkeys(calls, 1)
    if min_time > 0:
        number = {name: timing.calibrate(fn, min_time) for name, fn in calls.items()}
    ops = fastnn.get_ops("auto")
    start = dict(ops.trained_batches())
    samples = timing.sample_rounds(
        calls, repeats, number=number, warm=False, settle=settle, seed=seed
    )
    trained = {b: n - start.get(b, 0) for b, n in ops.trained_batches().items()}
    out = {name: [t / units for t in s] for name, s in samples.items()}
    out["auto:trained"] = {b: n for b, n in trained.items() if n > 0}
    return out


def one_run(rows: int, tiny_steps: int, repeats: int, seed: int) -> dict:
    from fastnn.dispatch import autotune, coldstart
    from fastnn.tools.bench import runner as bench

    X, y, _ = bench.training_data(rows)
    # A fresh cache has no build stamp: wait for the (quick, Numba's cache is warm)
    # background build, so the choice measured is auto's steady one, not its cold start.
    for dtype in (X.dtype, np.float64):  # the epoch's, and the tiny nets' float64
        coldstart.wait_until_ready(dtype)
    out = {}
    calls = {b: bench.epoch_call(b, X, y, "sgd", 256) for b in ("auto", *BACKENDS)}
    calls["numba-again"] = bench.epoch_call("numba", X, y, "sgd", 256)
    for _ in range(bench.AUTO_WARMUP_EPOCHS - 1):  # rounds() warms up once more
        calls["auto"]()
    out["sgd-b256"] = rounds(calls, repeats, 0.0, 1.0, bench.EPOCH_SETTLE_S, seed)
    for net in bench.TINY_NETS:
        calls = {b: bench.tiny_call(b, net, tiny_steps) for b in ("auto", *BACKENDS)}
        calls["numba-again"] = bench.tiny_call("numba", net, tiny_steps)
        for _ in range(bench.AUTO_WARMUP_EPOCHS - 1):
            calls["auto"]()
        out[net.name] = rounds(calls, repeats, 0.02, tiny_steps, bench.TINY_SETTLE_S, seed)
    choices = {k.split("|")[2]: v["backend"] for k, v in autotune.entries().items()
               if k.startswith("train_batches")}  # fmt: skip
    return {"cases": out, "train_batches": choices}


def own_backend(samples: dict) -> str:
    """The backend whose code ``auto`` ran for most of its timed batches."""
    trained = samples["auto:trained"]
    return max(trained, key=trained.get) if trained else "numba"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--tiny-steps", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=5, help="rounds per run")
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one_run(args.rows, args.tiny_steps, args.repeats, args.seed)))
        return 0
    pooled: dict[str, dict[str, list[float]]] = {}
    for i in range(args.runs):
        with tempfile.TemporaryDirectory() as cache:
            env = dict(os.environ, FASTNN_CACHE_DIR=cache)
            cmd = [sys.executable, __file__, "--one", "--seed", str(i)] + [
                f"--{k}={v}" for k, v in (("rows", args.rows), ("tiny-steps", args.tiny_steps),
                                          ("repeats", args.repeats))]  # fmt: skip
            res = json.loads(subprocess.run(cmd, env=env, capture_output=True, text=True,
                                            check=True).stdout)  # fmt: skip
        parts = []
        for case, samples in res["cases"].items():
            own = own_backend(samples)
            other = next(b for b in BACKENDS if b != own)
            ratios = {
                "auto/own": per_round(samples, "auto", own),
                "own/other": per_round(samples, own, other),
                "auto/numba": per_round(samples, "auto", "numba"),
                "auto/numpy": per_round(samples, "auto", "numpy"),
                "control": per_round(samples, "numba-again", "numba"),
            }
            for name, values in ratios.items():
                pooled.setdefault(case, {}).setdefault(name, []).extend(values)
            trained = samples["auto:trained"]
            share = trained.get(own, 0) / max(1, sum(trained.values()))
            parts.append(
                f"{case}: auto on {own} {share:.0%}, auto/own "
                f"{np.median(ratios['auto/own']):.3f}, own/other "
                f"{np.median(ratios['own/other']):.3f} (control {np.median(ratios['control']):.3f})"
            )
        print(f"run {i + 1}: " + "; ".join(parts), flush=True)
    print(f"per round, pooled over {args.runs} runs (median, bootstrap 95% interval):")
    for case, ratios in pooled.items():
        best = max(BACKENDS, key=lambda b: np.median(ratios[f"auto/{b}"]))
        iv = {name: fmt_interval(values) for name, values in ratios.items()}
        print(
            f"  {case} ({len(ratios['control'])} rounds): auto/own {iv['auto/own']}, own/other "
            f"{iv['own/other']}, auto/{best} (the faster backend over all rounds) "
            f"{iv[f'auto/{best}']}, control {iv['control']}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
