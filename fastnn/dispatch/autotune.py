"""The ``auto`` backend: per op and shape, the backend measured fastest on this machine.

The first time ``auto`` meets an op at a new *shape class* (op, dtype, activation
or loss name, and each dimension rounded up to a power of two), it times every
candidate backend on the actual arguments -- alternating candidates, after a
warm-up call that absorbs any JIT compile, on copies for in-place ops -- and
remembers the fastest.  Choices are kept in a JSON file per machine, so later
processes reuse them without measuring:

    $FASTNN_CACHE_DIR or $XDG_CACHE_HOME/fastnn or ~/.cache/fastnn
        autotune-<machine fingerprint>.json

``fastnn info --dispatch`` (:func:`describe`) prints the table.  Set
``FASTNN_AUTOTUNE=0`` to skip measuring (``auto`` then uses the default order:
``numba``, else ``numpy``).  The ``python`` backend is the reference, not a
candidate: its loops are orders of magnitude slower at every shape.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import platform
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from . import registry
from .checked import CheckedOps

#: Backends ``auto`` may choose, in order of preference when timings tie.
CANDIDATES: tuple[str, ...] = ("numba", "numpy")

#: Timed repetitions per candidate (alternating), after one warm-up call each.
#: The median of alternating runs is robust to the other tenants of a shared machine.
REPEATS = 7

#: Stop timing a shape class once a candidate has used this many seconds.
TIME_BUDGET_S = 0.5

#: Minimum duration of one timing sample (short calls are repeated to fill it).
SAMPLE_S = 2e-4

#: Only switch away from the preferred backend when another is clearly faster:
#: differences under 3% are within run-to-run noise here and not worth a switch.
MARGIN = 0.97

FORMAT_VERSION = 1


def _bucket(n: int) -> int:
    """Round a dimension up to a power of two: nearby shapes share one measurement."""
    return 1 if n <= 1 else 1 << (int(n) - 1).bit_length()


def shape_key(op: str, args) -> str:
    """The shape class of one call: ``op|dtype|dims|name``."""
    arrays = [a for a in args if isinstance(a, np.ndarray)]
    names = [a for a in args if isinstance(a, str)]
    dtype = arrays[0].dtype.name if arrays else "?"
    if op == "dense_forward":
        X, W = args[0], args[1]
        dims = (X.shape[0], W.shape[0], W.shape[1])
    elif op == "dense_backward":
        X, W = args[1], args[2]
        dims = (X.shape[0], W.shape[0], W.shape[1])
    elif op == "train_batches":
        Ws, X = args[0], args[3]
        arch = [X.shape[1], *(W.shape[1] for W in Ws)]
        dims = (args[6], *arch)  # batch size, then widths
        names = [*args[2], args[7], args[8]]
        dtype = X.dtype.name
    elif op in ("sgd_update", "adam_update"):
        dims = (args[0].size,)
    else:
        dims = arrays[0].shape if arrays else ()
    return f"{op}|{dtype}|{'x'.join(str(_bucket(d)) for d in dims)}|{','.join(names)}"


def _kernel_sources() -> list[str]:
    """Digests of the backends' source files: a kernel edit invalidates the choices
    (the package version alone does not change between development commits)."""
    import fastnn.kernels as kernels_pkg

    root = Path(kernels_pkg.__file__).parent
    return [hashlib.sha256(p.read_bytes()).hexdigest()[:16] for p in sorted(root.rglob("*.py"))]


def machine_fingerprint() -> str:
    """What the choices depend on: CPU, core count, the library versions and the
    kernels' sources."""
    import fastnn

    parts = [platform.machine(), platform.processor(), str(os.cpu_count())]
    try:
        with open("/proc/cpuinfo") as f:
            parts += sorted({line for line in f if line.startswith(("model name", "flags"))})
    except OSError:
        pass
    parts += [np.__version__, fastnn.__version__, *_kernel_sources()]
    try:
        import numba

        parts.append(numba.__version__)
    except ImportError:
        parts.append("no-numba")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def cache_path() -> Path:
    base = os.environ.get("FASTNN_CACHE_DIR")
    if not base:
        xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        base = os.path.join(xdg, "fastnn")
    return Path(base) / f"autotune-{machine_fingerprint()}.json"


