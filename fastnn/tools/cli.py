"""The ``fastnn`` command line.

::

    fastnn info [--dispatch]          backends, library versions, BLAS/Numba threads, CPU
    fastnn example NAME [--backend B] [--seed S]
                                      one of the tutorials' examples (see `fastnn example -h`)
    fastnn train [options]            train an MLP on Fashion-MNIST
    fastnn demo [--backends ...]      Fashion-MNIST 784-256-10 on each fast backend, side by side
    fastnn warmup                     compile the Numba kernels ahead of time
    fastnn bench [ARGS...]            the performance benchmark (arguments passed through)

User errors (bad option values, missing data, ...) print one line to stderr and
exit with status 2; set ``FASTNN_DEBUG=1`` to see the traceback instead.
"""

from __future__ import annotations

import argparse
import importlib
import os
import platform
import sys

EXIT_USAGE = 2

COMMANDS = ("info", "example", "train", "demo", "warmup", "bench")
DEMO_BACKENDS = ("numpy", "numba", "auto")


class UserError(Exception):
    """A problem with what the user asked for: reported in one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    """argparse, but usage errors are one line on stderr (exit status 2)."""

    def error(self, message):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


# ------------------------------------------------------------------------ info


def _version(module_name: str) -> str:
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        return f"not installed ({exc})"
    return getattr(module, "__version__", "unknown")


def _numba_threading() -> list[str]:
    try:
        import numba
    except ImportError:
        return ["numba: not installed"]
    ceiling = numba.config.NUMBA_NUM_THREADS
    lines = [f"numba threads: {numba.get_num_threads()} (NUMBA_NUM_THREADS={ceiling})"]
    try:
        active = numba.threading_layer()
    except ValueError:
        active = "not started yet (starts with the first parallel kernel)"
    available = []
    for layer, module in (("tbb", "tbbpool"), ("omp", "omppool"), ("workqueue", "workqueue")):
        try:
            importlib.import_module(f"numba.np.ufunc.{module}")
            available.append(layer)
        except ImportError:
            pass
    lines.append(
        f"numba threading layer: {active}; requested: {numba.config.THREADING_LAYER}; "
        f"available: {', '.join(available) or 'none'}"
    )
    try:
        from fastnn.kernels.numba import parallel_threads
    except ImportError:
        return lines
    nt = parallel_threads()
    lines.append(
        f"numba trainer of wide layers: {nt} thread(s)"
        + (" in Numba's pool, each calling NumPy's BLAS single-threaded" if nt > 1 else
           ", products in NumPy's BLAS pool")
    )  # fmt: skip
    return lines


def _blas_lines() -> list[str]:
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return ["thread pools: threadpoolctl not installed"]
    # Load the libraries whose pools we want to see (NumPy's and SciPy's BLAS).
    import numpy  # noqa: F401

    try:
        import scipy.linalg  # noqa: F401
    except ImportError:
        pass
    lines = []
    for pool in threadpool_info():
        lines.append(
            f"  {pool.get('user_api', '?'):8s} {pool.get('internal_api', '?'):10s} "
            f"{pool.get('version') or '':10s} threads={pool.get('num_threads')} "
            f"{pool.get('filepath', '')}"
        )
    return ["thread pools (threadpoolctl):", *(lines or ["  none loaded"])]


def cmd_info(args) -> int:
    import fastnn

    print(f"fastnn {fastnn.__version__}")
    print(f"python {platform.python_version()} ({sys.executable})")
    for name in ("numpy", "numba", "scipy", "threadpoolctl"):
        print(f"{name} {_version(name)}")
    backends = fastnn.available_backends()
    from fastnn import dispatch
    from fastnn.dispatch import machine

    print(f"backends available: {', '.join(backends)} (+ auto)")
    print(f"current backend: {_current_backend()}")
    if "auto" in dispatch.CHOICES:
        print(f"auto without measurements falls back to: {dispatch.resolve_auto_backend()}")
    for name in dispatch.BACKENDS:
        if name not in backends:
            try:
                dispatch.check_choice(name)
            except ValueError as exc:  # says why it cannot be loaded here
                print(f"backend {name} unavailable: {_one_line(exc)}")
    print(
        f"cpu: {machine.cpu_model()}; {machine.logical_cores()} logical cores "
        f"({machine.usable_cores()} usable)"
    )
    flags = machine.reported_flags()
    if flags:
        print(f"cpu features: {', '.join(flags)}")
    from fastnn import datasets

    try:
        print(f"fashion-mnist data: {datasets.locate_fashion_mnist()}")
    except datasets.DatasetNotFoundError as exc:
        print(f"fashion-mnist data: {_one_line(exc)}")
    for line in _numba_threading():
        print(line)
    for line in _blas_lines():
        print(line)
    if args.dispatch:
        print()
        from fastnn.dispatch import autotune

        print(autotune.describe())
    return 0


def _current_backend() -> str:
    import fastnn

    try:
        return fastnn.get_backend()
    except ValueError as exc:  # a bad FASTNN_BACKEND is reported here, not fatal
        return f"invalid ({exc})"


# --------------------------------------------------------------------- example


def cmd_example(args) -> int:
    from fastnn.tools import examples

    kwargs = {"backend": args.backend, "seed": args.seed, "verbose": True}
    if args.epochs is not None:
        kwargs["epochs"] = args.epochs
    if args.plot is not None:
        if args.name != "nn-10-15-5":
            raise UserError("--plot is only available for the nn-10-15-5 example")
        kwargs["plot"] = args.plot
    if args.name in ("fashion-mnist", "fashion-mnist-best"):
        kwargs["data"] = args.data
        kwargs["fit_verbose"] = 2  # one line per epoch
    elif args.data is not None:
        raise UserError("--data is only available for the fashion-mnist examples")
    result = examples.run(args.name, **kwargs)
    return 0 if result.get("ok", True) else 1


# ----------------------------------------------------------------------- train


def _parse_hidden(text: str) -> tuple[int, ...]:
    parts = [p.strip() for p in text.split(",")]
    try:
        units = tuple(int(p) for p in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--hidden must be a comma-separated list of positive integers, got {text!r}"
        ) from None
    if not units or any(u < 1 for u in units):
        raise argparse.ArgumentTypeError(
            f"--hidden must be a comma-separated list of positive integers, got {text!r}"
        )
    return units


def _int_at_least(low: int, what: str):
    """An argparse type: an integer >= ``low``, described as ``what`` in errors."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < low:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return value

    return parse


