"""Paired ratios: two runners compared round by round.

A shared machine's speed drifts over seconds.  Two runners timed in the same round
(seconds apart) share most of that drift, so the ratio of their two samples varies
far less than either runner's samples do.  The median of those per-round ratios,
with a bootstrap interval, is what the benchmark scripts report for "A against B"
when the target is tighter than the machine's drift.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence

import numpy as np

#: Bootstrap resamples and confidence level of :func:`median_interval`.
RESAMPLES = 2000
CONFIDENCE = 0.95


def per_round(samples: Mapping[str, Sequence[float]], a: str, b: str) -> list[float]:
    """``a``'s sample over ``b``'s, round by round (``samples[name]`` in round order,
    as :func:`fastnn.dispatch.timing.sample_rounds` returns them)."""
    if len(samples[a]) != len(samples[b]):
        raise ValueError(
            f"{a!r} has {len(samples[a])} samples and {b!r} {len(samples[b])}: "
            "paired ratios need one sample of each per round"
        )
    return [x / y for x, y in zip(samples[a], samples[b])]


def median_interval(ratios: Sequence[float], seed: int = 0) -> tuple[float, float, float]:
    """``(median, low, high)``: the median of ``ratios`` and its percentile bootstrap
    interval at :data:`CONFIDENCE` (``scipy.stats.bootstrap``, :data:`RESAMPLES`)."""
    values = np.asarray(ratios, dtype=float)
    if values.ndim != 1 or values.size < 2:
        raise ValueError(f"a bootstrap interval needs at least 2 ratios, got {values.size}")
    from scipy.stats import bootstrap

    # SciPy 1.15 renamed ``random_state`` to ``rng``; the project supports SciPy >= 1.10
    key = "rng" if "rng" in inspect.signature(bootstrap).parameters else "random_state"
    res = bootstrap(
        (values,), np.median, n_resamples=RESAMPLES, confidence_level=CONFIDENCE,
        method="percentile", **{key: np.random.default_rng(seed)},
    )  # fmt: skip
    ci = res.confidence_interval
    return float(np.median(values)), float(ci.low), float(ci.high)


def fmt_interval(ratios: Sequence[float]) -> str:
    """``"1.012 (0.984-1.042)"``: :func:`median_interval` as text."""
    med, low, high = median_interval(ratios)
    return f"{med:.3f} ({low:.3f}-{high:.3f})"
