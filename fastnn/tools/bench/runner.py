"""``fastnn bench``: fastnn's performance regimes side by side.

Every figure is a ratio taken in the same run: the runners of one case are timed
in alternating rounds (a new order each round) by the shared timing loop
(:func:`fastnn.dispatch.timing.sample_rounds`), each after an untimed warm-up
call that absorbs JIT compilation, autotuning and first-touch allocation, and
each reported as the median over the repeats with its spread (min-max).
Regimes (the targets come from the performance issues and are checked in the
``targets`` column):

* ``ops`` -- ``dense_forward`` / ``dense_backward`` per activation at batch
  {1, 32, 256, 1024} x widths {16->16, 128->128, 784->256, 256->10, 1024->1024},
  float32 and float64, plus the losses and optimizer updates, on the ``python``
  (small shapes only), ``numpy``, ``numba`` and ``auto`` backends, in this process.
* ``epoch`` -- one Fashion-MNIST epoch of the 784-256-10 ReLU MLP with softmax
  cross-entropy, float32, through ``Sequential.fit`` (SGD at batch 256, Adam at
  batch 32), against a plain hand-written NumPy loop, PyTorch CPU when installed,
  and the GEMM floor: the epoch's matrix-product FLOPs divided by this machine's
  float32 ``A @ A`` (n=2048) rate, measured in the same run.  Each runner runs
  in its own worker process (:mod:`.worker`), after 0.3 s of idle per sample.
* ``tiny`` -- full-batch training steps of the tutorial nets (XOR 2-8-1, coffee
  2-3-1, the (10, 15, 5) sigmoid net on 100 samples), per step, in float64 (the
  NumPy tutorials' dtype) for every runner, fastnn's backends and PyTorch alike.
* ``features`` -- the SGD and Adam epochs on ``numba``, plain and with Dropout
  and L2 (the fused training options), each in its own worker process.
* ``contention`` -- the SGD epoch on ``numba`` with 1 thread and the default
  thread count (and PyTorch), quiet and beside a process spinning on one core
  (:mod:`.contention`).
* ``sklearn`` -- one ``fit`` of ``fastnn.sklearn.MLPClassifier`` (``numba`` and
  ``numpy``, float32) against scikit-learn's ``MLPClassifier`` on float32 input,
  same hyper-parameters, every epoch run, test accuracy reported per runner
  (:mod:`.estimators`), each runner in its own worker process; plus the GEMM
  floor of the fit's epochs.
* ``dask`` -- ``fastnn.dask.predict`` on 2 single-thread worker processes against
  in-memory ``predict`` on 1 and 2 threads, time per row (:mod:`.dask_regime`);
  ``n/a`` without the ``dask`` extra.

The plain-text tables are the default output (:mod:`.text`); ``--json FILE``
writes the raw numbers and ``--html DIR`` a self-contained report (:mod:`.report`).
The workloads (:mod:`.workloads`) are shared with the pytest-benchmark and asv
suites in ``benchmarks/`` (and importable from here, as before).
"""

from __future__ import annotations

import datetime
import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from fastnn.dispatch import autotune, machine, timing

from . import contention, dask_regime
from .estimators import (
    AUTO_BATCH,
    SKLEARN_CASES,
    SKLEARN_RUNNERS,
    fit_dims,
    fit_flops,
    sklearn_data,
)
from .fmt import fmt_time
from .worker import Worker, WorkerFailed
from .workloads import (  # noqa: F401 - re-exported: benchmarks/ import them from here
    ACTIVATIONS,
    BACKENDS,
    EPOCH_CASES,
    EPOCH_SETTLE_S,
    LOSS_SHAPES,
    MLP_LAYERS,
    OP_BATCHES,
    OP_WIDTHS,
    OPTIMIZER_SHAPES,
    PYTHON_MAX_MACS,
    QUICK_ACTIVATIONS,
    QUICK_BATCHES,
    QUICK_EPOCH_SAMPLES,
    QUICK_WIDTHS,
    REGULARIZED_DROPOUT,
    REGULARIZED_L2,
    TINY_NETS,
    TINY_SETTLE_S,
    TINY_STEPS,
    TORCH_THREADS,
    TinyNet,
    Unavailable,
    backend_unavailable_reason,
    dense_flops,
    epoch_call,
    epoch_flops,
    fastnn_mlp,
    numpy_loop_epoch,
    op_call,
    python_ok,
    shape_floor,
    tiny_call,
    tiny_data,
    torch_epoch,
    training_data,
)

