"""The ``auto`` backend: per op and shape, the backend measured fastest on this machine.

The first time ``auto`` meets an op at a new *shape class* (op, dtype, activation
or loss name, and each dimension rounded up to a power of two), it times every
candidate backend on the actual arguments and remembers the fastest:

* primitive ops: candidates alternate, after a warm-up call that absorbs any
  JIT compile, on copies for in-place ops, short calls repeated to fill a sample;
* ``train_batches`` (a whole training call): the steady state a ``fit`` sees,
  i.e. consecutive calls on one backend.  Each sample follows an untimed call of
  the same candidate (it absorbs the switch from the other candidate's thread
  pool, whose idle threads spin for a while), a call covers up to
  :data:`PROBE_BATCHES` batches (so per-call costs weigh as little as in ``fit``'s
  long calls), and the median of :data:`TRAINER_REPEATS` alternating rounds
  decides, with a margin.

A ``train_batches`` choice is also checked in use (:class:`TrainerWatch`): when
the chosen backend's time per batch during ``fit`` is clearly above what the
other candidate measured, the next calls try the other one, and the faster in
use is kept (and saved).

Choices are kept in a JSON file per machine, so later processes reuse them
without measuring:

    $FASTNN_CACHE_DIR or $XDG_CACHE_HOME/fastnn or ~/.cache/fastnn
        autotune-<machine fingerprint>.json

``fastnn info --dispatch`` (:func:`describe`) prints the table.  Set
``FASTNN_AUTOTUNE=0`` to skip measuring (``auto`` then uses the default order:
``numba``, else ``numpy``).  The ``python`` backend is the reference, not a
candidate: its loops are orders of magnitude slower at every shape.
"""

from __future__ import annotations

import collections
import copy
import json
import os
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from . import coldstart, machine, registry, timing
from .checked import CheckedOps, given_options

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

#: ``train_batches`` probe: batches per timed call (at most; fewer if the call has
#: fewer), rounds, and the minimum duration of a sample.
PROBE_BATCHES = 16
TRAINER_REPEATS = 3
TRAINER_SAMPLE_S = 5e-3
#: Idle time before each trainer sample: the candidates use different thread pools
#: (NumPy's OpenBLAS, Numba's), and a pool's idle threads keep spinning for a while
#: after its last call; a sample taken at once would pay for the other's spinning.
TRAINER_SETTLE_S = 0.1

#: In-use check of a ``train_batches`` choice: after this many calls, a median time
#: per batch above ``REVISIT_FACTOR`` times the other candidate's record starts a
#: trial of ``TRIAL_CALLS`` calls on that candidate.
REVISIT_AFTER = 2
REVISIT_FACTOR = 1.25
TRIAL_CALLS = 2
#: ... or when its own time is off its probe by that factor either way, unless the
#: other candidate's record is this many times the chosen one's time in use (tiny nets:
#: the probe's short calls overstate per-batch time, and the other is 20x slower).
TRIAL_PLAUSIBLE = 3.0
#: Calls on a backend right after the other one ran (or first in the process) that the
#: in-use check runs but does not count: they pay the other pool's idle threads still
#: spinning (NumPy's OpenBLAS beside Numba's pool on the same cores) and first touches.
SWITCH_CALLS = 1
#: Counted calls of the choice after which, no trial having started, the watch
#: settles: the probe predicted the use, and a later drift of a shared machine's
#: speed is no reason for a trial that would cost calls on the slower backend at an
#: arbitrary time.
CONFIRM_CALLS = REVISIT_AFTER + 1
#: Rounds of a trial at most: a trial faster in use than the choice, but by less than
#: the probe ranked them the other way, is run once more after as many calls of the
#: choice, and overturns it only if every round agrees (one slow stretch of a
#: shared machine cannot decide alone).
TRIAL_ROUNDS = 2
#: Other processes' load on our cores (in cores, averaged over the watch's counted
#: calls) at or above which an in-use verdict is not saved: it holds for this
#: process, and the next one checks again.  Times taken beside a busy core (the numba
#: trainer then runs one thread) say nothing about the machine's usual speeds, and a
#: saved verdict is trusted by every later process.
LOADED_CORES = 0.5

