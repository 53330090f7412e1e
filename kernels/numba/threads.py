"""How many threads the multi-threaded trainer runs on, chosen by throughput measured in use.

Each step of :func:`~.train_gemm.train_gemm_par` ends two parallel regions, and
each region waits for its slowest thread.  When another process keeps a core
busy, the OS deschedules one of our threads and the other waits for it: the
parallel path then runs several times slower than one thread would.  Neither the
thread count nor the machine's load is known in advance, so the trainer measures:

* a ``train_batches`` call runs its batches in *chunks* (about :data:`CHUNK_SECONDS`
  of work each) and times every chunk;
* the next chunk runs on the thread count with the better recent time per batch
  (:class:`Governor`), and the other count is tried again now and then: after
  :data:`FIRST_INTERVAL` chunks, the interval doubling (up to :data:`MAX_INTERVAL`)
  while the choice holds, and at once when the chosen count's time per batch
  worsens by :data:`WORSEN` on two chunks in a row (the load changed);
* where the OS tells (Linux), the CPU time *other* processes take on our cores is
  read at every chunk (:class:`LoadMeter`).  While they keep the equivalent of a
  core busy (:data:`BUSY_CORES`), the trainer runs one thread and does not probe
  the parallel path at all: a probe there would pay the very stall it tests for.
  When that load goes, the parallel path is probed at once.  Timing alone can only
  learn this by probing, and a probe beside a hog can stall for a whole scheduler
  slice.

Only the number of *active* threads changes (``numba.set_num_threads``); the batch is
always cut into the configured number of slices, so the numbers are the same,
bit for bit, whichever count runs a chunk.  ``FASTNN_ADAPTIVE_THREADS=0`` (read
when this module is imported) or ``GOVERNOR.enabled = False`` keeps every chunk on
the configured count.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field

from ..cpuload import LoadMeter

#: Wall time one chunk of batches aims at: long enough that the per-chunk cost
#: (a compiled call, timing, a thread-count switch) is negligible, short enough
#: that a wrong choice is corrected within a fraction of an epoch.
CHUNK_SECONDS = 0.05

#: Batches in a chunk before anything is measured for a shape.
FIRST_CHUNK = 4

#: Batches in a probe of the count not chosen (see :meth:`Record.chunk_batches`).
PROBE_BATCHES = 2

#: Chunks on the chosen count before the other is tried again, first and at most.
FIRST_INTERVAL, MAX_INTERVAL = 4, 64

#: The other count is taken when its time per batch is below ``1 - MARGIN_FEWER``
#: (to fewer threads) or ``1 - MARGIN_MORE`` (to more) of the chosen one's: a near
#: tie keeps the current choice.  Moving to more threads asks for more, because a
#: short probe of the parallel path on a busy machine can miss the rare long stalls
#: (a barrier waiting a whole scheduler slice for a descheduled thread) that make it
#: slow on average; the chosen count's figure is its mean over every chunk since
#: the last decision, stalls included.
MARGIN_FEWER, MARGIN_MORE = 0.1, 0.2

#: When the chosen count's mean time per batch since the last decision (two chunks
#: or more) exceeds this factor of its figure when chosen, the other count is tried
#: at once: the load changed.
WORSEN = 1.5

#: Other processes' load on our cores, in cores, at which the parallel path is left
#: (entering) and taken back (leaving: lower, so a load near the line does not flap).
#: A spinning process beside our two threads on two cores measures ~0.67 (the OS
#: shares 2 cores among 3 threads); with one thread of ours, ~1.0.
BUSY_CORES, FREE_CORES = 0.5, 0.3

#: The others' load is read over at least :data:`LOAD_MIN_S` of wall time and
#: averaged with time constant :data:`LOAD_TAU_S`: ``/proc/stat`` counts in ticks
#: (10 ms per core), so one short reading alone is too coarse to decide on.
LOAD_MIN_S, LOAD_TAU_S = 0.1, 0.2


@dataclass
class Record:
    """What the governor knows of one trainer shape.

    ``seconds[k]``: time per batch on ``k`` threads -- for the chosen count the mean
    since the last decision, for the other its latest probe (absent: not yet
    measured; the first chunk on each count is a warm-up and is not kept);
    ``current``: the chosen count; ``chosen_at``: its time per batch when chosen;
    ``interval``/``wait``: chunks between tries of the other count / left before
    the next; ``window``: (seconds, batches, chunks) on the chosen count since the
    last decision; ``load``: other processes' average load on our cores (cores;
    ``None``: not read yet); ``loaded``: that load takes a core from the parallel
    path, which is then neither chosen nor probed.
    """

    counts: tuple[int, int]
    current: int
    seconds: dict[int, float] = field(default_factory=dict)
    warm: set[int] = field(default_factory=set)
    chosen_at: float = 0.0
    interval: int = FIRST_INTERVAL
    wait: int = FIRST_INTERVAL
    window: tuple[float, int, int] = (0.0, 0, 0)
    load: float | None = None
    loaded: bool = False

    def other(self, k: int) -> int:
        return self.counts[1] if k == self.counts[0] else self.counts[0]

    def pick(self) -> int:
        """The thread count of the next chunk."""
        if self.loaded:
            return self.current
        unmeasured = [k for k in self.counts if k not in self.seconds]
        if unmeasured:
            return unmeasured[0]
        return self.other(self.current) if self.wait <= 0 else self.current

    def chunk_batches(self, k: int) -> int:
        """Batches in the next chunk, on ``k`` threads, from the current count's time
        per batch.  A probe of the other count (slower when last tried, or it would
        be the current one) is :data:`PROBE_BATCHES` long: a probe of the parallel
        path on a busy machine can hit a stall many times its normal time per batch."""
        per_batch = self.seconds.get(self.current)
        if not per_batch:
            return FIRST_CHUNK
        size = max(1, int(CHUNK_SECONDS / per_batch))
        return min(size, PROBE_BATCHES) if k != self.current and k in self.seconds else size

    def observe(self, k: int, seconds: float, batches: int) -> None:
        """Take a chunk of ``batches`` run in ``seconds`` on ``k`` threads and decide the next."""
        if k not in self.warm:
            self.warm.add(k)
            return
        if k == self.current:
            total, n, chunks = self.window
            self.window = (total + seconds, n + batches, chunks + 1)
            self.seconds[k] = self.window[0] / self.window[1]
            self.wait -= 1
            if chunks + 1 >= 2 and self.seconds[k] > WORSEN * self.chosen_at:
                self.wait = 0
            return
        self.seconds[k] = seconds / batches  # a probe of the other count
        self.decide()

    def note_load(self, cores: float, seconds: float) -> None:
        """Take other processes' load (``cores``, read over ``seconds``) into the
        average, and leave or take back the parallel path on it."""
        if self.load is None:
            self.load = cores
        else:
            self.load += (cores - self.load) * min(1.0, seconds / LOAD_TAU_S)
        if not self.loaded and self.load >= BUSY_CORES:
            self.loaded, self.current = True, min(self.counts)
            self.chosen_at = self.seconds.get(self.current, float("inf"))
            self.window = (0.0, 0, 0)
        elif self.loaded and self.load < FREE_CORES:
            self.loaded, self.wait = False, 0  # try the parallel path at once

    def decide(self) -> None:
        """The other count was just probed: keep or switch, and schedule the next try."""
        k = self.current
        other = self.other(k)
        margin = MARGIN_MORE if other > k else MARGIN_FEWER
        if self.seconds[other] < (1.0 - margin) * self.seconds[k]:
            self.current, self.interval = other, FIRST_INTERVAL
        else:
            self.interval = min(2 * self.interval, MAX_INTERVAL)
        self.wait = self.interval
        self.chosen_at = self.seconds[self.current]
        self.window = (0.0, 0, 0)


class Governor:
    """The thread count per trainer shape (:class:`Record`), shared by every call.

    ``clock`` is injectable for tests.  Thread-safe: concurrent calls update one
    record under a lock (their timings then include each other's load, which is the
    point).
    """

    def __init__(self, clock=time.perf_counter, enabled: bool | None = None, meter=None):
        self.clock = clock
        if meter is None:
            meter = LoadMeter()
        self.meter = meter if getattr(meter, "available", True) else None
        if enabled is None:
            enabled = os.environ.get("FASTNN_ADAPTIVE_THREADS", "1").strip() not in ("0", "")
        self.enabled = enabled
        self._records: dict[tuple, Record] = {}
        self._lock = threading.Lock()

    def record(self, key: tuple, n_threads: int) -> Record:
        with self._lock:
            rec = self._records.get((key, n_threads))
            if rec is None:
                rec = self._records[(key, n_threads)] = Record((n_threads, 1), n_threads)
            return rec

    def run(self, key: tuple, n_threads: int, n_batches: int, run_chunk) -> None:
        """Run batches ``0 .. n_batches`` as ``run_chunk(j0, j1, threads)`` calls.

        ``key`` identifies the shape (widths, batch size, dtype, optimizer);
        ``n_threads`` is the configured count (> 1)."""
        if not self.enabled:
            run_chunk(0, n_batches, n_threads)
            return
        rec = self.record(key, n_threads)
        read = self._reader()
        j = 0
        while j < n_batches:
            with self._lock:
                k = rec.pick()
                size = rec.chunk_batches(k)
            j1 = min(n_batches, j + size)
            t0 = self.clock()
            run_chunk(j, j1, k)
            elapsed = self.clock() - t0
            load = read()  # /proc/stat is read outside the lock
            with self._lock:
                rec.observe(k, elapsed, j1 - j)
                if load is not None:
                    rec.note_load(*load)
            j = j1

    def _reader(self):
        """A function that, called after each chunk, returns the others' load since its
        last reading as ``(cores, seconds)`` once :data:`LOAD_MIN_S` has passed, else
        None (always None without a meter)."""
        if self.meter is None:
            return lambda: None
        last = [self.clock(), self.meter()]

        def read():
            now = self.clock()
            if now - last[0] < LOAD_MIN_S:
                return None
            used = self.meter()
            seconds, others = now - last[0], used - last[1]
            last[:] = [now, used]
            return max(0.0, others / seconds), seconds

        return read

    def state(self) -> dict[tuple, dict]:
        """``{(key, n_threads): {"current", "seconds_per_batch"}}`` for reports."""
        with self._lock:
            return {
                key: {
                    "current": rec.current,
                    "seconds_per_batch": dict(rec.seconds),
                    "others_load": rec.load,
                }
                for key, rec in self._records.items()
            }

    def reset(self) -> None:
        with self._lock:
            self._records.clear()


#: The process-wide governor of the multi-threaded trainer.
GOVERNOR = Governor()