#: Untimed epochs before ``auto``'s samples: its trainer choice settles within its
#: first calls (the probe, then at most one in-use trial of the other backend, each
#: side's first call uncounted, see :class:`fastnn.dispatch.autotune.TrainerWatch`);
#: the bench measures the steady state.  An epoch is at least one call.
AUTO_WARMUP_EPOCHS = (
    autotune.SWITCH_CALLS + autotune.CONFIRM_CALLS
    + autotune.TRIAL_ROUNDS * (autotune.SWITCH_CALLS + autotune.TRIAL_CALLS)
    + (autotune.TRIAL_ROUNDS - 1) * (autotune.SWITCH_CALLS + autotune.REVISIT_AFTER)
)  # fmt: skip

#: Every regime ``fastnn bench`` knows, in the order they run.
REGIMES: tuple[str, ...] = (
    "ops", "epoch", "tiny", "features", "contention", "sklearn", "dask"
)  # fmt: skip
#: Regimes run when none are named.
DEFAULT_REGIMES: tuple[str, ...] = ("ops", "epoch", "tiny")

#: ``auto`` runs one of the two backends: it must not be slower than the faster one.
_AUTO_BEST = ("auto", "best", 1.05, "auto <= 1.05x best backend")

#: scikit-learn: >= 5x faster on the overhead-bound fits, <= 1.3x the GEMM floor on the others.
_SKLEARN_OVERHEAD = (("numba", "sklearn", 0.2, "numba <= 0.2x scikit-learn (>= 5x faster)"),)
_SKLEARN_MATRIX = (("numba", "gemm-floor", 1.3, "numba <= 1.3x GEMM floor"),)

#: Targets of the performance issues: (regime, runner, reference, max time ratio, label).
#: A reference ``"best"`` means the fastest of the ``numpy`` and ``numba`` backends.
TARGETS: dict[str, tuple[tuple[str, str, float, str], ...]] = {
    "ops": (
        ("numba", "numpy", 1 / 0.95, "numba >= 0.95x numpy speed"),
        ("auto", "best", 1 / 0.95, "auto >= 0.95x best backend"),
    ),
    "epoch:sgd-b256": (
        ("numba", "torch", 0.65, "numba <= 0.65x torch"),
        ("numba", "numpy-loop", 0.85, "numba <= 0.85x numpy loop"),
        ("numba", "gemm-floor", 1.3, "numba <= 1.3x GEMM floor"),
        ("numpy", "numpy-loop", 1.1, "numpy backend <= 1.1x numpy loop"),
        _AUTO_BEST,
    ),
    "epoch:adam-b32": (("numba", "torch", 0.6, "numba <= 0.6x torch"), _AUTO_BEST),
    "tiny:xor-2-8-1": (
        ("numba", "numpy", 1 / 20, "numba <= 1/20 numpy"),
        ("numba", "torch", 1 / 200, "numba <= 1/200 torch"),
        _AUTO_BEST,
    ),
    "tiny:coffee-2-3-1": (
        ("numba", "numpy", 1 / 20, "numba <= 1/20 numpy"),
        ("numba", "torch", 1 / 200, "numba <= 1/200 torch"),
        _AUTO_BEST,
    ),
    "tiny:net-10-15-5": (
        ("numba", "numpy", 1 / 5, "numba <= 1/5 numpy"),
        ("numba", "torch", 1 / 50, "numba <= 1/50 torch"),
        _AUTO_BEST,
    ),
    **{
        f"features:{o}-b256": (
            ("numba-dropout-l2", "numba", 1.15, "Dropout + L2 epoch <= 1.15x the plain epoch"),
        )
        for o in ("sgd", "adam")
    },
    "contention:sgd-b256 hog": (
        ("numba", "numba-1t", 1.15, "numba default threads <= 1.15x 1 thread, one core busy"),
    ),
    "contention:sgd-b256 quiet": (
        ("numba", "numba-fixed", 1.05, "numba (governed) <= 1.05x fixed threads, quiet"),
    ),
    **{
        f"sklearn:{c.name}": _SKLEARN_OVERHEAD if c.bound == "overhead" else _SKLEARN_MATRIX
        for c in SKLEARN_CASES
    },
    # time ratios: a rate >= 1.7x the reference's is a time per row <= 1/1.7 of it
    "dask:predict": (
        ("dask", "memory-1t", 1 / 1.7, "dask >= 1.7x the 1-thread in-memory rate"),
        ("dask", "memory-2t", 1 / 0.85, "dask >= 0.85x the 2-thread in-memory rate"),
    ),
}


