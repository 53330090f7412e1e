"""What this machine is: CPU model and features, usable cores, load.

One place for the facts that ``auto``'s cache key (:mod:`.autotune`), the thread
controls (:mod:`.runtime`), ``fastnn info`` and ``fastnn bench`` all report, and
for fastnn's cache directory and the fingerprint of what is cached there.
Reads ``/proc/cpuinfo`` on Linux; elsewhere falls back to :mod:`platform`.
"""

from __future__ import annotations

import functools
import hashlib
import os
import platform
from pathlib import Path

#: CPU features worth reporting: the SIMD widths the BLAS and Numba kernels use.
REPORTED_FLAGS: tuple[str, ...] = ("avx2", "fma", "avx512f")


@functools.lru_cache(maxsize=1)
def cpuinfo_fields() -> tuple[tuple[str, str], ...]:
    """``(key, value)`` of each line of ``/proc/cpuinfo`` (empty where there is none)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
    except OSError:
        return ()
    fields = []
    for line in lines:
        key, sep, value = line.partition(":")
        if sep:
            fields.append((key.strip().lower(), value.strip()))
    return tuple(fields)


def _first(key: str) -> str | None:
    return next((v for k, v in cpuinfo_fields() if k == key), None)


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else what :mod:`platform` knows."""
    return _first("model name") or platform.processor() or platform.machine() or "unknown"


def cpu_flags() -> set[str]:
    """The CPU's feature flags (empty set when unknown)."""
    return set((_first("flags") or "").split())


def reported_flags() -> list[str]:
    """Those of :data:`REPORTED_FLAGS` this CPU has."""
    flags = cpu_flags()
    return [f for f in REPORTED_FLAGS if f in flags]


def logical_cores() -> int:
    return os.cpu_count() or 1


def usable_cores() -> int:
    """Cores this process may run on (its affinity mask, e.g. under ``taskset`` or a
    container's CPU set); the logical core count where the OS does not say."""
    try:
        return len(os.sched_getaffinity(0)) or logical_cores()
    except (AttributeError, OSError):
        return logical_cores()


def load_average() -> tuple[float, float, float] | None:
    """The 1, 5 and 15 minute load averages, or None where the OS has none."""
    try:
        return os.getloadavg()
    except (AttributeError, OSError):
        return None


def fingerprint_parts() -> list[str]:
    """The CPU's identity as text: architecture, model, core count and flags.

    Part of ``auto``'s cache key: a measured choice is only valid on the CPU it
    was measured on.
    """
    return [
        platform.machine(),
        platform.processor(),
        str(os.cpu_count()),
        f"model name: {cpu_model()}",
        "flags: " + " ".join(sorted(cpu_flags())),
    ]


def _source_digests(root: Path) -> list[str]:
    return [hashlib.sha256(p.read_bytes()).hexdigest()[:16] for p in sorted(root.rglob("*.py"))]


def kernel_sources() -> list[str]:
    """Digests of the backends' source files: a kernel edit invalidates what was
    measured or built for them (the package version alone does not change between
    development commits)."""
    import fastnn.kernels as kernels_pkg

    return _source_digests(Path(kernels_pkg.__file__).parent)


def package_sources() -> list[str]:
    """Digests of fastnn's own source files (front ends, dispatcher, tooling): the
    work around each kernel call, which an in-use timing includes."""
    import fastnn

    return _source_digests(Path(fastnn.__file__).parent)


def machine_fingerprint() -> str:
    """What ``auto``'s choices and the background-built trainers depend on: CPU, core
    count, the library versions and the kernels' sources."""
    import numpy as np

    import fastnn

    parts = [*fingerprint_parts(), np.__version__, fastnn.__version__, *kernel_sources()]
    try:
        import numba

        parts.append(numba.__version__)
    except ImportError:
        parts.append("no-numba")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def autotune_fingerprint() -> str:
    """What ``auto``'s measured choices depend on: :func:`machine_fingerprint` and
    fastnn's own sources.  A verdict measured in use times whole ``train_batches``
    calls, with whatever the front end did just before them (a check that leaves
    BLAS threads spinning slows the next call), so a front-end edit retires it too;
    the background-built trainers (:mod:`.coldstart`) depend on the kernels only."""
    parts = [machine_fingerprint(), *package_sources()]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def cache_dir() -> Path:
    """fastnn's cache directory: ``$FASTNN_CACHE_DIR``, else ``$XDG_CACHE_HOME/fastnn``,
    else ``~/.cache/fastnn``."""
    base = os.environ.get("FASTNN_CACHE_DIR")
    if not base:
        xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        base = os.path.join(xdg, "fastnn")
    return Path(base)
