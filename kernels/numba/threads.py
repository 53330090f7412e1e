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
  worsens by :data:`WORSEN` (the load changed).

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

#: Wall time one chunk of batches aims at: long enough that the per-chunk cost
#: (a compiled call, timing, a thread-count switch) is negligible, short enough
#: that a wrong choice is corrected within a fraction of an epoch.
CHUNK_SECONDS = 0.02

#: Batches in a chunk before anything is measured for a shape.
FIRST_CHUNK = 4

#: Chunks on the chosen count before the other is tried again, first and at most.
FIRST_INTERVAL, MAX_INTERVAL = 4, 64

#: The other count is taken when its time per batch is below ``1 - MARGIN`` of the
#: chosen one's: a near tie keeps the current choice (no flapping on noise).
MARGIN = 0.05

#: A chosen count whose time per batch grows by this factor over its value when it
#: was chosen gets the other count tried at once.
WORSEN = 1.5


@dataclass
class Record:
    """What the governor knows of one trainer shape.

    ``seconds[k]``: the latest time per batch on ``k`` threads (absent: not yet
    measured; the first chunk on ``k`` is a warm-up and is not kept);
    ``current``: the chosen count; ``chosen_at``: its time per batch when chosen;
    ``interval``/``wait``: chunks between tries of the other count / left before the next.
    """

    counts: tuple[int, int]
    current: int
    seconds: dict[int, float] = field(default_factory=dict)
    warm: set[int] = field(default_factory=set)
    chosen_at: float = 0.0
    interval: int = FIRST_INTERVAL
    wait: int = FIRST_INTERVAL

    def other(self, k: int) -> int:
        return self.counts[1] if k == self.counts[0] else self.counts[0]

    def pick(self) -> int:
        """The thread count of the next chunk."""
        unmeasured = [k for k in self.counts if k not in self.seconds]
        if unmeasured:
            return unmeasured[0]
        return self.other(self.current) if self.wait <= 0 else self.current

    def chunk_batches(self) -> int:
        """Batches in the next chunk, from the current count's time per batch."""
        per_batch = self.seconds.get(self.current)
        if not per_batch:
            return FIRST_CHUNK
        return max(1, int(CHUNK_SECONDS / per_batch))

    def observe(self, k: int, per_batch: float) -> None:
        """Take the time per batch of a chunk run on ``k`` threads and decide the next."""
        if k not in self.warm:
            self.warm.add(k)
            return
        first = k not in self.seconds
        self.seconds[k] = per_batch
        if first and len(self.seconds) < len(self.counts):
            return
        if k == self.current and not first:
            self.wait -= 1
            if per_batch > WORSEN * self.chosen_at:
                self.wait = 0
            return
        self.decide()

    def decide(self) -> None:
        """Both counts measured just now or recently: keep or switch, and schedule the next try."""
        k = self.current
        other = self.other(k)
        if self.seconds[other] < (1.0 - MARGIN) * self.seconds[k]:
            self.current, self.interval = other, FIRST_INTERVAL
        else:
            self.interval = min(2 * self.interval, MAX_INTERVAL)
        self.wait = self.interval
        self.chosen_at = self.seconds[self.current]


class Governor:
    """The thread count per trainer shape (:class:`Record`), shared by every call.

    ``clock`` is injectable for tests.  Thread-safe: concurrent calls update one
    record under a lock (their timings then include each other's load, which is the
    point).
    """

    def __init__(self, clock=time.perf_counter, enabled: bool | None = None):
        self.clock = clock
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
        j = 0
        while j < n_batches:
            with self._lock:
                k, size = rec.pick(), rec.chunk_batches()
            j1 = min(n_batches, j + size)
            t0 = self.clock()
            run_chunk(j, j1, k)
            elapsed = self.clock() - t0
            with self._lock:
                rec.observe(k, elapsed / (j1 - j))
            j = j1

    def state(self) -> dict[tuple, dict]:
        """``{(key, n_threads): {"current", "seconds_per_batch"}}`` for reports."""
        with self._lock:
            return {
                key: {"current": rec.current, "seconds_per_batch": dict(rec.seconds)}
                for key, rec in self._records.items()
            }

    def reset(self) -> None:
        with self._lock:
            self._records.clear()


#: The process-wide governor of the multi-threaded trainer.
GOVERNOR = Governor()
