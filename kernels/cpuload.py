"""Other processes' CPU load on this process's cores, read from the OS.

Shared by the numba trainer's thread governor (which leaves the parallel path while
another process keeps a core busy) and ``auto``'s in-use check (which does not save
a verdict timed beside such a load).  No Numba here: ``auto`` reads it without
importing the numba backend.
"""

from __future__ import annotations

import os
import time


class LoadMeter:
    """CPU seconds used by other processes on the cores this process may run on.

    ``meter()`` returns a cumulative count (busy time of our cores from
    ``/proc/stat`` minus this process's CPU time); differences between two calls
    over the wall time between them give the others' load in cores.  Time of
    ``nice``d processes is not counted: the scheduler gives way to our threads over
    them.  ``available`` is False where ``/proc/stat`` cannot be read (not Linux):
    the governor then decides by timing alone.
    """

    def __init__(self, path: str = "/proc/stat"):
        self.path = path
        self.cpus = (
            {f"cpu{c}" for c in os.sched_getaffinity(0)}
            if hasattr(os, "sched_getaffinity")
            else set()
        )
        self.tick = 1.0 / os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 0.01
        self.available = self._busy() is not None

    def _busy(self) -> float | None:
        """Busy seconds of our cores since boot: user, system, irq, softirq, steal."""
        try:
            with open(self.path, "rb") as f:
                lines = f.read().decode().splitlines()
        except OSError:
            return None
        ticks = 0
        for line in lines:
            name, _, rest = line.partition(" ")
            if name in self.cpus:
                v = [int(x) for x in rest.split()[:8]]
                ticks += v[0] + v[2] + v[5] + v[6] + v[7]
        return ticks * self.tick if self.cpus else None

    def __call__(self) -> float:
        return (self._busy() or 0.0) - time.process_time()
