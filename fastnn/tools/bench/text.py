"""The plain-text tables of a ``fastnn bench`` run (its default output).

Top to bottom: the machine, PASS/FAIL per regime, one table per regime other
than ``ops`` (time, spread over the repeats, ratios, targets), then the ``ops``
table.  Spreads are min-max over the repeats: a ratio whose spreads overlap the
limit is marked ``FAIL (noise)``.
"""

from __future__ import annotations

from . import summary
from .fmt import fmt_ratio, fmt_time, short_status, table
from .runner import BACKENDS


def _header(data: dict) -> list[str]:
    m = data["machine"]
    out = [
        f"fastnn {m['versions'].get('fastnn')} on {m['cpu']} ({m['cores']} cores), "
        f"backends: {', '.join(m['backends'])}"
    ]
    if m.get("loadavg", "-") != "-" and float(m["loadavg"].split(",")[0]) > 0.5:
        out.append(
            f"warning: load average {m['loadavg']} at start: other processes share the CPU, "
            "so absolute figures (and some ratios) are unreliable"
        )
    g = data["gemm"]
    out.append(
        f"GEMM rate (A @ A, n=2048): float32 {g['float32'] / 1e9:.1f} GFLOP/s, "
        f"float64 {g['float64'] / 1e9:.1f} GFLOP/s"
    )
    return out


def _unavailable(cases: list[dict]) -> list[str]:
    reasons: dict[str, set[str]] = {}
    for c in cases:
        for r, st in c["status"].items():
            if st.startswith("n/a") and not st.endswith("small shapes only"):
                reasons.setdefault(st[5:], set()).add(r)
    return [f"n/a: {why} (runners: {', '.join(sorted(rs))})" for why, rs in sorted(reasons.items())]


def _verdicts(cases: list[dict]) -> list[str]:
    lines = ["", "== summary: targets per regime =="]
    for regime in summary.regimes(cases):
        counts = summary.regime_counts(cases, regime)
        detail = ", ".join(f"{n} {k}" for k, n in counts.items() if n)
        lines.append(f"{regime:<12} {summary.verdict(counts):<13} {detail or 'no targets'}")
    return lines


def _with_spread(case: dict, runner: str) -> str:
    """``median (+-half the spread in %)``: how far one figure can be trusted."""
    t = case["seconds"].get(runner)
    lo_hi = case.get("spread", {}).get(runner)
    if t is None:
        return "-"
    if not lo_hi or not t:
        return fmt_time(t)
    return f"{fmt_time(t)} ±{50 * (lo_hi[1] - lo_hi[0]) / t:.0f}%"


def _ops_row(c: dict) -> list[str]:
    s = c["seconds"]
    best = min((s[b] for b in ("numpy", "numba") if b in s), default=None)
    gf = c["flops"] / best / 1e9 if c["flops"] and best else None
    tg = {t["runner"]: t for t in c["targets"]}
    auto_ratio = tg.get("auto", {}).get("ratio")
    return [
        c["name"],
        *(_with_spread(c, b) for b in BACKENDS),
        fmt_ratio(s["numba"] / s["numpy"]) if "numba" in s and "numpy" in s else "-",
        fmt_ratio(auto_ratio) if auto_ratio else "-",
        f"{gf:.1f}" if gf else "-",
        " ".join(f"{r}:{short_status(summary.status_label(t))}" for r, t in tg.items()),
    ]


def _ops_table(ops: list[dict]) -> list[str]:
    headers = ["case", *BACKENDS, "numba/numpy", "auto/best", "GFLOP/s", "targets"]
    return [
        "",
        "== ops: median time per call ±half its min-max spread (numba/numpy, auto/best: "
        "time ratios) ==",
        table(headers, [_ops_row(c) for c in ops]),
    ]


def _regime_table(regime: str, rows: list[dict]) -> list[str]:
    mine = [r for r in rows if r["regime"] == regime]
    headers = ["case", "runner", "time", "spread (min - max)", "time ratios", "targets"]
    keys = ["case", "runner", "time", "spread", "ratios", "targets"]
    if any(r["notes"] for r in mine):  # scores, rates: before the (long) targets column
        headers.insert(-1, "notes")
        keys.insert(-1, "notes")
    body = [[r[k] for k in keys] for r in mine]
    unit = summary.UNITS.get(regime, "unit")
    return ["", f"== {regime}: median time per {unit} ==", table(headers, body)]


def format_report(data: dict) -> str:
    """The plain-text tables of one run (the default output of ``fastnn bench``)."""
    cases = data["cases"]
    out = [*_header(data), *_unavailable(cases), *_verdicts(cases)]
    rows = summary.headline_rows(cases)
    for regime in summary.regimes(cases):
        if regime not in summary.PER_OP_REGIMES:
            out += _regime_table(regime, rows)
    ops = [c for c in cases if c["regime"] == "ops"]
    if ops:
        out += _ops_table(ops)
    return "\n".join(out)
