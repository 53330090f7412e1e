"""``fastnn bench``: fastnn's backends side by side with the peers a user would pick.

Modules: :mod:`.runner` (the cases and how each runner is measured),
:mod:`.text` (the plain-text tables), :mod:`.report` (the HTML report with plots).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from .runner import run
from .text import format_report

__all__ = ["main", "run", "format_report"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="fastnn bench",
        description="Measure fastnn's backends side by side (ops, training epochs, tiny nets) "
        "against a hand-written NumPy loop, PyTorch and the GEMM floor, in one process.",
    )
    parser.add_argument("--quick", action="store_true", help="a subset of shapes, shorter epochs")
    parser.add_argument("--json", metavar="FILE", help="also write the raw numbers as JSON")
    parser.add_argument("--html", metavar="DIR", help="also write DIR/index.html with plots")
    parser.add_argument(
        "--regimes",
        default="ops,epoch,tiny",
        help="comma-separated subset of: ops, epoch, tiny (default: all)",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    args = parser.parse_args(argv)
    regimes = tuple(r.strip() for r in args.regimes.split(",") if r.strip())
    unknown = set(regimes) - {"ops", "epoch", "tiny"}
    if unknown:
        parser.error(f"unknown regime(s) {sorted(unknown)}; choose from ops, epoch, tiny")

    def log(msg):
        if not args.quiet:
            print(msg, file=sys.stderr, flush=True)

    data = run(quick=args.quick, regimes=regimes, log=log)
    print(format_report(data))
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump(data, f, indent=1)
        print(f"\nraw numbers: {args.json}")
    if args.html:
        from .report import write_html

        path = write_html(data, args.html)
        print(f"HTML report: {path}")
    return 0
