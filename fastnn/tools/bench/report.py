"""The HTML report of ``fastnn bench --html DIR``: one self-contained page.

``DIR/index.html`` holds everything inline -- the plots as base64 PNG images
drawn with matplotlib's Agg backend, the CSS in a ``<style>`` element -- so it
opens from disk or any static server with no network access.  It fits a
1,280 px wide window.  Top to bottom:

1. the summary: PASS/FAIL per regime, then every epoch, tiny-net, contention
   (and any other non-op regime's) figure with its spread and ratios;
2. training charts: seconds per epoch (GEMM floor dashed), per tiny-net step,
   per epoch under contention, per scikit-learn ``fit`` (test accuracy under each
   bar's value), per predicted row on dask, each bar with its min-max spread;
3. per-op charts, one collapsed ``<details>`` group per op: the speedup ladder
   ``python -> numpy -> numba -> auto`` relative to ``numpy`` and GFLOP/s against
   this machine's matrix-product rate, error bars from the spread;
4. the targets table, the raw numbers, the machine.

Without matplotlib the page keeps its tables and says how to get the plots.
"""

from __future__ import annotations

import base64
import html
import importlib.util
import io
import os
from pathlib import Path

import numpy as np

from . import summary
from .fmt import fmt_time
from .text import format_report

#: Colours per runner, fixed so every plot reads the same way.
COLORS = {
    "python": "#9e9e9e",
    "numpy": "#1f77b4",
    "numba": "#d62728",
    "numba-1t": "#ff9896",
    "numba-fixed": "#7f3b08",
    "numba-dropout-l2": "#9c755f",
    "auto": "#2ca02c",
    "numpy-loop": "#17becf",
    "torch": "#ff7f0e",
    "gemm-floor": "#555555",
    "gemm-shapes": "#999999",
    "sklearn": "#9467bd",
    "dask": "#8c564b",
    "memory-1t": "#bcbd22",
    "memory-2t": "#e377c2",
}
LADDER = ("python", "numpy", "numba", "auto")

#: Computed floors, drawn as lines, not bars: the large-square GEMM rate's, and the
#: products timed at the fit's own shapes.
FLOORS = ("gemm-floor", "gemm-shapes")

#: What to do when the plots cannot be drawn.
PLOTS_MISSING = (
    "matplotlib is not installed, so the report has tables but no plots; "
    "install the bench extra for them: pip install 'fastnn[bench]'"
)

#: Figure width in inches at 100 dpi: the page's content column is 1,200 px at most.
FIG_WIDTH = 11.5


def plots_available() -> bool:
    return importlib.util.find_spec("matplotlib") is not None


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


def _e(x) -> str:
    return html.escape(str(x))


# --- per-op charts --------------------------------------------------------------


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


def _bounds(case: dict, runner: str) -> tuple[float, float]:
    """(min, max) seconds of ``runner`` (the median twice when no spread was kept)."""
    lo_hi = case.get("spread", {}).get(runner)
    t = case["seconds"][runner]
    return (lo_hi[0], lo_hi[1]) if lo_hi else (t, t)


def _rate_bars(group: list[dict], runner: str, rate):
    """``rate(case, seconds)`` per case at the median, with error bars [below, above]
    from the runner's min-max spread (NaN where the runner was not measured)."""
    values, below, above = [], [], []
    for c in group:
        if runner not in c["seconds"] or rate(c, c["seconds"][runner]) is None:
            values.append(np.nan)
            below.append(0.0)
            above.append(0.0)
            continue
        lo, hi = _bounds(c, runner)
        v = rate(c, c["seconds"][runner])
        values.append(v)
        below.append(v - rate(c, hi))
        above.append(rate(c, lo) - v)
    return values, [below, above]


def _vs_numpy(case: dict, seconds: float) -> float | None:
    t = case["seconds"].get("numpy")
    return t / seconds if t else None