_positive_int = _int_at_least(1, "a positive integer")
_nonneg_int = _int_at_least(0, "an integer >= 0")


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive finite number, got {text!r}")
    return value


_PYTHON_NOTE = (
    "note: the python backend is the loop-by-loop reference; a full Fashion-MNIST run "
    "on it takes hours (use --limit for a taste)"
)


def cmd_train(args) -> int:
    from fastnn.tools import examples

    if args.backend == "python" and args.limit is None:
        print(_PYTHON_NOTE, file=sys.stderr)

    verbose_fit = 0 if args.quiet else (1 if args.verbose else 2)
    result = examples.fashion_mnist(
        backend=args.backend,
        seed=args.seed,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        optimizer=args.optimizer,
        hidden=args.hidden,
        dtype=args.dtype,
        limit=args.limit,
        data=args.data,
        save=args.save,
        fit_verbose=verbose_fit,
        verbose=not args.quiet,
    )
    if args.quiet:
        print(
            f"test accuracy {result['test_accuracy']:.4f}  "
            f"train time {result['train_time']:.2f} s  backend {result['backend']}"
        )
    return 0


# ------------------------------------------------------------------------ demo


def _available_demo_backends(requested: list[str]) -> tuple[list[str], list[str]]:
    import fastnn

    available = set(fastnn.available_backends()) | {"auto"}
    use = [b for b in requested if b in available]
    skipped = [b for b in requested if b not in available]
    return use, skipped