# ---------------------------------------------------------------------------
# Measurement
# ---------------------------------------------------------------------------


@dataclass
class Case:
    """One workload measured on several runners.

    ``seconds[runner]`` is the median time of one unit (one call, one epoch, one
    step), ``spread[runner]`` its ``[min, max]`` over the repeats;
    ``status[runner]`` is ``"ok"`` or ``"n/a: reason"``; ``info[runner]`` what the
    runner reported about its work (the ``sklearn`` regime: test ``score``, ``n_iter``).
    """

    regime: str
    name: str
    params: dict
    flops: float | None = None
    seconds: dict[str, float] = field(default_factory=dict)
    spread: dict[str, list[float]] = field(default_factory=dict)
    status: dict[str, str] = field(default_factory=dict)
    info: dict[str, dict] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.regime}:{self.name}"

    def record(self, stats: dict[str, dict]) -> None:
        """Store :func:`fastnn.dispatch.timing.summary` results."""
        for runner, s in stats.items():
            self.seconds[runner] = s["median"]
            self.spread[runner] = [s["min"], s["max"]]
            self.status[runner] = "ok"

    def to_json(self) -> dict:
        return {
            "regime": self.regime,
            "name": self.name,
            "params": self.params,
            "flops": self.flops,
            "seconds": self.seconds,
            "spread": self.spread,
            "status": self.status,
            "info": self.info,
            "targets": evaluate_targets(self),
        }


def measure_alternating(
    calls: dict[str, Callable[[], object]],
    repeats: int,
    min_time: float,
    units: float = 1.0,
    settle: float = 0.0,
    self_timed: bool = False,
) -> dict[str, dict]:
    """Median, min and max seconds per unit of each callable, timed in rounds.

    Each callable is called once untimed (warm-up: JIT compile, autotune, first
    allocation), then (if ``min_time > 0``) timed once to choose how many calls make
    one sample of at least ``min_time`` seconds; then ``repeats`` samples are taken
    in rounds (:func:`fastnn.dispatch.timing.sample_rounds`).  ``units`` is the
    number of units (e.g. steps) one call performs.  ``settle`` seconds of idle
    precede each sample: thread pools left spin-waiting by the previous runner
    (OpenBLAS's idle threads spin about 0.1 s) then no longer share the cores
    with the next one.  ``self_timed``: the callables return their own durations
    (runners in worker processes, already warm).
    """
    number = dict.fromkeys(calls, 1)
    if not self_timed:
        for fn in calls.values():
            fn()
        if min_time > 0:  # long units (epochs) skip the calibration call: one call per sample
            number = {name: timing.calibrate(fn, min_time) for name, fn in calls.items()}
    samples = timing.sample_rounds(
        calls, repeats, number=number, warm=False, settle=settle, self_timed=self_timed
    )
    return timing.summary(samples, units)