class Table:
    """Measured choices: shape key -> {"backend": name, "seconds": {name: median}}."""

    def __init__(self, path: Path | None = None):
        self.path = path
        self.entries: dict[str, dict] = {}
        self._lock = threading.Lock()
        self._loaded = False

    def load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        path = self.path or cache_path()
        self.path = path
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            return  # no cache yet, or unreadable: measure afresh
        if isinstance(data, dict) and data.get("format") == FORMAT_VERSION:
            entries = data.get("entries", {})
            if isinstance(entries, dict):
                self.entries.update(entries)

    def get(self, key: str) -> str | None:
        with self._lock:
            self.load()
            entry = self.entries.get(key)
        return entry["backend"] if entry else None

    def put(self, key: str, backend: str, seconds: dict[str, float]) -> None:
        with self._lock:
            self.load()
            self.entries[key] = {"backend": backend, "seconds": seconds}
            self._save()

    def _save(self) -> None:
        """Write atomically (temp file + rename): a crash never leaves half a file."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            payload = {"format": FORMAT_VERSION, "entries": self.entries}
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".autotune-", suffix=".tmp")
            with os.fdopen(fd, "w") as f:
                json.dump(payload, f, indent=1, sort_keys=True)
            os.replace(tmp, self.path)
        except OSError:
            pass  # a read-only cache only costs re-measuring in the next process


_table = Table()


def _fresh_args(op: str, args):
    """Arguments safe to run repeatedly: in-place ops get private copies of their state."""
    if op in ("sgd_update", "adam_update"):
        return tuple(a.copy() if isinstance(a, np.ndarray) else a for a in args)
    if op == "train_batches":
        Ws, bs, acts, X, T, order, batch_size, head, opt, state, hyper, step = args
        # Time at most a few batches: enough to rank the backends, cheap to repeat.
        order = order[: 4 * batch_size]
        return (
            [W.copy() for W in Ws], [b.copy() for b in bs], acts, X, T, order, batch_size,
            head, opt, copy.deepcopy(state), hyper, step,
        )  # fmt: skip
    return args


def measure(op: str, args, candidates) -> dict[str, float]:
    """Median seconds per call of ``op`` on each candidate, timed alternately.

    A sample is ``number`` consecutive calls lasting at least :data:`SAMPLE_S`
    (calibrated on the fastest candidate's warm call, the same count for all):
    single calls of a few microseconds are dominated by timer and cache effects
    and ranked the backends wrongly.
    """
    impls = {name: registry.load_backend(name) for name in candidates}
    first = {}
    for name, impl in impls.items():
        getattr(impl, op)(*_fresh_args(op, args))  # warm-up: JIT compile or cache load
        call_args = _fresh_args(op, args)
        t0 = time.perf_counter()
        getattr(impl, op)(*call_args)
        first[name] = time.perf_counter() - t0
    number = max(1, min(1000, int(SAMPLE_S / max(min(first.values()), 1e-7))))
    times: dict[str, list[float]] = {name: [] for name in impls}
    spent = 0.0
    for _ in range(REPEATS):
        for name, impl in impls.items():
            fn = getattr(impl, op)
            call_args = _fresh_args(op, args)  # in-place updates may repeat on one copy
            t0 = time.perf_counter()
            for _ in range(number):
                fn(*call_args)
            dt = time.perf_counter() - t0
            times[name].append(dt / number)
            spent += dt
        if spent > TIME_BUDGET_S * len(impls):
            break
    return {name: float(np.median(ts)) for name, ts in times.items()}


def choose(seconds: dict[str, float]) -> str:
    preferred = next(iter(seconds))
    best = min(seconds, key=seconds.get)
    if seconds[best] < MARGIN * seconds[preferred]:
        return best
    return preferred


def _call_signature(op: str, args):
    """A cheap exact key for the per-process memo: op, dtype, the dimensions and names
    :func:`shape_key` classifies (so equal signatures always get the same choice).

    Much cheaper than :func:`shape_key` (no string formatting, only the arguments
    that matter), so a call whose exact shapes were seen before pays a few
    attribute reads and a dict lookup: on 2-microsecond ops that overhead decides
    whether ``auto`` keeps up with the backend it picked.
    """
    if op == "dense_forward":  # X, W, b, activation
        X = args[0]
        return (op, X.dtype.char, X.shape, args[1].shape[1], args[3])
    if op == "dense_backward":  # dY, X, W, Z, Y, activation
        X = args[1]
        return (op, X.dtype.char, X.shape, args[2].shape[1], args[5])
    if op == "sgd_update" or op == "adam_update":  # param first
        return (op, args[0].dtype.char, args[0].size)
    if op == "loss":  # name, Y, T
        return (op, args[0], args[1].dtype.char, args[1].shape)
    if op == "softmax_cross_entropy" or op == "sigmoid_cross_entropy":  # Z first
        return (op, args[0].dtype.char, args[0].shape)
    if op == "train_batches":
        Ws, X = args[0], args[3]
        return (op, X.dtype.char, X.shape[1], tuple(W.shape[1] for W in Ws), *args[6:9],
                tuple(args[2]))  # fmt: skip
    return (op, *((a.dtype.char, a.shape) if isinstance(a, np.ndarray) else a for a in args))


class AutoOps(CheckedOps):
    """Validating ops whose backend is chosen per call from the measured table."""

    def __init__(self, name, impl, table: Table | None = None):
        super().__init__(name, impl)
        self.table = table or _table
        self._memo: dict[tuple, object] = {}

    def _candidates(self) -> list[str]:
        return [c for c in CANDIDATES if registry.load_backend(c) is not None]

    def _impl_for(self, op: str, *args):
        if op == "train_batches" and len(args) < 12:
            return self.impl
        sig = _call_signature(op, args)
        impl = self._memo.get(sig)
        if impl is None:
            impl = self._choose(op, args)
            self._memo[sig] = impl
        return impl

    def _choose(self, op: str, args):
        candidates = self._candidates()
        if len(candidates) == 1 or os.environ.get("FASTNN_AUTOTUNE", "1") == "0":
            return self.impl
        key = shape_key(op, args)
        backend = self.table.get(key)
        if backend is None or backend not in candidates:
            seconds = measure(op, args, candidates)
            backend = choose(seconds)
            self.table.put(key, backend, seconds)
        return registry.load_backend(backend)


def describe() -> str:
    """The cached choices of ``auto`` on this machine, as a text table."""
    _table.load()
    lines = [f"auto dispatch table: {_table.path}"]
    if not _table.entries:
        lines.append("  (empty: choices are measured the first time auto meets an op and shape)")
        return "\n".join(lines)
    width = max(len(k) for k in _table.entries)
    lines.append(f"  {'op|dtype|shape class|names':<{width}}  choice  timings (median)")
    for key in sorted(_table.entries):
        entry = _table.entries[key]
        timing = ", ".join(f"{b}={s * 1e6:.1f}us" for b, s in sorted(entry["seconds"].items()))
        lines.append(f"  {key:<{width}}  {entry['backend']:<6}  {timing}")
    return "\n".join(lines)


def clear() -> None:
    """Forget all measured choices (in memory and on disk)."""
    with _table._lock:
        _table.load()
        _table.entries.clear()
        _table._save()
