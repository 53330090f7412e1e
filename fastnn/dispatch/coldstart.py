"""Cold start of ``auto``: numba's trainers build in the background while numpy trains.

The fused numba trainers (:mod:`fastnn.kernels.numba.train`) hold every option of
the contract in a few specializations per dtype (the BLAS loops build twice: plain,
and with the option paths), and compiling them the first time on a machine takes
minutes; Numba's on-disk cache then lets every later process
load them in a fraction of a second.  On that first use ``auto`` does not make the
user wait for the compiler:

1. the first ``train_batches`` call of a dtype whose trainers were never built
   starts one background process, ``python -m fastnn.dispatch.coldstart DTYPE``,
   which compiles them into Numba's cache and then writes a stamp file;
2. until that process has finished, ``auto`` trains on the ``numpy`` backend (the
   first batch is trained at once);
3. once it has finished, ``auto`` makes its usual choice, and the numba trainers
   load from the cache.

The stamp (``numba-trainers-<fingerprint>-<dtype>.ok`` next to the autotune table,
keyed by the same fingerprint: CPU, library versions, kernel sources) tells later
processes that the trainers are built, so they skip all of this.  A failed build
warns once (with the end of its error output) and ``auto`` then uses numba as
before, compiling in the calling process.  The build is not a pool: one process
per dtype, at most once per process and only while no stamp exists.  A build holds
a lock file (``flock``) beside the stamp while it runs: another process that finds
it held starts no build of its own (it trains on numpy until the stamp appears),
and a second build that starts anyway waits for the first and finds the stamp.
An explicit ``backend="numba"`` is never redirected: it compiles in the calling
process.
``FASTNN_BACKGROUND_BUILD=0`` turns this off.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path

try:
    import fcntl
except ImportError:  # not POSIX: no cross-process guard, each process may build
    fcntl = None

import numpy as np

from . import machine

_lock = threading.Lock()
_ready: set[str] = set()
_builds: dict[str, tuple[subprocess.Popen, object]] = {}
_fingerprint: list[str] = []


def enabled() -> bool:
    """Whether ``auto`` builds the numba trainers in the background (the default)."""
    return os.environ.get("FASTNN_BACKGROUND_BUILD", "1").strip() not in ("0", "")


def stamp_path(dtype) -> Path:
    """The stamp file saying the numba trainers for ``dtype`` are in Numba's cache."""
    if not _fingerprint:
        _fingerprint.append(machine.machine_fingerprint())
    name = f"numba-trainers-{_fingerprint[0]}-{np.dtype(dtype).name}.ok"
    return machine.cache_dir() / name


def lock_path(dtype) -> Path:
    """The lock file a running build of ``dtype``'s trainers holds (beside the stamp)."""
    return stamp_path(dtype).with_suffix(".lock")


@contextlib.contextmanager
def build_lock(dtype, wait: bool = True):
    """Hold the build lock of ``dtype``; yields False instead when another process
    holds it and ``wait`` is False.  Released when the holder exits, even if killed."""
    if fcntl is None:
        yield True
        return
    path = lock_path(dtype)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def building_elsewhere(dtype) -> bool:
    """Whether another process is building ``dtype``'s trainers now."""
    with build_lock(dtype, wait=False) as held:
        return not held


def command(dtype) -> list[str]:
    """The background build's command line."""
    return [sys.executable, "-m", "fastnn.dispatch.coldstart", np.dtype(dtype).name]


def launch(dtype) -> tuple[subprocess.Popen, object]:
    """Start the background build; returns the process and the file holding its stderr."""
    log = tempfile.TemporaryFile(mode="w+")
    proc = subprocess.Popen(
        command(dtype), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log
    )
    return proc, log


def trainers_ready(dtype) -> bool:
    """Whether the numba trainers for ``dtype`` load without compiling in this process.

    True when stamped, or once the background build has ended (a failed build warns
    and counts as ready: numba then compiles here, as without this module).  The
    first call that finds neither starts the build (:func:`launch`) and returns False.
    """
    key = np.dtype(dtype).name
    if key in _ready:
        return True
    with _lock:
        if key in _ready:
            return True
        if stamp_path(key).exists():
            _ready.add(key)
            return True
        build = _builds.get(key)
        if build is None:
            if not building_elsewhere(key):  # else numpy until that build's stamp
                _builds[key] = launch(key)
            return False
        proc, log = build
        if proc.poll() is None:
            return False
        if proc.returncode != 0:
            log.seek(0)
            tail = log.read()[-2000:]
            warnings.warn(
                f"fastnn: the background build of the numba trainers ({key}) failed "
                f"(exit code {proc.returncode}); they compile in this process instead.\n{tail}",
                RuntimeWarning,
                stacklevel=3,
            )
        log.close()
        _ready.add(key)
        return True


def wait_until_ready(dtype, poll: float = 0.5) -> None:
    """Block until the numba trainers for ``dtype`` are built (:func:`trainers_ready`),
    starting the background build if none runs; returns at once when this module is
    off (:func:`enabled`).  For measurements of ``auto``'s steady state (``fastnn
    bench``), which a build still in flight would turn into numpy's."""
    while enabled() and not trainers_ready(dtype):
        time.sleep(poll)


def reset() -> None:
    """Forget what this process knows (tests); running builds are left to finish."""
    with _lock:
        _ready.clear()
        _builds.clear()
        _fingerprint.clear()


def write_stamp(dtype) -> None:
    """Record that the numba trainers for ``dtype`` are in Numba's cache (atomic)."""
    path = stamp_path(dtype)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    os.close(fd)
    os.replace(tmp, path)


def build(dtype) -> None:
    """Compile (or load) the numba trainers for ``dtype``, then stamp them; under the
    build lock, and not at all if another build stamped them while this one waited."""
    from fastnn.kernels.numba import compile_trainers

    with build_lock(dtype):
        if stamp_path(dtype).exists():
            return
        compile_trainers(np.dtype(dtype))
        write_stamp(dtype)


if __name__ == "__main__":
    build(sys.argv[1])