def gemm_rate(dtype, n: int = 2048, repeats: int = 5) -> float:
    """This machine's matrix-product rate in FLOP/s: median of ``A @ A`` for ``A: (n, n)``."""
    A = np.random.default_rng(0).standard_normal((n, n)).astype(dtype)
    A @ A  # warm-up: BLAS threads start, pages touched
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        A @ A
        times.append(time.perf_counter() - t0)
    return 2.0 * n**3 / statistics.median(times)


def _build_all(case: Case, builders: dict[str, Callable[[], Callable]]) -> dict[str, Callable]:
    """Each runner's callable; unavailable runners are recorded as ``n/a`` in ``case``."""
    calls = {}
    for runner, build in builders.items():
        try:
            calls[runner] = build()
        except Unavailable as exc:
            case.status[runner] = f"n/a: {exc}"
    return calls


def _close_all(calls: dict) -> None:
    for fn in calls.values():
        close = getattr(fn, "close", None)
        if close is not None:
            close()


def _run_case(case: Case, builders, repeats, min_time, units=1.0, settle=0.0, self_timed=False,
              collect_info=False):  # fmt: skip
    """Build each runner's callable (recording ``n/a`` for unavailable ones) and measure.
    ``collect_info``: ask each (worker) runner for its ``info()`` before closing it."""
    calls = _build_all(case, builders)
    try:
        if calls:
            case.record(measure_alternating(calls, repeats, min_time, units, settle, self_timed))
            if collect_info:
                case.info.update({r: fn.info() for r, fn in calls.items()})
    except Unavailable as exc:  # raised lazily on first call by some runners
        for runner in calls:
            case.status[runner] = f"n/a: {exc}"
    finally:
        _close_all(calls)
    return case


def _log_case(log, case: Case) -> None:
    log(f"  {case.name}: " + ", ".join(f"{k} {fmt_time(v)}" for k, v in case.seconds.items()))


# --- ops ----------------------------------------------------------------------


def op_cases(quick: bool) -> list[tuple[str, str | None, tuple[int, ...], str]]:
    """(op, name, shape, dtype) of the op regime."""
    batches = QUICK_BATCHES if quick else OP_BATCHES
    widths = QUICK_WIDTHS if quick else OP_WIDTHS
    acts = QUICK_ACTIVATIONS if quick else ACTIVATIONS
    dtypes = ("float32",) if quick else ("float32", "float64")
    cases = []
    for dtype in dtypes:
        for op in ("dense_forward", "dense_backward"):
            for act in acts:
                for n_in, n_out in widths:
                    for n in batches:
                        cases.append((op, act, (n, n_in, n_out), dtype))
        for shape in LOSS_SHAPES[:1] if quick else LOSS_SHAPES:
            cases.append(("softmax_cross_entropy", None, shape, dtype))
            cases.append(("sigmoid_cross_entropy", None, shape, dtype))
            for loss in ("mse",) if quick else ("mse", "binary_crossentropy",
                                                "categorical_crossentropy"):  # fmt: skip
                cases.append(("loss", loss, shape, dtype))
        for shape in OPTIMIZER_SHAPES[:2] if quick else OPTIMIZER_SHAPES:
            cases.append(("sgd_update", None, shape, dtype))
            cases.append(("adam_update", None, shape, dtype))
    return cases


def _op_label(op, name, shape, dtype) -> str:
    dims = "x".join(map(str, shape))
    if op in ("dense_forward", "dense_backward"):
        n, n_in, n_out = shape
        dims = f"{n}x{n_in}->{n_out}"
    label = f"{op}[{name}]" if name else op
    return f"{label} {dims} {dtype}"


