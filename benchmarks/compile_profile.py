"""Where a cold Numba compile spends its time, per compiled function.

Runs asv's first Fashion-MNIST training (``startup.Compile.timeraw_first_training``:
the 784-256-10 MLP on ``backend="numba"``, one ``fit`` epoch of 512 rows, then
``evaluate`` and ``predict``) in a fresh process with an empty ``NUMBA_CACHE_DIR``,
and lists each compiled function's seconds: *exclusive* (its own typing, lowering
and LLVM work, callees' compiles subtracted) and *inclusive*, with the number of
specializations compiled (two or more for one function is a compile paid twice)::

    .venv/bin/python benchmarks/compile_profile.py [--top 25]

The timings come from Numba's ``numba:compile`` events; the wall time of the whole
run is printed first.  Figures vary by +-10% from run to run on a shared machine:
compare builds with several alternating runs.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict

from asv_benchmarks.startup import FIRST_TRAINING


def profile(code: str) -> dict[str, list[float]]:
    """Run ``code`` with a listener on Numba's compile events: ``{name: [exclusive,
    inclusive, count]}``."""
    from numba.core import event

    stack: list[list] = []
    totals: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0])

    class Listener(event.Listener):
        def on_start(self, ev):
            stack.append([time.perf_counter(), 0.0, ev.data["dispatcher"].py_func.__qualname__])

        def on_end(self, ev):
            t0, children, name = stack.pop()
            seconds = time.perf_counter() - t0
            entry = totals[name]
            entry[0] += seconds - children
            entry[1] += seconds
            entry[2] += 1
            if stack:
                stack[-1][1] += seconds

    event.register("numba:compile", Listener())
    exec(compile(code, "<first training>", "exec"), {})
    return dict(totals)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--top", type=int, default=25, help="functions listed")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        t0 = time.perf_counter()
        totals = profile(FIRST_TRAINING)
        compiles = sum(v[0] for v in totals.values())
        print(f"wall {time.perf_counter() - t0:.1f} s (compiles {compiles:.1f} s)")
        print(f"{'exclusive':>9}  {'inclusive':>9}  {'count':>5}  function")
        ranked = sorted(totals.items(), key=lambda kv: -kv[1][0])
        for name, (excl, incl, count) in ranked[: args.top]:
            print(f"{excl:9.2f}  {incl:9.2f}  {count:5d}  {name}")
        return 0
    with tempfile.TemporaryDirectory(prefix="fastnn-compile-") as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache, FASTNN_BACKGROUND_BUILD="0")
        here = os.path.dirname(os.path.abspath(__file__))
        env["PYTHONPATH"] = here + os.pathsep + env.get("PYTHONPATH", "")
        cmd = [sys.executable, os.path.abspath(__file__), "--child", "--top", str(args.top)]
        return subprocess.run(cmd, env=env, check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