FORMAT_VERSION = 2


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


def cache_path() -> Path:
    """The autotune table of this machine and code (:func:`.machine.cache_dir`,
    :func:`.machine.autotune_fingerprint`)."""
    return machine.cache_dir() / f"autotune-{machine.autotune_fingerprint()}.json"


class Table:
    """Measured choices: shape key -> {"backend": name, "seconds": {name: median}}."""

    def __init__(self, path: Path | None = None):
        self.path = path
        self.entries: dict[str, dict] = {}
        self._mine: dict[str, dict] = {}  # entries this process measured
        self._lock = threading.Lock()
        self._loaded = False

    def load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        self.path = self.path or cache_path()
        self.entries.update(self._read())

    def _read(self) -> dict[str, dict]:
        """The entries in the file now (empty: no cache yet, unreadable, other format)."""
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        if isinstance(data, dict) and data.get("format") == FORMAT_VERSION:
            entries = data.get("entries", {})
            if isinstance(entries, dict):
                return entries
        return {}

    def entry(self, key: str) -> dict | None:
        """The stored entry of ``key`` (``backend``, ``seconds``, ``source``), or None."""
        with self._lock:
            self.load()
            entry = self.entries.get(key)
        return dict(entry) if isinstance(entry, dict) and "backend" in entry else None

    def get(self, key: str) -> str | None:
        entry = self.entry(key)
        return entry["backend"] if entry else None

    def put(self, key: str, backend: str, seconds: dict[str, float], source: str = "probe") -> None:
        """Store a choice; ``source`` says how it was measured (``probe`` or ``in use``)."""
        with self._lock:
            self.load()
            self.entries[key] = {"backend": backend, "seconds": seconds, "source": source}
            self._mine[key] = self.entries[key]
            self._save()

    def _save(self) -> None:
        """Write the table: the file's current entries with this process's own written
        over them, so processes sharing the table (the bench's workers, parallel
        jobs) keep each other's measurements."""
        self.entries = {**self.entries, **self._read(), **self._mine}
        self._write(self.entries)

    def clear(self) -> None:
        """Forget every entry, this process's and the file's."""
        with self._lock:
            self.load()
            self.entries.clear()
            self._mine.clear()
            self._write({})

    def _write(self, entries: dict) -> None:
        """Write atomically (temp file + rename): a crash never leaves half a file."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            payload = {"format": FORMAT_VERSION, "entries": entries}
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".autotune-", suffix=".tmp")
            with os.fdopen(fd, "w") as f:
                json.dump(payload, f, indent=1, sort_keys=True)
            os.replace(tmp, self.path)
        except OSError:
            pass  # a read-only cache only costs re-measuring in the next process


_table = Table()


def _n_batches(order, batch_size) -> int:
    return -(-len(order) // batch_size)


def _fresh_args(op: str, args, batches: int | None = None):
    """Arguments safe to run repeatedly: in-place ops get private copies of their state;
    ``train_batches`` also keeps only its first ``batches`` batches (all if None)."""
    if op in ("sgd_update", "adam_update"):
        return tuple(a.copy() if isinstance(a, np.ndarray) else a for a in args)
    if op == "train_batches":
        Ws, bs, acts, X, T, order, batch_size, head, opt, state, hyper, step = args
        if batches is not None:
            order = order[: batches * batch_size]
        return (
            [W.copy() for W in Ws], [b.copy() for b in bs], acts, X, T, order, batch_size,
            head, opt, copy.deepcopy(state), hyper, step,
        )  # fmt: skip
    return args


def _op_callables(op: str, args, impls: dict, batches: int | None = None):
    """Zero-argument calls of ``op`` per candidate on private arguments, and ``prepare``
    (gives a candidate fresh arguments; run untimed before each sample)."""
    current = {name: _fresh_args(op, args, batches) for name in impls}

    def prepare(name):
        current[name] = _fresh_args(op, args, batches)

    def call_of(name):
        fn = getattr(impls[name], op)
        return lambda: fn(*current[name])

    return {name: call_of(name) for name in impls}, prepare


def measure_impls(op: str, args, impls: dict, timer: Callable[[], float] = time.perf_counter,
                  sleep: Callable[[float], object] = time.sleep):  # fmt: skip
    """Median seconds per call of ``op`` on each candidate object in ``impls`` (name ->
    backend); per *batch* for ``train_batches``.  See the module docstring."""
    if op == "train_batches":
        return _measure_trainer(args, impls, timer, sleep)
    calls, prepare = _op_callables(op, args, impls)
    for name in impls:  # warm-up: JIT compile or cache load
        calls[name]()
    # A sample is ``number`` consecutive calls lasting at least SAMPLE_S (calibrated on
    # the fastest candidate, the same count for all): single calls of a few
    # microseconds are dominated by timer and cache effects and ranked backends wrongly.
    number = min(timing.calibrate(calls[name], SAMPLE_S, timer, cap=1000) for name in impls)
    samples = timing.sample_rounds(
        calls, REPEATS, number=number, warm=False, prepare=prepare,
        budget=TIME_BUDGET_S * len(impls), timer=timer,
    )  # fmt: skip
    return {name: timing.median(s) for name, s in samples.items()}


def _measure_trainer(args, impls: dict, timer, sleep) -> dict[str, float]:
    """Seconds per batch of ``train_batches`` per candidate, in its steady state."""
    batch_size = args[6]
    batches = min(PROBE_BATCHES, _n_batches(args[5], batch_size))
    calls, prepare = _op_callables("train_batches", args, impls, batches)
    number = 1
    for name in impls:  # warm-up: JIT compile or cache load, workspaces
        t0 = timer()
        calls[name]()
        if timer() - t0 < TRAINER_SAMPLE_S:  # short calls (tiny nets): repeat to fill a sample
            number = max(number, timing.calibrate(calls[name], TRAINER_SAMPLE_S, timer, cap=100))
    # settle, then rewarm: each sample follows an idle gap and an untimed call of its
    # own candidate, as in fit (where one backend runs call after call)
    samples = timing.sample_rounds(
        calls, TRAINER_REPEATS, number=number, warm=False, rewarm=True, prepare=prepare,
        settle=TRAINER_SETTLE_S, timer=timer, sleep=sleep,
    )  # fmt: skip
    return {name: timing.median(s) / batches for name, s in samples.items()}


def measure(op: str, args, candidates) -> dict[str, float]:
    """:func:`measure_impls` on the named backends."""
    return measure_impls(op, args, {name: registry.load_backend(name) for name in candidates})


def choose(seconds: dict[str, float], margin: float = MARGIN) -> str:
    """The first (preferred) candidate unless another is faster by more than ``margin``."""
    preferred = next(iter(seconds))
    best = min(seconds, key=seconds.get)
    if seconds[best] < margin * seconds[preferred]:
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


def _per_batch(calls) -> float:
    """Seconds per batch of ``(seconds, batches)`` calls taken together."""
    return sum(t for t, _ in calls) / sum(n for _, n in calls)


class TrainerWatch:
    """The in-use check of one ``train_batches`` choice (one shape class, one process).

    ``expected`` holds seconds per batch per candidate (the probe's, or the table's).
    :meth:`record` gets each call's measured time.  When the chosen backend's time
    per batch over its last :data:`REVISIT_AFTER` counted calls, taken together (the
    first :data:`SWITCH_CALLS` after each change of backend are not counted), is off
    its own expected time by more than :data:`REVISIT_FACTOR` either way (the probe
    did not predict the use, so it may have mispredicted the other candidate too;
    unless the other's record is :data:`TRIAL_PLAUSIBLE` times slower than this
    use), or exceeds that factor times
    the fastest other candidate's expected time, :meth:`backend_for_next_call` names
    that candidate for :data:`TRIAL_CALLS` calls; then the faster in use (by the
    margin, or by the probe's own ratio when the probe ranked the choice faster:
    :meth:`_needed`; a trial faster by the margin only runs a second round,
    :data:`TRIAL_ROUNDS`, and must then win every round: by the margin against a
    probe's choice, by :meth:`_needed` against one already verified in use) is kept
    for good.  When every other candidate's record is
    :data:`TRIAL_PLAUSIBLE` times this choice's time in use, the watch settles at its
    first check: no trial could pay, and calls are no longer timed.  A choice that
    holds over its first :data:`CONFIRM_CALLS` counted calls settles too.  At most one
    trial per watch: a choice that holds is never re-tried.  Deterministic: it only
    sees the times it is given.

    ``verified=False`` (a choice from a probe, not yet checked in use on this
    machine): the trial runs at the first check whenever the alternative is
    plausible.  The probe's short samples can misjudge one candidate while the
    other's use matches its own record, which no drift check can see; one trial per
    shape class and machine (its verdict is saved as ``in use``) settles it.

    :meth:`record` may also get the CPU seconds other processes took on our cores
    during the call; :attr:`loaded` says whether, over the counted calls, they kept
    :data:`LOADED_CORES` busy (the verdict is then not saved, see :class:`AutoOps`).
    """

    def __init__(self, backend: str, expected: dict[str, float], verified: bool = True):
        self.backend = backend
        self.verified = verified
        self.expected = dict(expected)
        self.recent: dict[str, collections.deque] = {}
        self.trial: str | None = None
        self.settled = not any(b != backend for b in expected)
        self.previous: str | None = None  # backend of the last call
        self.uncounted = 0  # calls since the last change of backend, up to SWITCH_CALLS
        self.confirmed = 0  # counted calls of the choice with no trial started
        self.rounds: list[float] = []  # trial / choice time per batch, per trial round
        self.retry: str | None = None  # the trial to run again after the choice's calls
        self.others = 0.0  # CPU seconds of other processes during the counted calls
        self.counted = 0.0  # wall seconds of the counted calls

    def backend_for_next_call(self) -> str:
        return self.trial or self.backend

    @property
    def loaded(self) -> bool:
        """Other processes kept :data:`LOADED_CORES` of our cores busy during the
        counted calls, on average."""
        return self.counted > 0 and self.others >= LOADED_CORES * self.counted

    def record(self, backend: str, seconds: float, n_batches: int, others: float = 0.0) -> bool:
        """Record one call (``others``: CPU seconds other processes took on our cores
        meanwhile); True when this call settled the choice (see :meth:`verdict`)."""
        if self.settled or n_batches <= 0:
            return False
        if backend != self.previous:
            self.previous, self.uncounted = backend, 0
        if self.uncounted < SWITCH_CALLS:
            self.uncounted += 1
            return False
        self.others += others
        self.counted += seconds
        window = max(REVISIT_AFTER, TRIAL_CALLS)
        self.recent.setdefault(backend, collections.deque(maxlen=window)).append(
            (seconds, n_batches)
        )
        if self.trial is None:
            self.confirmed += 1
            if self.retry is not None:  # between two rounds of a trial
                if self.confirmed >= REVISIT_AFTER:
                    self.trial, self.retry = self.retry, None
                return False
            self._maybe_start_trial()
            if self.trial is None and self.confirmed >= CONFIRM_CALLS:
                self.settled = True
            return False
        return self._maybe_end_trial()

    def _in_use(self, backend: str, calls: int) -> float | None:
        """Seconds per batch over the last ``calls`` counted calls, weighted by their
        batches: an epoch's short last call (a few batches, each paying the call's
        fixed costs) counts for its few batches, not as much as a whole call."""
        recent = list(self.recent.get(backend, ()))[-calls:]
        return _per_batch(recent) if len(recent) >= calls else None

    def _maybe_start_trial(self) -> None:
        current = self._in_use(self.backend, REVISIT_AFTER)
        if current is None:
            return
        others = {b: t for b, t in self.expected.items() if b != self.backend}
        alternative = min(others, key=others.get)
        # The probe did not predict this backend's use (either way: a probe that
        # overestimated both would hide a wrong choice), or the other now looks faster.
        own = self.expected.get(self.backend)
        drift = current / own if own else 1.0
        unpredicted = max(drift, 1 / drift) > REVISIT_FACTOR
        plausible = others[alternative] < TRIAL_PLAUSIBLE * current  # else a trial only costs
        slower = current > REVISIT_FACTOR * others[alternative]
        if (plausible and (unpredicted or not self.verified)) or slower:
            self.trial = alternative
        elif not plausible:
            # Far slower alternatives (numpy on tiny nets): no drift of this choice
            # short of many times its time would make a trial pay; stop timing calls.
            self.settled = True

    def _maybe_end_trial(self) -> bool:
        tried = self._in_use(self.trial, TRIAL_CALLS)
        if tried is None:
            return False
        ratio = tried / self._in_use(self.backend, REVISIT_AFTER)
        self.rounds.append(ratio)
        if MARGIN > ratio >= self._needed() and len(self.rounds) < TRIAL_ROUNDS:
            self.recent[self.trial].clear()  # the next round is judged on its own calls
            self.retry, self.trial, self.confirmed = self.trial, None, 0
            return False
        # A choice already verified in use on this machine yields only to evidence as
        # strong as its own record in every round; a probe's, to the margin.
        needed = self._needed() if self.verified else MARGIN
        if all(r < needed for r in self.rounds):
            self.backend = self.trial
        self.trial, self.settled = None, True
        return True

    def _needed(self) -> float:
        """The trial's time over the choice's, both in use, below which the trial wins.

        :data:`MARGIN`, or stricter when the probe ranked the choice faster: then the
        in-use evidence must be as strong as the probe's (a trial that overturns a
        1.5x probe must be 1.5x faster itself).  The trial's calls follow the choice's
        by a few seconds, and on a shared machine the speed of the whole machine can
        drift by more than a bare margin in between."""
        own, other = self.expected.get(self.backend), self.expected.get(self.trial)
        if own and other and other > own:
            return min(MARGIN, own / other)
        return MARGIN

    def verdict(self) -> dict[str, float]:
        """Seconds per batch measured in use, per backend tried (after the trial)."""
        return {b: _per_batch(ts) for b, ts in self.recent.items() if ts}


class AutoOps(CheckedOps):
    """Validating ops whose backend is chosen per call from the measured table.

    ``timer`` (the clock of the in-use check), ``meter`` (cumulative CPU seconds of
    other processes on our cores, :class:`~fastnn.kernels.cpuload.LoadMeter`; read
    only while a choice is checked in use) and ``loader`` (backend name -> backend
    object) can be replaced, e.g. by tests.
    """

    def __init__(self, name, impl, table: Table | None = None, *,
                 timer: Callable[[], float] = time.perf_counter, meter=None,
                 loader=None):  # fmt: skip
        super().__init__(name, impl)
        self.table = table or _table
        self.timer = timer
        self._meter = meter
        self.loader = loader or registry.load_backend
        self._memo: dict[tuple, object] = {}
        self._watches: dict[tuple, tuple[str, TrainerWatch]] = {}
        self._built: set = set()  # dtypes whose numba trainers are built
        self._trained: dict[str, int] = {}  # batches trained per backend

    def trained_batches(self) -> dict[str, int]:
        """How many batches ``train_batches`` trained on each backend since this object
        was made (``fastnn bench`` reports which code ``auto`` ran in its timed epochs)."""
        return dict(self._trained)

    def _candidates(self) -> list[str]:
        return [c for c in CANDIDATES if self.loader(c) is not None]

    def _method(self, op: str, args):
        """The chosen backend's bound method for this call (memoised per signature)."""
        sig = _call_signature(op, args)
        fn = self._memo.get(sig)
        if fn is None:
            fn = self._memo[sig] = getattr(self.loader(self._choose(op, args)[0]), op)
        return fn

    def _impl_for(self, op: str, *args):
        if op == "train_batches":
            return self.loader(self._watch(args)[1].backend_for_next_call())
        return self._method(op, args).__self__

    def _run(self, op: str, *args, **options):
        # A call seen before costs one signature and one lookup (a few hundred
        # nanoseconds: the whole price of auto on tiny ops); no further frames.
        # The choice depends on the op and shapes only, not on keyword options.
        if options:
            options = given_options(op, options)
        if op == "train_batches":
            return self._run_trainer(args, options)
        fn = self._memo.get(_call_signature(op, args)) or self._method(op, args)
        return fn(*args, **options)

    def _choose(self, op: str, args) -> tuple[str, dict[str, float]]:
        """(backend, seconds per candidate) for the shape class of this call."""
        candidates = self._candidates()
        if len(candidates) == 1 or os.environ.get("FASTNN_AUTOTUNE", "1") == "0":
            return self.impl.name, {}
        key = shape_key(op, args)
        entry = self.table.entry(key)
        if entry is None or entry["backend"] not in candidates:
            seconds = measure(op, args, candidates)
            entry = {"backend": choose(seconds), "seconds": seconds}
            self.table.put(key, entry["backend"], seconds)
        return entry["backend"], entry["seconds"]

    def _numba_trainers_building(self, dtype) -> bool:
        """Whether numba's trainers for ``dtype`` are still being built in the
        background (:mod:`.coldstart`): numpy trains meanwhile.  Once built, they
        stay built: later calls of that dtype cost one set lookup."""
        if dtype in self._built:
            return False
        if not coldstart.enabled():
            return False
        candidates = self._candidates()
        if "numba" not in candidates or "numpy" not in candidates:
            return False
        if coldstart.trainers_ready(dtype):
            self._built.add(dtype)
            return False
        return True

    def _watch(self, args) -> tuple[str, TrainerWatch]:
        """(shape key, in-use check) of this ``train_batches`` call's signature."""
        sig = _call_signature("train_batches", args)
        found = self._watches.get(sig)
        if found is None:
            backend, seconds = self._choose("train_batches", args)
            candidates = self._candidates()
            seconds = {b: t for b, t in seconds.items() if b in candidates}
            key = shape_key("train_batches", args)
            verified = (self.table.entry(key) or {}).get("source") == "in use"
            found = self._watches[sig] = (key, TrainerWatch(backend, seconds, verified))
        return found

    def _run_trainer(self, args, options):
        n = _n_batches(args[5], args[6])
        if self._numba_trainers_building(args[3].dtype):
            self._count("numpy", n)
            return self.loader("numpy").train_batches(*args, **options)
        key, watch = self._watch(args)
        backend = watch.backend_for_next_call()
        fn = self.loader(backend).train_batches
        self._count(backend, n)
        if watch.settled:
            return fn(*args, **options)
        meter = self.load_meter()
        t0, c0 = self.timer(), meter()
        out = fn(*args, **options)
        seconds, others = self.timer() - t0, meter() - c0
        if watch.record(backend, seconds, n, others) and not watch.loaded:
            # A verdict timed beside a busy core holds for this process only.
            self.table.put(key, watch.backend, watch.verdict(), source="in use")
        return out

    def load_meter(self) -> Callable[[], float]:
        """The other processes' CPU-time counter (made on first use; a constant where
        the OS does not tell: every verdict is then saved)."""
        if self._meter is None:
            from fastnn.kernels.cpuload import LoadMeter

            found = LoadMeter()
            self._meter = found if found.available else (lambda: 0.0)
        return self._meter

    def _count(self, backend: str, n: int) -> None:
        self._trained[backend] = self._trained.get(backend, 0) + n


def describe() -> str:
    """The cached choices of ``auto`` on this machine, as a text table."""
    _table.load()
    lines = [f"auto dispatch table: {_table.path}"]
    if not _table.entries:
        lines.append("  (empty: choices are measured the first time auto meets an op and shape)")
        return "\n".join(lines)
    width = max(len(k) for k in _table.entries)
    lines.append(
        f"  {'op|dtype|shape class|names':<{width}}  choice  timings (median; train_batches: "
        "per batch)"
    )
    for key in sorted(_table.entries):
        entry = _table.entries[key]
        timing_ = ", ".join(f"{b}={s * 1e6:.1f}us" for b, s in sorted(entry["seconds"].items()))
        source = " (in use)" if entry.get("source") == "in use" else ""
        lines.append(f"  {key:<{width}}  {entry['backend']:<6}  {timing_}{source}")
    return "\n".join(lines)


def entries() -> dict[str, dict]:
    """A copy of the cached choices: shape key -> ``backend``, ``seconds``, ``source``."""
    with _table._lock:
        _table.load()
        return copy.deepcopy(_table.entries)


def clear() -> None:
    """Forget all measured choices (in memory and on disk)."""
    _table.clear()