def run_ops(quick: bool, log=print) -> list[Case]:
    repeats, min_time = (3, 0.01) if quick else (5, 0.03)
    cases = []
    for op, name, shape, dtype in op_cases(quick):
        flops = dense_flops(op, *shape) if op.startswith("dense") else None
        case = Case("ops", _op_label(op, name, shape, dtype), {
            "op": op, "name": name, "shape": list(shape), "dtype": dtype,
        }, flops)  # fmt: skip
        builders = {}
        for backend in BACKENDS:
            if backend == "python" and not python_ok(op, shape):
                case.status[backend] = "n/a: python backend measured at small shapes only"
                continue
            builders[backend] = lambda b=backend, a=(op, dtype, shape, name): op_call(b, *a)
        _run_case(case, builders, repeats, min_time)
        cases.append(case)
        _log_case(log, case)
    return cases


# --- epochs, contention, tiny nets ---------------------------------------------


def _env(spec: dict) -> dict:
    """The worker's environment: ours plus the spec's ``env`` entries."""
    return dict(os.environ, **spec.get("env", {}))


def _worker_builders(specs: dict[str, dict], together=False) -> dict[str, Callable[[], Worker]]:
    """A builder per runner.  ``together``: start every worker process now, so their
    imports and warm-ups overlap (the builders then wait for each one; a worker that
    fails to start is ``n/a`` with its message); not for runners whose warm-up
    measures something (``auto``'s probes)."""
    if not together:
        return {name: (lambda s=spec: Worker(s, env=_env(s))) for name, spec in specs.items()}

    def ready(w: Worker) -> Worker:
        try:
            return w.wait_ready()
        except WorkerFailed as exc:  # every started worker is waited for, none leaks:
            raise Unavailable(exc.detail) from exc  # a failing runner shows as n/a

    started = {name: Worker(spec, env=_env(spec), wait=False) for name, spec in specs.items()}
    return {name: (lambda w=w: ready(w)) for name, w in started.items()}


def epoch_spec(runner: str, optimizer: str, batch_size: int, samples: int | None) -> dict:
    """The worker spec (:class:`~.worker.Worker`) of one epoch-regime runner: ``auto``
    warms up for :data:`AUTO_WARMUP_EPOCHS`, the others for one epoch."""
    warmup = AUTO_WARMUP_EPOCHS if runner == "auto" else 1
    return {"runner": runner, "optimizer": optimizer, "batch_size": batch_size,
            "samples": samples, "warmup": warmup}  # fmt: skip


def run_epochs(quick: bool, gemm32: float, log=print) -> list[Case]:
    n_samples = QUICK_EPOCH_SAMPLES if quick else None
    _, _, source = training_data(16)  # which data the workers will load
    n_rows = n_samples or 60_000
    log(f"  data: {source}, {n_rows} samples, each runner in its own process")
    cases = []
    for name, optimizer, batch_size in EPOCH_CASES:
        flops = epoch_flops(n_rows)
        case = Case("epoch", name, {
            "optimizer": optimizer, "batch_size": batch_size, "samples": n_rows,
            "layers": list(MLP_LAYERS), "dtype": "float32", "data": source,
            "isolation": "one worker process per runner",
        }, flops)  # fmt: skip
        runners = ["numba", "numpy", "auto", "numpy-loop", "torch"]
        specs = {r: epoch_spec(r, optimizer, batch_size, n_samples) for r in runners}
        # Epochs measure training, not pool switches (alternate_pools.py measures those):
        # each sample starts once the previous runner's idle threads stopped spinning.
        # collect_info: which backend's trainer auto ran in its timed epochs
        _run_case(case, _worker_builders(specs), 3, 0.0, settle=EPOCH_SETTLE_S, self_timed=True,
                  collect_info=True)  # fmt: skip
        case.seconds["gemm-floor"] = flops / gemm32
        case.status["gemm-floor"] = "ok"
        case.seconds["gemm-shapes"] = shape_floor(n_rows, MLP_LAYERS, 1, batch_size)
        case.status["gemm-shapes"] = "ok"
        cases.append(case)
        _log_case(log, case)
    return cases


