"""The timing loop shared by ``auto``'s probe (:mod:`.autotune`) and ``fastnn bench``.

Several callables are timed in *rounds*: every round takes one sample of each,
in a new (seeded, so reproducible) order, so a slow spell of a shared machine
hits every runner alike and the ratio of two medians holds.  Before any sample,
each callable runs once untimed (first-call costs: JIT compile or cache load,
thread-pool start, workspace allocation).  Options cover what the callers need:

* ``number``: calls per sample (short calls repeated to outlast the timer's and
  the caches' noise), one count per callable or one for all;
* ``rewarm``: one untimed call before every sample -- the sample then measures
  the steady state of consecutive calls, not the switch from the previous
  runner's thread pool (whose idle threads spin for a while after its last call);
* ``settle``: idle seconds before every sample, the other way to let those
  threads go to sleep;
* ``prepare``: run untimed before each sample (fresh copies for in-place ops);
* ``budget``: stop after the round in which this many seconds were spent timing;
* ``self_timed``: each call returns the seconds it took (a call into another
  process times itself there, without the messaging).

The clock (``timer``) and the idle (``sleep``) can be injected, so the callers'
decisions can be tested with made-up timings.
"""

from __future__ import annotations

import math
import random
import statistics
import time
from collections.abc import Callable, Mapping


def calibrate(fn: Callable[[], object], min_time: float, timer=time.perf_counter,
              cap: int = 1_000_000) -> int:  # fmt: skip
    """Calls of ``fn`` that make a sample of at least ``min_time`` seconds (one call timed)."""
    t0 = timer()
    fn()
    dt = timer() - t0
    return max(1, min(cap, math.ceil(min_time / max(dt, 1e-9))))


def sample_rounds(
    calls: Mapping[str, Callable[[], object]],
    repeats: int,
    *,
    number: int | Mapping[str, int] = 1,
    warm: bool = True,
    rewarm: bool = False,
    settle: float = 0.0,
    prepare: Callable[[str], object] | None = None,
    budget: float | None = None,
    self_timed: bool = False,
    seed: int = 0,
    timer: Callable[[], float] = time.perf_counter,
    sleep: Callable[[float], object] = time.sleep,
) -> dict[str, list[float]]:
    """Seconds per call of each callable: ``repeats`` samples each, taken in rounds.

    Returns ``{name: [seconds per call, one per sample]}`` in sampling order.
    """
    names = list(calls)
    counts = number if isinstance(number, Mapping) else dict.fromkeys(names, number)
    if warm:
        for name in names:
            if prepare is not None:
                prepare(name)
            calls[name]()
    samples: dict[str, list[float]] = {name: [] for name in names}
    shuffler = random.Random(seed)
    spent = 0.0
    for _ in range(repeats):
        order = names[:]
        shuffler.shuffle(order)
        for name in order:
            fn, count = calls[name], counts[name]
            if settle:
                sleep(settle)
            if rewarm:
                fn()
            if prepare is not None:
                prepare(name)
            if self_timed:  # each call returns its own duration (e.g. measured elsewhere)
                dt = float(sum(fn() for _ in range(count)))
            else:
                t0 = timer()
                for _ in range(count):
                    fn()
                dt = timer() - t0
            samples[name].append(dt / count)
            spent += dt
        if budget is not None and spent > budget:
            break
    return samples


def median(values) -> float:
    return float(statistics.median(values))


def summary(samples: Mapping[str, list[float]], units: float = 1.0) -> dict[str, dict]:
    """Per name: ``median``, ``min`` and ``max`` seconds per unit (a call does ``units`` units)."""
    return {
        name: {"median": median(s) / units, "min": min(s) / units, "max": max(s) / units}
        for name, s in samples.items()
    }