def _parse_backends(text: str) -> list[str]:
    from fastnn import dispatch

    names = [p.strip().lower() for p in text.split(",") if p.strip()]
    if not names:
        raise argparse.ArgumentTypeError("--backends needs at least one backend name")
    bad = [n for n in names if n not in dispatch.CHOICES]
    if bad:
        raise argparse.ArgumentTypeError(
            f"unknown backend {bad[0]!r}; valid choices are: {', '.join(dispatch.CHOICES)}"
        )
    return list(dict.fromkeys(names))


def format_demo_table(rows: list[dict], reference: str | None) -> str:
    """The side-by-side table: backend, test accuracy, time, s/epoch, speed vs reference."""
    ref_time = next((r["train_time"] for r in rows if r["backend"] == reference), None)
    head = f"{'backend':<9}{'test acc':>10}{'train time':>13}{'s/epoch':>10}"
    if ref_time is not None:
        head += f"{'speed vs ' + reference:>18}"
    lines = [head, "-" * len(head)]
    for r in rows:
        line = (
            f"{r['backend']:<9}{r['test_accuracy']:>10.4f}{r['train_time']:>11.2f} s"
            f"{r['train_time'] / r['epochs']:>10.3f}"
        )
        if ref_time is not None:
            line += f"{ref_time / r['train_time']:>17.2f}x"
        lines.append(line)
    return "\n".join(lines)


def cmd_demo(args) -> int:
    from fastnn.tools import examples

    backends, skipped = _available_demo_backends(args.backends)
    for name in skipped:
        print(f"note: backend {name} is not available here; skipped", file=sys.stderr)
    if "python" in backends and args.limit is None:
        print(_PYTHON_NOTE, file=sys.stderr)
    if not backends:
        raise UserError("none of the requested backends is available here")
    hidden = "-".join(str(h) for h in args.hidden)
    print(
        f"Fashion-MNIST MLP 784-{hidden}-10 (ReLU, softmax cross-entropy), SGD lr {args.lr}, "
        f"batch {args.batch_size}, {args.epochs} epoch{'s' if args.epochs != 1 else ''}, "
        f"{args.dtype}, seed {args.seed}"
    )
    print("times: Sequential.fit only, after an untimed warm-up that absorbs JIT compilation")
    rows = []
    for name in backends:
        print(f"training on {name} ...", flush=True)
        r = examples.fashion_mnist(
            backend=name,
            seed=args.seed,
            epochs=args.epochs,
            batch_size=args.batch_size,
            lr=args.lr,
            hidden=args.hidden,
            dtype=args.dtype,
            limit=args.limit,
            data=args.data,
            fit_verbose=0,
            verbose=False,
        )
        print(
            f"  {name}: test accuracy {r['test_accuracy']:.4f}, "
            f"train time {r['train_time']:.2f} s (warm-up {r['warmup_time']:.2f} s)",
            flush=True,
        )
        rows.append(r)
    print(f"\ntrain {rows[0]['n_train']} / test {rows[0]['n_test']} samples")
    reference = "numpy" if "numpy" in backends else backends[0]
    print(format_demo_table(rows, reference))
    return 0


# ------------------------------------------------------------- warmup & bench


def cmd_warmup(args) -> int:
    from fastnn.dispatch import runtime

    elapsed = runtime.warmup()
    print(f"warm-up done in {elapsed:.2f} s")
    return 0


def cmd_bench(argv: list[str]) -> int:
    from fastnn.tools import bench

    code = bench.main(list(argv))
    return int(code or 0)


# ---------------------------------------------------------------------- parser


def _add_training_options(p, default_lr, lr_help) -> None:
    """The options ``train`` and ``demo`` share."""
    p.add_argument("--epochs", type=_positive_int, default=10, help="epochs (default 10)")
    p.add_argument("--batch-size", type=_positive_int, default=256, help="default 256")
    p.add_argument(
        "--lr",
        type=_positive_float,
        default=default_lr,
        help=lr_help,
    )
    p.add_argument(
        "--hidden",
        type=_parse_hidden,
        default=(256,),
        help="hidden layer widths, comma-separated (default 256; e.g. 256,128)",
    )
    p.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    p.add_argument("--seed", type=_nonneg_int, default=0, help="random seed (default 0)")
    p.add_argument("--data", metavar="DIR", default=None, help="Fashion-MNIST directory")
    p.add_argument(
        "--limit",
        type=_positive_int,
        default=None,
        help="use only the first N training and the first N test samples (quick runs)",
    )


