"""What a ``fastnn bench`` run comes to: PASS/FAIL per regime and the headline rows.

Shared by the plain-text tables (:mod:`.text`) and the HTML report (:mod:`.report`).
Works on the JSON form of a run (:func:`.runner.run`) and on any regime in it:
a regime added later (scikit-learn, ...) shows up here with its cases and targets.
"""

from __future__ import annotations

from .fmt import fmt_ratio, fmt_time

#: The regimes summarised case by case (others: counts only; ops has hundreds of cases).
PER_OP_REGIMES: tuple[str, ...] = ("ops",)

#: The runners each regime's ratios divide by, when the case has them.
REFERENCES: dict[str, tuple[str, ...]] = {
    "epoch": ("numpy-loop", "torch", "gemm-floor", "gemm-shapes"),
    "tiny": ("numpy", "torch"),
    "features": ("numba",),
    "contention": ("numba-1t",),
    "sklearn": ("sklearn", "gemm-floor", "gemm-shapes"),
    "dask": ("memory-1t", "memory-2t"),
}

#: What one timed unit is, per regime (the tables' headings).
UNITS: dict[str, str] = {
    "epoch": "epoch", "tiny": "training step", "features": "epoch", "contention": "epoch",
    "sklearn": "fit",
    "dask": "row",
}  # fmt: skip


def status_label(target: dict) -> str:
    """PASS, FAIL, ``FAIL (noise)`` when the samples' spread meets the limit, or n/a."""
    status = target["status"]
    if status.startswith("n/a"):
        return "n/a"
    return "FAIL (noise)" if status == "FAIL" and target.get("noise") else status


def regimes(cases: list[dict]) -> list[str]:
    """The regimes present, in the order they were measured."""
    return list(dict.fromkeys(c["regime"] for c in cases))


def regime_counts(cases: list[dict], regime: str) -> dict[str, int]:
    """Targets of ``regime``: counts of PASS, FAIL, FAIL (noise) and n/a."""
    counts = {"PASS": 0, "FAIL": 0, "FAIL (noise)": 0, "n/a": 0}
    for c in cases:
        if c["regime"] == regime:
            for t in c["targets"]:
                counts[status_label(t)] += 1
    return counts


def verdict(counts: dict[str, int]) -> str:
    """One word per regime: FAIL if any target failed beyond noise, else PASS (n/a if none ran)."""
    if counts["FAIL"]:
        return "FAIL"
    if counts["PASS"] or counts["FAIL (noise)"]:
        return "PASS" if not counts["FAIL (noise)"] else "PASS (noise)"
    return "n/a"


def spread_text(case: dict, runner: str) -> str:
    lo_hi = case.get("spread", {}).get(runner)
    if not lo_hi:
        return "-"
    return f"{fmt_time(lo_hi[0])} - {fmt_time(lo_hi[1])}"


def ratios_text(case: dict, runner: str) -> str:
    """Time ratios against the regime's references, e.g. ``0.78x numpy-loop, 0.71x torch``."""
    s = case["seconds"]
    if runner not in s:
        return "-"
    parts = [
        f"{fmt_ratio(s[runner] / s[ref])} {ref}"
        for ref in REFERENCES.get(case["regime"], ())
        if ref in s and ref != runner
    ]
    return ", ".join(parts) or "-"


def notes_text(case: dict, runner: str) -> str:
    """What else the runner reported: test accuracy and epochs run (``info``), which
    backends ``auto`` trained its timed batches on, and a rate in rows per second when
    the case's unit is a row."""
    parts = []
    info = case.get("info", {}).get(runner, {})
    if "score" in info:
        parts.append(f"accuracy {info['score']:.4f}")
    if "n_iter" in info:
        parts.append(f"{info['n_iter']} epochs")
    if info.get("trained"):
        total = sum(info["trained"].values())
        shares = sorted(info["trained"].items(), key=lambda kv: -kv[1])
        parts.append("timed batches on " + ", ".join(f"{b} {n / total:.0%}" for b, n in shares))
    t = case["seconds"].get(runner)
    if case.get("params", {}).get("unit") == "row" and t:
        parts.append(f"{1 / t:,.0f} rows/s")
    return ", ".join(parts)


def _ratio_text(case: dict, target: dict) -> str:
    """`` (time ratio)``; for per-row cases the rate ratio, as their targets are worded."""
    ratio = target["ratio"]
    if ratio is None:
        return ""
    if case.get("params", {}).get("unit") == "row" and ratio > 0:
        return f" (rate {1 / ratio:.3g}x)"
    return f" ({ratio:.3g})"


def headline_rows(cases: list[dict]) -> list[dict]:
    """One row per runner of every case outside the per-op regimes: time, spread,
    ratios to the regime's references, notes (:func:`notes_text`) and the targets
    it takes part in."""
    rows = []
    for c in cases:
        if c["regime"] in PER_OP_REGIMES:
            continue
        for runner, st in c["status"].items():
            t = c["seconds"].get(runner)
            targets = [
                f"{status_label(x)}: {x['label']}" + _ratio_text(c, x)
                for x in c["targets"]
                if x["runner"] == runner
            ]
            rows.append({
                "regime": c["regime"], "case": c["name"], "runner": runner,
                "time": fmt_time(t) if t is not None else ("n/a" if st.startswith("n/a") else st),
                "spread": spread_text(c, runner), "ratios": ratios_text(c, runner),
                "notes": notes_text(c, runner), "targets": "; ".join(targets),
            })  # fmt: skip
    return rows
