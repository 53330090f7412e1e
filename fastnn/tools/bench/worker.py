"""Runners in their own processes: one worker process per runner of an epoch case.

A peer measured in the bench's own process shares its thread pools, allocator
and caches with every other runner (a pool left spinning by one runner slows the
next).  So each runner of the ``epoch`` and ``contention`` regimes lives in a
worker process of its own, started once per case: it loads the data, builds
the runner and runs one untimed epoch (JIT compile or cache load, autotune,
first-touch allocation), then answers ``run`` lines on stdin with the seconds
one epoch took, timed inside the worker.  The parent asks the workers in turn,
alternating rounds (:func:`fastnn.dispatch.timing.sample_rounds`), idle in
between: one process per runner, reused across its repeats (a fresh process per
repeat would pay the imports, data loading and warm-up epoch again each time).

The ``sklearn`` regime's runners (``spec["workload"] == "sklearn"``) are one
``fit`` each (:func:`.estimators.sklearn_fit_call`), built the same way.

Protocol (one line each): the worker prints ``ready``, ``unavailable: REASON``
or ``error: MESSAGE`` once built; then ``run`` -> seconds as a float, ``info`` ->
a JSON object (what the runner reports about its last call, e.g. its test
score; ``{}`` if nothing), ``quit`` -> exit.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import subprocess
import sys
import tempfile
import time

from .workloads import Unavailable

#: Seconds a worker may take to import, load data, build and warm up.
START_TIMEOUT_S = 600


class WorkerFailed(RuntimeError):
    """A worker that could not build or warm up its runner; ``detail``: what it said."""

    def __init__(self, spec: dict, detail: str):
        super().__init__(f"bench worker {spec} failed: {detail}")
        self.detail = detail


def build(spec: dict):
    """The zero-argument callable a spec describes (see :class:`Worker`)."""
    from . import workloads

    if spec.get("workload") == "sklearn":
        from .estimators import sklearn_fit_call

        return sklearn_fit_call(
            spec["runner"], spec["data"], spec["hidden"], spec["epochs"], spec.get("rows")
        )

    runner, threads = spec["runner"], spec.get("threads")
    reason = (
        None if runner in ("numpy-loop", "torch") else workloads.backend_unavailable_reason(runner)
    )
    if reason:  # before loading the data
        raise Unavailable(reason)
    if threads is not None and runner != "torch":
        import fastnn

        fastnn.set_num_threads(threads)
    X, y, _ = workloads.training_data(spec.get("samples"))
    fn = workloads.epoch_call(runner, X, y, spec["optimizer"], spec["batch_size"],
                              regularized=spec.get("regularized", False))  # fmt: skip
    if threads is not None and runner == "torch":
        import torch

        torch.set_num_threads(threads)
    return fn


def serve(spec: dict, stdin=None, stdout=None) -> int:
    """The worker's loop: build, warm up, then time one call per ``run`` line.

    The protocol owns stdout: anything else the runner prints goes to stderr.
    """
    stdin = stdin or sys.stdin
    stdout = stdout or sys.stdout
    with contextlib.redirect_stdout(sys.stderr):
        try:
            fn = build(spec)
            for _ in range(spec.get("warmup", 1)):  # compile, autotune, first touch
                fn()
            getattr(fn, "mark_timed", lambda: None)()  # info() covers the timed calls
        except Unavailable as exc:
            print(f"unavailable: {exc}", file=stdout, flush=True)
            return 0
        except Exception as exc:  # noqa: BLE001 - reported to the parent, which raises it
            message = f"error: {type(exc).__name__}: {exc}".replace("\n", " ")
            print(message, file=stdout, flush=True)
            return 1
        print("ready", file=stdout, flush=True)
        for line in stdin:
            if line.strip() == "info":
                info = getattr(fn, "info", dict)()
                print(json.dumps(info), file=stdout, flush=True)
                continue
            if line.strip() != "run":
                break
            t0 = time.perf_counter()
            fn()
            print(repr(time.perf_counter() - t0), file=stdout, flush=True)
    return 0


class Worker:
    """A runner in its own process.  Calling it runs one epoch there and returns the
    seconds it took (measured in the worker).  ``spec``: ``runner`` (a fastnn backend,
    ``numpy-loop`` or ``torch``), ``optimizer``, ``batch_size``, ``samples`` (None:
    all), ``threads`` (None: the libraries' defaults), ``warmup`` (untimed epochs, 1
    by default); or, with ``workload: "sklearn"``, ``runner`` (a fastnn backend or
    ``sklearn``), ``data``, ``hidden``, ``epochs``, ``rows`` (one ``fit`` per call)."""

    def __init__(self, spec: dict, env: dict | None = None, wait: bool = True):
        """Start the process; ``wait``: until it is ready (else call :meth:`wait_ready`,
        so several workers import and warm up at the same time)."""
        self.spec = spec
        self.log = tempfile.TemporaryFile(mode="w+")  # stderr: never a full pipe
        cmd = [sys.executable, "-m", "fastnn.tools.bench.worker", json.dumps(spec)]
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, text=True,
            env=env or dict(os.environ),
        )  # fmt: skip
        if wait:
            self.wait_ready()

    def wait_ready(self) -> Worker:
        """Wait for the worker's ``ready`` (returns self); raises :class:`Unavailable`
        or :class:`WorkerFailed`, having closed the worker, when it reports otherwise."""
        ready, _, _ = select.select([self.proc.stdout], [], [], START_TIMEOUT_S)
        status = self.proc.stdout.readline().strip() if ready else "timed out starting"
        if status == "ready":
            return self
        detail = status or self._stderr()  # before close(), which deletes the log
        self.close()
        if status.startswith("unavailable:"):
            raise Unavailable(status.split(":", 1)[1].strip())
        raise WorkerFailed(self.spec, detail)

    def _stderr(self) -> str:
        self.log.seek(0)
        return self.log.read()[-2000:]

    def __call__(self) -> float:
        self.proc.stdin.write("run\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"bench worker {self.spec} died: {self._stderr()}")
        return float(line)

    def info(self) -> dict:
        """What the runner reports about its last call (e.g. ``{"score": 0.97}``)."""
        self.proc.stdin.write("info\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"bench worker {self.spec} died: {self._stderr()}")
        return json.loads(line)

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write("quit\n")
                self.proc.stdin.close()
                self.proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    return serve(json.loads(argv[0]))


if __name__ == "__main__":
    sys.exit(main())