def build_parser() -> argparse.ArgumentParser:
    from fastnn import __version__, dispatch
    from fastnn.tools.examples import EXAMPLES

    parser = _Parser(prog="fastnn", description="Fast dense neural networks on the CPU.")
    parser.add_argument("--version", action="version", version=f"fastnn {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    _add_info_command(sub)
    backend_help = f"backend: {', '.join(dispatch.CHOICES)} (default: the current backend)"

    p = sub.add_parser("example", help="run one of the tutorials' examples")
    p.add_argument("name", choices=list(EXAMPLES), metavar="NAME", help=", ".join(EXAMPLES))
    p.add_argument("--backend", choices=dispatch.CHOICES, default=None, help=backend_help)
    p.add_argument("--seed", type=_nonneg_int, default=0, help="random seed (default 0)")
    p.add_argument(
        "--epochs", type=_positive_int, default=None, help="override the example's epochs"
    )
    p.add_argument("--plot", metavar="PNG", default=None, help="nn-10-15-5: save the loss curve")
    p.add_argument(
        "--data", metavar="DIR", default=None, help="fashion-mnist(-best): data directory"
    )
    p.set_defaults(func=cmd_example)

    p = sub.add_parser("train", help="train an MLP on Fashion-MNIST")
    p.add_argument("--backend", choices=dispatch.CHOICES, default=None, help=backend_help)
    _add_training_options(p, None, "learning rate (default 0.1 for sgd, 0.001 for adam)")
    p.add_argument("--optimizer", choices=("sgd", "adam"), default="sgd")
    p.add_argument("--save", metavar="PATH", default=None, help="save the trained model")
    p.add_argument("--verbose", action="store_true", help="per-step progress bar")
    p.add_argument("--quiet", action="store_true", help="print only the final result")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("demo", help="Fashion-MNIST on each fast backend, side by side")
    p.add_argument(
        "--backends",
        type=_parse_backends,
        default=list(DEMO_BACKENDS),
        help=f"comma-separated (default {','.join(DEMO_BACKENDS)})",
    )
    _add_training_options(p, 0.1, "SGD learning rate (default 0.1)")
    p.set_defaults(func=cmd_demo)

    _add_tool_commands(sub)
    return parser


def _add_info_command(sub) -> None:
    p = sub.add_parser("info", help="backends, versions, BLAS and thread counts, CPU")
    p.add_argument(
        "--dispatch", action="store_true", help="also print the auto backend's per-op choices"
    )
    p.set_defaults(func=cmd_info)


def _add_tool_commands(sub) -> None:
    """The ``warmup`` and ``bench`` subcommands."""
    p = sub.add_parser("warmup", help="compile the Numba kernels ahead of time")
    p.set_defaults(func=cmd_warmup)
    # Arguments after `bench` are passed to fastnn.tools.bench.main unchanged (see main()).
    p = sub.add_parser(
        "bench", help="performance benchmark (arguments passed through)", add_help=False
    )
    p.add_argument("bench_args", nargs=argparse.REMAINDER)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``fastnn`` console script; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = os.environ.get("FASTNN_DEBUG", "").strip() not in ("", "0")
    try:
        if argv and argv[0] == "bench":
            # Passed through verbatim: the benchmark has its own options and --help.
            return cmd_bench(argv[1:])
        try:
            args = build_parser().parse_args(argv)
        except SystemExit as exc:  # --help, --version, usage errors (already printed)
            return exc.code if isinstance(exc.code, int) else EXIT_USAGE
        if getattr(args, "command", None) == "train" and args.lr is None:
            args.lr = 0.001 if args.optimizer == "adam" else 0.1
        return args.func(args)
    except KeyboardInterrupt:
        print("fastnn: interrupted", file=sys.stderr)
        return 130
    except (UserError, ValueError, TypeError, OSError) as exc:
        if debug:
            raise
        print(f"fastnn: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