def run_features(quick: bool, log=print) -> list[Case]:
    """The SGD and Adam epochs on ``numba`` plain and with Dropout + L2 (the training
    options fused in the trainer), each in its own worker process, alternating."""
    n_samples = QUICK_EPOCH_SAMPLES if quick else None
    cases = []
    for optimizer in ("sgd", "adam"):
        case = Case("features", f"{optimizer}-b256", {
            "optimizer": optimizer, "batch_size": 256, "samples": n_samples,
            "dropout": REGULARIZED_DROPOUT, "l2": REGULARIZED_L2,
        })  # fmt: skip
        specs = {
            name: {"runner": "numba", "optimizer": optimizer, "batch_size": 256,
                   "samples": n_samples, "regularized": reg}
            for name, reg in (("numba", False), ("numba-dropout-l2", True))
        }  # fmt: skip
        _run_case(case, _worker_builders(specs), 5, 0.0, settle=EPOCH_SETTLE_S, self_timed=True)
        cases.append(case)
        _log_case(log, case)
    return cases


#: Samples per runner in each contention phase: a hog makes single epochs vary more
#: than a quiet machine does, so the median needs more of them.
CONTENTION_REPEATS = 5


def run_contention(quick: bool, log=print) -> list[Case]:
    """The SGD epoch quiet and beside a CPU hog, same worker processes for both."""
    specs = contention.specs(quick)
    first = next(iter(specs.values()))
    params = {k: first[k] for k in ("optimizer", "batch_size", "samples")}
    params["threads"] = {name: spec["threads"] or "default" for name, spec in specs.items()}
    quiet = Case("contention", "sgd-b256 quiet", dict(params, hog=False))
    busy = Case("contention", "sgd-b256 hog", dict(params, hog=True))
    workers = _build_all(quiet, _worker_builders(specs))
    busy.status.update(quiet.status)
    log(f"  {params['samples']} samples; hog: one process spinning on one core")
    try:
        if workers:
            n = CONTENTION_REPEATS
            quiet.record(
                measure_alternating(workers, n, 0.0, settle=EPOCH_SETTLE_S, self_timed=True)
            )
            with contention.cpu_hog():
                # One untimed epoch each beside the hog first: every runner meets the
                # load change there (the trainer's thread governor adapts within it),
                # and the samples measure training under steady contention.
                for call in workers.values():
                    call()
                busy.record(
                    measure_alternating(workers, n, 0.0, settle=EPOCH_SETTLE_S, self_timed=True)
                )
    finally:
        _close_all(workers)
    for case in (quiet, busy):
        _log_case(log, case)
    return [quiet, busy]


def run_tiny(quick: bool, log=print) -> list[Case]:
    cases = []
    steps = TINY_STEPS // 5 if quick else TINY_STEPS
    for net in TINY_NETS:
        case = Case("tiny", net.name, {
            "layers": list(net.layers), "activations": list(net.activations), "loss": net.loss,
            "optimizer": net.optimizer, "samples": net.n_samples, "dtype": "float64",
            "steps_per_call": steps,
        })  # fmt: skip
        builders = {
            r: (lambda r=r, net=net: tiny_call(r, net, steps))
            for r in ("numba", "numpy", "auto", "torch")
        }
        _run_case(case, builders, repeats=3, min_time=0.02, units=steps, settle=TINY_SETTLE_S)
        cases.append(case)
        _log_case(log, case)
    return cases