def _gflops(case: dict, seconds: float) -> float:
    return case["flops"] / seconds / 1e9


def ladder_plot(group: list[dict], title: str) -> str:
    """Bars: each backend's speed relative to numpy per shape (log scale), spread as error bars."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(FIG_WIDTH, 3.0))
    x = np.arange(len(group))
    width = 0.8 / len(LADDER)
    for i, backend in enumerate(LADDER):
        speed, err = _rate_bars(group, backend, _vs_numpy)
        ax.bar(x + (i - 1.5) * width, speed, width, yerr=err, capsize=2, label=backend,
               color=COLORS[backend], error_kw={"lw": 0.8})  # fmt: skip
    ax.axhline(1.0, color="black", lw=0.8)
    ax.set_yscale("log")
    ax.set_xticks(x, [_short_shape(c) for c in group], rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("speed vs numpy (x)")
    ax.set_title(f"{title}: speedup ladder (python only at small shapes; bars: min-max)")
    ax.legend(fontsize=8, ncol=4)
    ax.grid(axis="y", which="both", alpha=0.3)
    return _png(fig)


def gflops_plot(group: list[dict], peak: float, title: str) -> str:
    """GFLOP/s per backend against the machine's matrix-product rate (dashed)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(FIG_WIDTH, 3.0))
    x = np.arange(len(group))
    for backend in ("numpy", "numba", "auto"):
        rate, err = _rate_bars(group, backend, _gflops)
        ax.errorbar(x, rate, yerr=err, fmt="o-", capsize=2, label=backend,
                    color=COLORS[backend])  # fmt: skip
    ax.axhline(peak / 1e9, color="black", ls="--", lw=1, label=f"A @ A: {peak / 1e9:.0f} GFLOP/s")
    ax.set_xticks(x, [_short_shape(c) for c in group], rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("GFLOP/s")
    ax.set_yscale("log")
    ax.set_title(f"{title}: GFLOP/s vs this machine's GEMM rate (bars: min-max)")
    ax.legend(fontsize=8)
    ax.grid(axis="y", which="both", alpha=0.3)
    return _png(fig)


def op_sections(cases: list[dict], gemm: dict) -> str:
    """One collapsed ``<details>`` per op and dtype, holding its charts."""
    parts = []
    for (op, dtype), group in _grouped_ops(cases).items():
        title = f"{op} {dtype}"
        counts = summary.regime_counts(group, "ops")
        tally = f"{counts['PASS']} PASS, {counts['FAIL']} FAIL, {counts['FAIL (noise)']} noise"
        body = ladder_plot(group, title)
        if group[0]["flops"]:
            body += gflops_plot(group, gemm[dtype], title)
        parts.append(
            f"<details class='op'><summary>{_e(title)} <span class='note'>({len(group)} "
            f"shapes; targets: {tally})</span></summary>{body}</details>"
        )
    return "".join(parts)


# --- training charts --------------------------------------------------------------


def _bar_panel(ax, c: dict, scale: float, log: bool) -> None:
    runners = [r for r in c["seconds"] if r not in FLOORS]
    vals = [c["seconds"][r] * scale for r in runners]
    lows = [v - _bounds(c, r)[0] * scale for r, v in zip(runners, vals)]
    highs = [_bounds(c, r)[1] * scale - v for r, v in zip(runners, vals)]
    bars = ax.bar(runners, vals, yerr=[lows, highs], capsize=3,
                  color=[COLORS.get(r, "#777777") for r in runners])  # fmt: skip
    info = c.get("info", {})
    for bar, v, r in zip(bars, vals, runners):
        score = info.get(r, {}).get("score")
        label = f"{v:.3g}" + (f"\nacc {score:.3f}" if score is not None else "")
        ax.annotate(label, (bar.get_x() + bar.get_width() / 2, v), ha="center",
                    va="bottom", fontsize=7)  # fmt: skip
    title = c["name"]
    if "gemm-floor" in c["seconds"]:
        floor = c["seconds"]["gemm-floor"] * scale
        ax.axhline(floor, color="black", ls="--", lw=1)
        title += f"\n(dashed: GEMM floor {floor:.3g} s"
        if "gemm-shapes" in c["seconds"]:
            at_shapes = c["seconds"]["gemm-shapes"] * scale
            ax.axhline(at_shapes, color="black", ls=":", lw=1)
            title += f"; dotted: at the fit's shapes {at_shapes:.3g} s"
        title += ")"
    if log:
        ax.set_yscale("log")
        ax.set_ylim(top=max(vals, default=1) * 3)
    else:
        ax.set_ylim(0, max(v + h for v, h in zip(vals, highs)) * 1.15 if vals else 1)
    missing = [r for r, s in c["status"].items() if s.startswith("n/a")]
    ax.set_title(title + (f"\n(n/a: {', '.join(missing)})" if missing else ""), fontsize=9)
    ax.tick_params(axis="x", labelrotation=30, labelsize=8)
    ax.grid(axis="y", which="both", alpha=0.3)


#: regime -> (time scale, y label, log scale, caption)
TRAINING_CHARTS = {
    "epoch": (1.0, "seconds per epoch", False,
              "784-256-10 MLP (ReLU, softmax cross-entropy, float32): seconds per epoch, "
              "each runner in its own process. auto runs numba's or numpy's code: its "
              "difference from them is noise, as the min-max bars show."),
    "tiny": (1e6, "microseconds per step (log)", True,
             "tiny nets trained full-batch: microseconds per training step"),
    "features": (1.0, "seconds per epoch", False,
                 "784-256-10 epoch on numba, plain and with Dropout 0.3 + L2 1e-4 (fused)"),
    "contention": (1.0, "seconds per epoch", False,
                   "SGD epoch, numba with 1 thread and default threads, PyTorch: quiet, and "
                   "beside a process spinning on one core"),
    "sklearn": (1.0, "seconds per fit", False,
                "MLPClassifier fit, every epoch run, float32: fastnn.sklearn on numba and "
                "numpy against scikit-learn, each runner in its own process; test accuracy "
                "under each bar's value; dashed: the GEMM floor of the fit's epochs"),
    "dask": (1e6, "microseconds per row", False,
             "784-100-10 predict: fastnn.dask.predict on 2 single-thread worker processes "
             "against in-memory predict on 1 and 2 BLAS threads (time per row, lower is "
             "faster)"),
}  # fmt: skip


def training_plots(cases: list[dict]) -> list[tuple[str, str]]:
    """(caption, image) per training regime: one panel per case, one bar per runner."""
    plt = _plt()
    out = []
    for regime, (scale, ylabel, log, caption) in TRAINING_CHARTS.items():
        sel = [c for c in cases if c["regime"] == regime and c["seconds"]]
        if not sel:
            continue
        fig, axes = plt.subplots(1, len(sel), figsize=(FIG_WIDTH, 3.4), squeeze=False)
        for ax, c in zip(axes[0], sel):
            _bar_panel(ax, c, scale, log)
        axes[0][0].set_ylabel(ylabel)
        fig.tight_layout()
        out.append((caption, _png(fig)))
    return out


# --- tables -------------------------------------------------------------------------


def _cls(label: str) -> str:
    if label.startswith("PASS"):
        return "pass"
    return "noise" if "noise" in label else "fail" if label.startswith("FAIL") else "na"


def summary_html(cases: list[dict]) -> str:
    """PASS/FAIL per regime, then the headline figures of every non-op regime."""
    verdicts = []
    for regime in summary.regimes(cases):
        counts = summary.regime_counts(cases, regime)
        v = summary.verdict(counts)
        detail = ", ".join(f"{n} {k}" for k, n in counts.items() if n) or "no targets"
        verdicts.append(
            f"<tr><td>{_e(regime)}</td><td class='{_cls(v)}'>{_e(v)}</td><td>{_e(detail)}</td></tr>"
        )
    rows = "".join(
        f"<tr><td>{_e(r['regime'])}</td><td>{_e(r['case'])}</td><td>{_e(r['runner'])}</td>"
        f"<td>{_e(r['time'])}</td><td>{_e(r['spread'])}</td><td>{_e(r['ratios'])}</td>"
        f"<td>{_e(r['notes'])}</td><td>{_e(r['targets'])}</td></tr>"
        for r in summary.headline_rows(cases)
    )
    return (
        "<table id='verdicts'><thead><tr><th>regime</th><th>verdict</th><th>targets</th></tr>"
        f"</thead><tbody>{''.join(verdicts)}</tbody></table>"
        "<table id='headline'><thead><tr><th>regime</th><th>case</th><th>runner</th>"
        "<th>median</th><th>spread (min - max)</th><th>time ratios</th><th>notes</th>"
        "<th>targets</th></tr>"
        f"</thead><tbody>{rows}</tbody></table>"
    )


def _targets_table(cases: list[dict]) -> str:
    rows = []
    for c in cases:
        for t in c["targets"]:
            label = summary.status_label(t)
            ratio = f"{t['ratio']:.3g}" if t["ratio"] is not None else "-"
            rows.append(
                f"<tr><td>{_e(c['regime'])}</td><td>{_e(c['name'])}</td><td>{_e(t['label'])}</td>"
                f"<td>{ratio}</td><td>{t['limit']:.3g}</td>"
                f'<td class="{_cls(label)}" title="{_e(t["status"])}">{_e(label)}</td></tr>'
            )
    return (
        "<p class='note'>Ratios are time ratios (lower is faster). FAIL (noise): the limit "
        "holds between the runner's fastest and the reference's slowest sample.</p>"
        '<table id="targets"><thead><tr><th>regime</th><th>case</th><th>target</th>'
        "<th>ratio</th><th>limit</th><th>status</th></tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table>"
    )


def _raw_table(cases: list[dict]) -> str:
    runners = list(dict.fromkeys(r for c in cases for r in c["status"]))
    head = "".join(f"<th>{_e(r)}</th>" for r in runners)
    rows = []
    for c in cases:
        cells = []
        for r in runners:
            if r in c["seconds"]:
                cells.append(f"<td title='{_e(summary.spread_text(c, r))}'>"
                             f"{_e(fmt_time(c['seconds'][r]))}</td>")  # fmt: skip
            else:
                st = c["status"].get(r, "")
                cells.append(f'<td class="na" title="{_e(st)}">{"n/a" if st else ""}</td>')
        flops = f"{c['flops'] / 1e9:.3g}" if c["flops"] else ""
        rows.append(f"<tr><td>{_e(c['regime'])}</td><td>{_e(c['name'])}</td><td>{flops}</td>"
                    + "".join(cells) + "</tr>")  # fmt: skip
    return (
        '<div class="wide"><table id="raw"><thead><tr><th>regime</th><th>case</th><th>GFLOP</th>'
        + head + "</tr></thead><tbody>" + "".join(rows) + "</tbody></table></div>"
    )  # fmt: skip


def _machine_table(data: dict) -> str:
    m = data["machine"]
    items = [
        ("CPU", m["cpu"]),
        ("cores", f"{m['cores']} ({m.get('usable_cores', m['cores'])} usable)"),
        ("platform", m["platform"]),
        ("backends", ", ".join(m["backends"])),
        ("float32 GEMM (A @ A, n=2048)", f"{data['gemm']['float32'] / 1e9:.1f} GFLOP/s"),
        ("float64 GEMM (A @ A, n=2048)", f"{data['gemm']['float64'] / 1e9:.1f} GFLOP/s"),
        ("load average at start", m.get("loadavg", "-")),
        ("measured", f"{data['created']}{' (--quick)' if data['quick'] else ''}"),
    ]
    items += [(f"version: {k}", v or "not installed") for k, v in m["versions"].items()]
    for p in m["blas"]:
        items.append((f"thread pool: {p.get('internal_api')} ({p.get('user_api')})",
                      f"{p.get('version')}, {p.get('num_threads')} threads, "
                      f"{p.get('filepath')}"))  # fmt: skip
    rows = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in items)
    return f'<table id="machine">{rows}</table>'


