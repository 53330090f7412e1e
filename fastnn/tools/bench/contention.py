"""The ``contention`` regime: training while another process keeps one core busy.

A multi-threaded trainer that synchronises its threads every phase waits, on a
busy machine, for the thread the OS has not scheduled.  This regime measures
the Fashion-MNIST MLP epoch (784-256-10, SGD, batch 256) on the ``numba``
backend with 1 thread and with the default thread count, and PyTorch when
installed, each in its own worker process (:mod:`.worker`): first quiet, then
beside a CPU hog -- a separate Python process spinning on one core for a bounded
time (:func:`cpu_hog`).  The figure of merit is the default-thread epoch over
the 1-thread epoch under the same contention.  ``numba-fixed`` keeps every batch on
the default thread count (the trainer's thread governor off:
``FASTNN_ADAPTIVE_THREADS=0``), to show what the governor saves.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time

#: The hog ends itself after this many seconds, whatever happens to the bench.
HOG_MAX_S = 600.0

#: A spin loop: one core's worth of work, no memory traffic, no threads.
HOG_CODE = (
    "import sys, time\n"
    "end = time.monotonic() + float(sys.argv[1])\n"
    "while time.monotonic() < end:\n"
    "    pass\n"
)

#: Runners: name -> (runner, threads, environment); ``None`` threads: the libraries' defaults.
RUNNERS: dict[str, tuple[str, int | None, dict]] = {
    "numba-1t": ("numba", 1, {}),
    "numba": ("numba", None, {}),
    "numba-fixed": ("numba", None, {"FASTNN_ADAPTIVE_THREADS": "0"}),
    "torch": ("torch", None, {}),
}

#: Samples per epoch (the issue's case: 30,000 rows) and in ``--quick`` mode.
SAMPLES = 30_000
QUICK_SAMPLES = 8192


@contextlib.contextmanager
def cpu_hog(seconds: float = HOG_MAX_S):
    """A process spinning on one core for at most ``seconds``; stopped on exit."""
    proc = subprocess.Popen([sys.executable, "-c", HOG_CODE, str(seconds)])
    try:
        time.sleep(0.2)  # running before the first sample
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def specs(quick: bool) -> dict[str, dict]:
    """Worker specs (see :class:`~.worker.Worker`) of the regime's runners."""
    samples = QUICK_SAMPLES if quick else SAMPLES
    return {
        name: {
            "runner": runner,
            "threads": threads,
            "optimizer": "sgd",
            "batch_size": 256,
            "samples": samples,
            "env": env,
        }  # fmt: skip
        for name, (runner, threads, env) in RUNNERS.items()
    }