def run_sklearn(quick: bool, gemm32: float, log=print) -> list[Case]:
    """One fit per sample of each ``MLPClassifier``, each runner in its own process."""
    log("  one fit per sample, each runner in its own process, float32, every epoch run")
    cases = []
    for sc in SKLEARN_CASES:
        epochs = sc.quick_epochs if quick else sc.epochs
        X, X_test, _, _, n_classes = sklearn_data(sc.data)
        flops = fit_flops(len(X), X.shape[1], sc.hidden, n_classes, epochs)
        case = Case("sklearn", sc.name, {
            "data": sc.data, "rows": len(X), "test_rows": len(X_test), "features": X.shape[1],
            "classes": n_classes, "hidden": list(sc.hidden), "epochs": epochs,
            "solver": "adam", "batch_size": "auto", "dtype": "float32", "bound": sc.bound,
            "isolation": "one worker process per runner",
        }, flops)  # fmt: skip
        specs = {
            r: {"workload": "sklearn", "runner": r, "data": sc.data, "hidden": list(sc.hidden),
                "epochs": epochs}
            for r in SKLEARN_RUNNERS
        }  # fmt: skip
        # warm-up fits are untimed and nothing is tuned in them: the workers start together
        _run_case(case, _worker_builders(specs, together=True), 3, 0.0, settle=EPOCH_SETTLE_S,
                  self_timed=True, collect_info=True)  # fmt: skip
        case.seconds["gemm-floor"] = flops / gemm32
        case.status["gemm-floor"] = "ok"
        dims = fit_dims(X.shape[1], sc.hidden, n_classes)
        case.seconds["gemm-shapes"] = shape_floor(len(X), dims, epochs, AUTO_BATCH)
        case.status["gemm-shapes"] = "ok"
        cases.append(case)
        _log_case(log, case)
    return cases


#: Runners of the dask regime (see :mod:`.dask_regime`).
DASK_RUNNERS: tuple[str, ...] = ("dask", "memory-1t", "memory-2t")


def run_dask(quick: bool, log=print, rows: int | None = None) -> list[Case]:
    """Distributed against in-memory prediction, seconds per row, alternating rounds."""
    rows = rows or (dask_regime.QUICK_ROWS if quick else dask_regime.ROWS)
    memory_rows = min(dask_regime.MEMORY_ROWS, rows)
    case = Case("dask", "predict", {
        "rows": rows, "memory_rows": memory_rows, "chunk_rows": dask_regime.CHUNK_ROWS,
        "layers": [dask_regime.FEATURES, dask_regime.HIDDEN, dask_regime.CLASSES],
        "dtype": "float32", "backend": "numpy", "workers": "2 processes x 1 thread",
        "unit": "row",
    })  # fmt: skip
    reason = dask_regime.unavailable_reason()
    if reason:
        case.status.update(dict.fromkeys(DASK_RUNNERS, f"n/a: {reason}"))
        log(f"  n/a: {reason}")
        return [case]
    log(f"  {rows:,} rows on 2 single-thread workers; in memory: {memory_rows:,} rows")
    with dask_regime.predict_runners(rows, memory_rows=memory_rows) as (calls, per_call):
        samples = timing.sample_rounds(calls, 3, warm=False, settle=EPOCH_SETTLE_S)
    case.record({r: timing.summary({r: s}, per_call[r])[r] for r, s in samples.items()})
    log("  predict: " + ", ".join(f"{r} {1 / t:,.0f} rows/s" for r, t in case.seconds.items()))
    return [case]


# ---------------------------------------------------------------------------
# Targets, machine details, the run
# ---------------------------------------------------------------------------


def _reference(case: Case, ref: str) -> str | None:
    """The runner a target compares with (``best``: the faster of numpy and numba)."""
    if ref == "best":
        measured = [b for b in ("numpy", "numba") if b in case.seconds]
        return min(measured, key=case.seconds.get) if measured else None
    return ref if ref in case.seconds else None


def _within_spread(case: Case, runner: str, ref: str, limit: float) -> bool:
    """Whether the target holds for some pair of samples: the runner's fastest sample
    against the reference's slowest.  A FAIL that holds this way is within noise."""
    lo = case.spread.get(runner, [case.seconds[runner]])[0]
    hi = case.spread.get(ref, [case.seconds[ref]])[-1]
    return lo / hi <= limit