CSS = """
body { font-family: system-ui, sans-serif; margin: 1em auto; padding: 0 1em; max-width: 1200px;
       color: #222; box-sizing: border-box; }
h1 { font-size: 1.4em; margin: .2em 0; } h2 { border-bottom: 1px solid #ccc; padding-bottom: .2em; }
table { border-collapse: collapse; font-size: 12px; margin: .5em 0 1em; max-width: 100%; }
td, th { border: 1px solid #ddd; padding: 2px 6px; text-align: left; overflow-wrap: anywhere; }
thead th { background: #f3f3f3; }
td.pass { color: #fff; background: #2e7d32; } td.fail { color: #fff; background: #c62828; }
td.noise { background: #ffe082; } td.na { color: #888; }
img.plot { max-width: 100%; display: block; margin: .5em 0; }
.note { color: #555; font-size: 13px; }
pre { background: #f6f6f6; padding: .5em; overflow-x: auto; }
figure { margin: 0 0 1em; } .wide { overflow-x: auto; max-width: 100%; }
details.op { border: 1px solid #ddd; margin: .3em 0; padding: .2em .5em; }
details.op summary { cursor: pointer; font-weight: 600; }
"""


def _section(sec_id: str, title: str, body: str) -> str:
    return f"<section id='{sec_id}'><h2>{title}</h2>{body}</section>"


