"""``fastnn bench``: fastnn's backends side by side with the peers a user would pick.

Modules: :mod:`.runner` (the regimes, how each runner is measured, targets),
:mod:`.workloads` (what is run), :mod:`.worker` (runners in their own processes),
:mod:`.contention` (the CPU hog), :mod:`.estimators` (the ``sklearn`` regime's fits),
:mod:`.dask_regime` (distributed prediction), :mod:`.text` (the plain-text tables),
:mod:`.report` (the HTML report with plots).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from .runner import DEFAULT_REGIMES, REGIMES, run
from .text import format_report

__all__ = ["main", "run", "format_report"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="fastnn bench",
        description="Measure fastnn's backends side by side (ops, training epochs, tiny nets, "
        "training beside a CPU hog, scikit-learn fits, dask prediction) against a hand-written "
        "NumPy loop, PyTorch, scikit-learn and the GEMM floor; epoch and fit runners each in "
        "their own process.",
    )
    parser.add_argument("--quick", action="store_true", help="a subset of shapes, shorter epochs")
    parser.add_argument("--json", metavar="FILE", help="also write the raw numbers as JSON")
    parser.add_argument("--html", metavar="DIR", help="also write DIR/index.html with plots")
    parser.add_argument(
        "--regimes",
        default=",".join(DEFAULT_REGIMES),
        help=f"comma-separated subset of: {', '.join(REGIMES)} "
        f"(default: {','.join(DEFAULT_REGIMES)})",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    args = parser.parse_args(argv)
    regimes = tuple(r.strip() for r in args.regimes.split(",") if r.strip())
    unknown = set(regimes) - set(REGIMES)
    if unknown:
        parser.error(f"unknown regime(s) {sorted(unknown)}; choose from {', '.join(REGIMES)}")

    def log(msg):
        if not args.quiet:
            print(msg, file=sys.stderr, flush=True)

    data = run(quick=args.quick, regimes=regimes, log=log)
    if args.json:  # first: the numbers survive whatever happens to the rendering
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump(data, f, indent=1)
    print(format_report(data))
    if args.json:
        print(f"\nraw numbers: {args.json}")
    if args.html:
        from .report import PLOTS_MISSING, plots_available, write_html

        if not plots_available():
            print(f"fastnn bench: {PLOTS_MISSING}", file=sys.stderr)
        path = write_html(data, args.html)
        print(f"HTML report: {path}")
    return 0