def _same_code(case: Case, runner: str, ref: str) -> bool:
    """Whether ``runner`` (``auto``) trained every timed batch on backend ``ref``, as its
    ``info`` reports (:func:`~.workloads.trained_since_mark`): the two ran the same code."""
    trained = case.info.get(runner, {}).get("trained")
    return bool(trained) and set(trained) == {ref}


def evaluate_targets(case: Case) -> list[dict]:
    """Each target of this case: runner, reference, limit, measured ratio, PASS/FAIL/n/a,
    and ``noise``: a FAIL whose limit is met by the samples' spread, or where ``auto``
    ran the reference's own code in every timed batch (``same_code``: the gap is the
    machine's, not the choice's)."""
    targets = TARGETS.get("ops" if case.regime == "ops" else case.key, ())
    out = []
    for runner, ref, limit, label in targets:
        row = {"runner": runner, "reference": ref, "limit": limit, "label": label,
               "ratio": None, "noise": False}  # fmt: skip
        ref_runner = _reference(case, ref)
        if runner not in case.seconds or ref_runner is None:
            missing = ref if runner in case.seconds else runner
            why = case.status.get(missing, "not measured")
            out.append(dict(row, status=f"n/a ({missing}: {why})"))
            continue
        ratio = case.seconds[runner] / case.seconds[ref_runner]
        passed = ratio <= limit
        same = _same_code(case, runner, ref_runner)
        noise = not passed and (same or _within_spread(case, runner, ref_runner, limit))
        out.append(dict(row, ratio=ratio, status="PASS" if passed else "FAIL", noise=noise,
                        same_code=same))  # fmt: skip
    return out


def _version(mod: str) -> str | None:
    try:
        from importlib.metadata import version

        return version(mod)
    except Exception:  # noqa: BLE001 - not installed, or no metadata
        return None


def _thread_pools() -> list[dict]:
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return []
    keys = ("user_api", "internal_api", "version", "num_threads", "filepath")
    return [{k: p.get(k) for k in keys} for p in threadpool_info()]


def machine_info() -> dict:
    """CPU, cores, BLAS libraries (threadpoolctl) and package versions of this run."""
    import fastnn

    versions = {"python": platform.python_version(), "fastnn": fastnn.__version__}
    for mod in ("numpy", "scipy", "numba", "torch", "threadpoolctl", "matplotlib"):
        versions[mod] = _version(mod)
    load = machine.load_average()
    return {
        "loadavg": ", ".join(f"{x:.2f}" for x in load) if load else "-",
        "cpu": machine.cpu_model(),
        "cores": machine.logical_cores(),
        "usable_cores": machine.usable_cores(),
        "platform": platform.platform(),
        "blas": _thread_pools(),
        "versions": versions,
        "backends": fastnn.available_backends(),
    }


def run(quick: bool = False, regimes=DEFAULT_REGIMES, log=print) -> dict:
    """Measure the requested regimes; returns the JSON-serializable results."""
    import fastnn

    fastnn.set_num_threads(machine.usable_cores())
    info = machine_info()  # before measuring: the load average says who else is running
    log("measuring GEMM rate (A @ A, n=2048) ...")
    gemm = {"float32": gemm_rate(np.float32), "float64": gemm_rate(np.float64)}
    steps = {
        "ops": lambda: run_ops(quick, log),
        "epoch": lambda: run_epochs(quick, gemm["float32"], log),
        "tiny": lambda: run_tiny(quick, log),
        "features": lambda: run_features(quick, log),
        "contention": lambda: run_contention(quick, log),
        "sklearn": lambda: run_sklearn(quick, gemm["float32"], log),
        "dask": lambda: run_dask(quick, log),
    }
    cases: list[Case] = []
    for regime in REGIMES:
        if regime in regimes:
            log(f"{regime} ...")
            cases += steps[regime]()
    return {
        "format": 2,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "quick": quick,
        "regimes": [r for r in REGIMES if r in regimes],
        "machine": info,
        "gemm": gemm,
        "cases": [c.to_json() for c in cases],
    }