def _plot_sections(data: dict) -> list[str]:
    cases = data["cases"]
    if not plots_available():
        note = f"<p class='note' id='no-plots'>{_e(PLOTS_MISSING)}</p>"
        return [_section("training", "Training", note), _section("ops", "Per op", note)]
    figures = "".join(
        f"<figure>{img}<figcaption class='note'>{_e(caption)}</figcaption></figure>"
        for caption, img in training_plots(cases)
    )
    ops = op_sections(cases, data["gemm"])
    return [
        _section("training", "Training and prediction: per epoch, step, fit, predicted row",
                 figures or "<p class='note'>not measured in this run</p>"),
        _section("ops", "Per op: speedup ladder and GFLOP/s (click a group to open it)",
                 ops or "<p class='note'>not measured in this run</p>"),
    ]  # fmt: skip


def render_html(data: dict) -> str:
    """The report page for one ``fastnn bench`` result (see :func:`fastnn.tools.bench.run`)."""
    cases, m = data["cases"], data["machine"]
    intro = (
        f"<p class='note'>{_e(m['cpu'])}, {m['cores']} cores, load average at start "
        f"{_e(m.get('loadavg', '-'))}; measured {_e(data['created'])}"
        f"{' with --quick' if data['quick'] else ''}. Runners timed in alternating rounds "
        "after an untimed warm-up; medians, spread = min-max over the repeats.</p>"
    )
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        "<title>fastnn bench report</title>",
        # an empty inline icon: the browser would otherwise request /favicon.ico
        "<link rel='icon' href='data:,'>",
        f"<style>{CSS}</style></head><body>",
        f"<h1>fastnn bench report</h1>{intro}",
        _section("summary", "Summary", summary_html(cases)),
        *_plot_sections(data),
        _section("targets-section", "Targets", _targets_table(cases)),
        _section(
            "raw-section",
            "Raw numbers (median per call / epoch / step; hover: spread)",
            _raw_table(cases),
        ),  # fmt: skip
        _section("machine-section", "Machine", _machine_table(data)),
        _section("text-section", "Plain-text tables", f"<pre>{_e(format_report(data))}</pre>"),
        "</body></html>",
    ]
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
