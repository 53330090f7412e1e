"""The HTML report of ``fastnn bench --html DIR``: one self-contained page.

``DIR/index.html`` holds everything inline -- the plots as base64 PNG images
drawn with matplotlib's Agg backend, the CSS in a ``<style>`` element -- so it
opens from disk or any static server with no network access.  Sections:

1. the speedup ladder ``python -> numpy -> numba -> auto``: per op and shape,
   each backend's speed relative to ``numpy`` (log scale);
2. GFLOP/s of the dense ops per backend against this machine's matrix-product
   rate (``A @ A``, n=2048) measured in the same run;
3. training time per epoch of the Fashion-MNIST MLP against the hand-written
   NumPy loop, PyTorch (when installed) and the GEMM floor, and the tiny nets'
   time per step;
4. the issue's targets with PASS/FAIL;
5. a table of the raw numbers and the machine details (CPU, cores, BLAS
   libraries via threadpoolctl, versions).
"""

from __future__ import annotations

import base64
import html
import io
import os
from pathlib import Path

import numpy as np

from .fmt import fmt_time
from .text import format_report

#: Colours per runner, fixed so every plot reads the same way.
COLORS = {
    "python": "#9e9e9e",
    "numpy": "#1f77b4",
    "numba": "#d62728",
    "auto": "#2ca02c",
    "numpy-loop": "#17becf",
    "torch": "#ff7f0e",
    "gemm-floor": "#555555",
}
LADDER = ("python", "numpy", "numba", "auto")


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _png(fig) -> str:
    """The figure as an inline ``<img>`` (base64 PNG), closing the figure."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    _plt().close(fig)
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return f'<img class="plot" alt="plot" src="data:image/png;base64,{data}">'


def _short_shape(case: dict) -> str:
    p = case["params"]
    shape = p["shape"]
    if p["op"].startswith("dense"):
        return f"{shape[0]}x{shape[1]}>{shape[2]}"
    return "x".join(map(str, shape))


def _op_key(case: dict) -> str:
    p = case["params"]
    return f"{p['op']}[{p['name']}]" if p.get("name") else p["op"]


def _grouped_ops(cases: list[dict]) -> dict[tuple[str, str], list[dict]]:
    groups: dict[tuple[str, str], list[dict]] = {}
    for c in cases:
        if c["regime"] == "ops":
            groups.setdefault((_op_key(c), c["params"]["dtype"]), []).append(c)
    return groups


def ladder_plots(cases: list[dict]) -> list[tuple[str, str]]:
    """One bar chart per (op, dtype): speed relative to numpy per backend and shape."""
    plt = _plt()
    out = []
    for (op, dtype), group in _grouped_ops(cases).items():
        fig, ax = plt.subplots(figsize=(max(6, 0.75 * len(group) + 2), 3.4))
        x = np.arange(len(group))
        width = 0.8 / len(LADDER)
        for i, backend in enumerate(LADDER):
            speed = []
            for c in group:
                s = c["seconds"]
                ok = backend in s and "numpy" in s
                speed.append(s["numpy"] / s[backend] if ok else np.nan)
            ax.bar(x + (i - 1.5) * width, speed, width, label=backend, color=COLORS[backend])
        ax.axhline(1.0, color="black", lw=0.8)
        ax.set_yscale("log")
        ax.set_xticks(x, [_short_shape(c) for c in group], rotation=45, ha="right", fontsize=8)
        ax.set_ylabel("speed vs numpy (x)")
        ax.set_title(f"{op} {dtype}: speedup ladder (python only at small shapes)")
        ax.legend(fontsize=8, ncol=4)
        ax.grid(axis="y", which="both", alpha=0.3)
        out.append((f"{op} {dtype}", _png(fig)))
    return out


def gflops_plots(cases: list[dict], gemm: dict) -> list[tuple[str, str]]:
    """GFLOP/s of the dense ops per backend against the measured matrix-product rate."""
    plt = _plt()
    out = []
    for (op, dtype), group in _grouped_ops(cases).items():
        if not group[0]["flops"]:
            continue
        fig, ax = plt.subplots(figsize=(max(6, 0.75 * len(group) + 2), 3.4))
        x = np.arange(len(group))
        for backend in ("numpy", "numba", "auto"):
            rate = [
                c["flops"] / c["seconds"][backend] / 1e9 if backend in c["seconds"] else np.nan
                for c in group
            ]
            ax.plot(x, rate, "o-", label=backend, color=COLORS[backend])
        peak = gemm[dtype] / 1e9
        ax.axhline(peak, color="black", ls="--", lw=1, label=f"A @ A n=2048: {peak:.0f} GFLOP/s")
        ax.set_xticks(x, [_short_shape(c) for c in group], rotation=45, ha="right", fontsize=8)
        ax.set_ylabel("GFLOP/s")
        ax.set_yscale("log")
        ax.set_title(f"{op} {dtype}: GFLOP/s vs this machine's GEMM rate")
        ax.legend(fontsize=8)
        ax.grid(axis="y", which="both", alpha=0.3)
        out.append((f"{op} {dtype}", _png(fig)))
    return out


def training_plots(cases: list[dict]) -> list[tuple[str, str]]:
    """Time per epoch (epoch regime) and per step (tiny nets), one bar per runner."""
    plt = _plt()
    out = []
    for regime, scale, ylabel in (
        ("epoch", 1.0, "seconds per epoch"),
        ("tiny", 1e6, "microseconds per step (log)"),
    ):
        sel = [c for c in cases if c["regime"] == regime]
        if not sel:
            continue
        fig, axes = plt.subplots(1, len(sel), figsize=(4.2 * len(sel), 3.6), squeeze=False)
        for ax, c in zip(axes[0], sel):
            runners = [r for r in c["seconds"] if r != "gemm-floor"]
            vals = [c["seconds"][r] * scale for r in runners]
            bars = ax.bar(runners, vals, color=[COLORS.get(r, "#777777") for r in runners])
            for bar, v in zip(bars, vals):
                ax.annotate(
                    f"{v:.3g}", (bar.get_x() + bar.get_width() / 2, v), ha="center",
                    va="bottom", fontsize=8,
                )  # fmt: skip
            title = c["name"]
            if "gemm-floor" in c["seconds"]:
                floor = c["seconds"]["gemm-floor"] * scale
                ax.axhline(floor, color="black", ls="--", lw=1)
                title += f", {c['params']['samples']} samples\n(dashed: GEMM floor {floor:.3g} s)"
            if regime == "tiny":
                ax.set_yscale("log")
                ax.set_ylim(top=max(vals, default=1) * 3)
            else:
                ax.set_ylim(0, max(vals, default=1) * 1.15)
            missing = [r for r, s in c["status"].items() if s.startswith("n/a")]
            title += f"\n(n/a: {', '.join(missing)})" if missing else ""
            ax.set_title(title, fontsize=9)
            ax.set_ylabel(ylabel)
            ax.tick_params(axis="x", labelrotation=30, labelsize=8)
            ax.grid(axis="y", which="both", alpha=0.3)
        fig.tight_layout()
        caption = (
            "784-256-10 MLP (ReLU, softmax cross-entropy, float32): seconds per epoch"
            if regime == "epoch"
            else "tiny nets trained full-batch: microseconds per training step"
        )
        out.append((caption, _png(fig)))
    return out


def _e(x) -> str:
    return html.escape(str(x))


def _fmt(t) -> str:
    return fmt_time(t)


def _targets_table(cases: list[dict]) -> str:
    rows = []
    for c in cases:
        for t in c["targets"]:
            status = t["status"]
            cls = "pass" if status == "PASS" else "fail" if status == "FAIL" else "na"
            ratio = f"{t['ratio']:.3g}" if t["ratio"] is not None else "-"
            rows.append(
                f"<tr><td>{_e(c['regime'])}</td><td>{_e(c['name'])}</td><td>{_e(t['label'])}</td>"
                f"<td>{ratio}</td><td>{t['limit']:.3g}</td>"
                f'<td class="{cls}">{_e(status)}</td></tr>'
            )
    n_pass = sum(t["status"] == "PASS" for c in cases for t in c["targets"])
    n_fail = sum(t["status"] == "FAIL" for c in cases for t in c["targets"])
    head = (
        f"<p>{n_pass} PASS, {n_fail} FAIL, {len(rows) - n_pass - n_fail} n/a "
        "(ratios are time ratios: lower is faster).</p>"
    )
    return head + (
        '<table id="targets"><thead><tr><th>regime</th><th>case</th><th>target</th>'
        "<th>ratio</th><th>limit</th><th>status</th></tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table>"
    )


def _raw_table(cases: list[dict]) -> str:
    runners: list[str] = []
    for c in cases:
        for r in c["status"]:
            if r not in runners:
                runners.append(r)
    head = "".join(f"<th>{_e(r)}</th>" for r in runners)
    rows = []
    for c in cases:
        cells = []
        for r in runners:
            if r in c["seconds"]:
                cells.append(f"<td>{_e(_fmt(c['seconds'][r]))}</td>")
            else:
                st = c["status"].get(r, "")
                cells.append(f'<td class="na" title="{_e(st)}">{"n/a" if st else ""}</td>')
        flops = f"{c['flops'] / 1e9:.3g}" if c["flops"] else ""
        rows.append(
            f"<tr><td>{_e(c['regime'])}</td><td>{_e(c['name'])}</td><td>{flops}</td>"
            + "".join(cells)
            + "</tr>"
        )
    return (
        '<table id="raw"><thead><tr><th>regime</th><th>case</th><th>GFLOP</th>'
        + head
        + "</tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table>"
    )


def _machine_table(data: dict) -> str:
    m = data["machine"]
    items = [
        ("CPU", m["cpu"]),
        ("cores", m["cores"]),
        ("platform", m["platform"]),
        ("backends", ", ".join(m["backends"])),
        ("float32 GEMM (A @ A, n=2048)", f"{data['gemm']['float32'] / 1e9:.1f} GFLOP/s"),
        ("float64 GEMM (A @ A, n=2048)", f"{data['gemm']['float64'] / 1e9:.1f} GFLOP/s"),
        ("load average at start", m.get("loadavg", "-")),
        ("measured", f"{data['created']}{' (--quick)' if data['quick'] else ''}"),
    ]
    items += [(f"version: {k}", v or "not installed") for k, v in m["versions"].items()]
    for p in m["blas"]:
        items.append(
            (
                f"thread pool: {p.get('internal_api')} ({p.get('user_api')})",
                f"{p.get('version')}, {p.get('num_threads')} threads, {p.get('filepath')}",
            )
        )
    rows = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in items)
    return f'<table id="machine">{rows}</table>'


CSS = """
body { font-family: system-ui, sans-serif; margin: 1.5em auto; max-width: 1200px; color: #222; }
h1 { font-size: 1.5em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: .2em; }
table { border-collapse: collapse; font-size: 12px; margin: .5em 0 1.5em; }
td, th { border: 1px solid #ddd; padding: 2px 6px; text-align: left; }
thead th { background: #f3f3f3; position: sticky; top: 0; }
td.pass { color: #fff; background: #2e7d32; } td.fail { color: #fff; background: #c62828; }
td.na { color: #888; } img.plot { max-width: 100%; display: block; margin: .5em 0; }
.note { color: #555; font-size: 13px; } pre { background: #f6f6f6; padding: .5em; }
figure { margin: 0 0 1em; }
"""


def render_html(data: dict) -> str:
    """The report page for one ``fastnn bench`` result (see :func:`fastnn.tools.bench.run`)."""
    cases = data["cases"]
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        "<title>fastnn bench report</title>",
        # an empty inline icon: the browser would otherwise request /favicon.ico
        "<link rel='icon' href='data:,'>",
        f"<style>{CSS}</style></head><body>",
        "<h1>fastnn bench report</h1>",
        f"<p class='note'>{_e(data['machine']['cpu'])}, {data['machine']['cores']} cores; "
        f"backends: {_e(', '.join(data['machine']['backends']))}; measured {_e(data['created'])}"
        f"{' with --quick' if data['quick'] else ''}. Every figure comes from one process, "
        "runners timed alternately after an untimed warm-up; medians.</p>",
    ]
    sections = [
        ("ladder", "Speedup ladder: python &rarr; numpy &rarr; numba &rarr; auto",
         ladder_plots(cases)),
        ("gflops", "GFLOP/s against this machine's matrix-product rate",
         gflops_plots(cases, data["gemm"])),
        ("training", "Training time: per epoch against PyTorch and the GEMM floor; tiny nets",
         training_plots(cases)),
    ]  # fmt: skip
    for sec_id, title, plots in sections:
        parts.append(f"<section id='{sec_id}'><h2>{title}</h2>")
        if not plots:
            parts.append("<p class='note'>not measured in this run</p>")
        for caption, img in plots:
            parts.append(
                f"<figure>{img}<figcaption class='note'>{_e(caption)}</figcaption></figure>"
            )
        parts.append("</section>")
    parts.append(f"<section id='targets-section'><h2>Targets</h2>{_targets_table(cases)}</section>")
    parts.append(
        "<section id='raw-section'><h2>Raw numbers (median time per call / epoch / step)</h2>"
        f"{_raw_table(cases)}</section>"
    )
    parts.append(f"<section id='machine-section'><h2>Machine</h2>{_machine_table(data)}</section>")
    try:
        parts.append(f"<section><h2>Plain-text table</h2><pre>{_e(format_report(data))}</pre>")
        parts.append("</section>")
    except ImportError:
        pass
    parts.append("</body></html>")
    return "\n".join(parts)


def write_html(data: dict, directory: str | os.PathLike) -> Path:
    """Write ``directory/index.html`` (creating the directory) and return its path."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "index.html"
    tmp = out / ".index.html.tmp"
    tmp.write_text(render_html(data), encoding="utf-8")
    os.replace(tmp, path)  # a reader never sees half a page
    return path
