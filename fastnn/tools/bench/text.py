"""The plain-text tables of a ``fastnn bench`` run (its default output)."""

from __future__ import annotations

from .fmt import fmt_ratio, fmt_time, short_status, table
from .runner import BACKENDS


def format_report(data: dict) -> str:
    """The plain-text tables of one run (the default output of ``fastnn bench``)."""
    cases = data["cases"]
    out = []
    m = data["machine"]
    out.append(
        f"fastnn {m['versions'].get('fastnn')} on {m['cpu']} ({m['cores']} cores), "
        f"backends: {', '.join(m['backends'])}"
    )
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
    reasons: dict[str, set[str]] = {}
    for c in cases:
        for r, st in c["status"].items():
            if st.startswith("n/a") and not st.endswith("small shapes only"):
                reasons.setdefault(st[5:], set()).add(r)
    for reason, runners in sorted(reasons.items()):
        out.append(f"n/a: {reason} (runners: {', '.join(sorted(runners))})")
    ops = [c for c in cases if c["regime"] == "ops"]
    if ops:
        rows = []
        for c in ops:
            s = c["seconds"]
            best = min((s[b] for b in ("numpy", "numba") if b in s), default=None)
            gf = c["flops"] / best / 1e9 if c["flops"] and best else None
            tg = {t["runner"]: t for t in c["targets"]}
            rows.append([
                c["name"],
                *(fmt_time(s.get(b)) for b in BACKENDS),
                fmt_ratio(s["numba"] / s["numpy"]) if "numba" in s and "numpy" in s else "-",
                fmt_ratio(tg["auto"]["ratio"]) if tg.get("auto", {}).get("ratio") else "-",
                f"{gf:.1f}" if gf else "-",
                " ".join(f"{r}:{short_status(t['status'])}" for r, t in tg.items()),
            ])  # fmt: skip
        out.append("")
        out.append("== ops: median time per call (numba/numpy and auto/best: time ratios) ==")
        out.append(
            table(
                ["case", *BACKENDS, "numba/numpy", "auto/best", "GFLOP/s", "targets"],
                rows,
            )
        )
        statuses = [t["status"] for c in ops for t in c["targets"]]
        out.append(
            f"ops targets: {statuses.count('PASS')} PASS, {statuses.count('FAIL')} FAIL, "
            f"{sum(s.startswith('n/a') for s in statuses)} n/a"
        )
    for regime, title in (
        ("epoch", "epoch: 784-256-10 MLP, one epoch (vs numpy = vs the hand-written NumPy loop)"),
        ("tiny", "tiny nets: time per full-batch training step (vs numpy = vs numpy backend)"),
    ):
        sel = [c for c in cases if c["regime"] == regime]
        if not sel:
            continue
        rows = []
        for c in sel:
            s = c["seconds"]
            ref = s.get("numpy-loop" if regime == "epoch" else "numpy")
            for runner, st in c["status"].items():
                t = s.get(runner)
                tg = [x for x in c["targets"] if x["runner"] == runner]
                rows.append([
                    c["name"], runner, fmt_time(t) if t else short_status(st),
                    fmt_ratio(t / ref) if t and ref else "-",
                    fmt_ratio(t / s["torch"]) if t and s.get("torch") else "-",
                    fmt_ratio(t / s["gemm-floor"]) if t and s.get("gemm-floor") else "-",
                    f"{c['flops'] / t / 1e9:.1f}" if t and c["flops"] and runner != "gemm-floor"
                    else "-",
                    "; ".join(
                        f"{short_status(x['status'])} {x['label']}"
                        + (f" ({x['ratio']:.3g})" if x["ratio"] is not None else "")
                        for x in tg
                    ),
                ])  # fmt: skip
        out.append("")
        out.append(f"== {title} ==")
        out.append(
            table(
                [
                    "case",
                    "runner",
                    "time",
                    "vs numpy",
                    "vs torch",
                    "vs floor",
                    "GFLOP/s",
                    "targets",
                ],
                rows,
            )
        )
    return "\n".join(out)
