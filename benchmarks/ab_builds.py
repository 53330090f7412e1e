"""Two (or more) builds of fastnn side by side: the 784-256-10 epoch on ``numba``.

Each variant is a Python interpreter with some fastnn build installed (e.g. this
checkout's ``.venv`` and a ``git worktree`` of an older commit with its own venv),
plus environment variables.  Each runs in its own process: it builds the MLP on
random Fashion-MNIST-shaped data, trains one untimed epoch, then times one epoch
per request; requests alternate between the variants in rotating order, after
0.3 s of idle each.  ``--level fit`` times ``Sequential.fit(epochs=1)``,
``--level kernel`` the backend's ``train_batches`` alone (logits head).  Prints
per variant the median, min and max, and the per-round ratio to the first variant
(median and range), e.g.::

    git worktree add /tmp/base 9fdae81 && python3 -m venv /tmp/base/.venv && \\
        /tmp/base/.venv/bin/pip install -e /tmp/base
    .venv/bin/python benchmarks/ab_builds.py base=/tmp/base/.venv/bin/python \\
        main=.venv/bin/python main-fixed=.venv/bin/python:FASTNN_ADAPTIVE_THREADS=0
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import time

CHILD = r"""
import sys, time
import numpy as np
import fastnn
level, opt, rows = sys.argv[1], sys.argv[2], int(sys.argv[3])
rng = np.random.default_rng(0)
X = rng.random((rows, 784), dtype=np.float32)
y = rng.integers(0, 10, rows)
batch = 256 if opt == "sgd" else 32
if level == "fit":
    model = fastnn.Sequential([fastnn.Dense(256, activation="relu", input_dim=784),
                               fastnn.Dense(10, activation="softmax")], backend="numba")
    o = fastnn.optimizers.SGD(learning_rate=0.1) if opt == "sgd" else fastnn.optimizers.Adam(1e-3)
    model.compile(optimizer=o, loss="sparse_categorical_crossentropy")
    def epoch():
        model.fit(X, y, batch_size=batch, epochs=1, verbose=0)
else:
    Ws = [(rng.standard_normal(s) * 0.05).astype(np.float32) for s in ((784, 256), (256, 10))]
    bs = [np.zeros(256, np.float32), np.zeros(10, np.float32)]
    n_state = 1 if opt == "sgd" else 2
    state = [tuple(np.zeros_like(p) for _ in range(n_state)) for p in (Ws[0], bs[0], Ws[1], bs[1])]
    hyper = (0.1, 0.0) if opt == "sgd" else (1e-3, 0.9, 0.999, 1e-7)
    ops = fastnn.get_ops("numba")
    impl = getattr(ops, "impl", ops)
    order = rng.permutation(rows)
    def epoch():
        impl.train_batches(Ws, bs, ["relu", "linear"], X, y, order, batch,
                           "softmax_cross_entropy", opt, state, hyper, 0)
epoch()
print("ready", flush=True)
for line in sys.stdin:
    t = time.perf_counter()
    epoch()
    print(time.perf_counter() - t, flush=True)
"""


def parse_variant(text: str) -> tuple[str, str, dict]:
    """``name=python[:VAR=value[,VAR=value]]``."""
    name, _, rest = text.partition("=")
    python, _, env_text = rest.partition(":")
    env = dict(item.split("=", 1) for item in env_text.split(",") if item)
    return name, python, env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("variants", nargs="+", help="name=python[:VAR=value,...]")
    parser.add_argument("--level", choices=("fit", "kernel"), default="fit")
    parser.add_argument("--optimizer", choices=("sgd", "adam"), default="sgd")
    parser.add_argument("--rows", type=int, default=60000)
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()
    procs = {}
    for name, python, env in map(parse_variant, args.variants):
        cmd = [python, "-c", CHILD, args.level, args.optimizer, str(args.rows)]
        p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                             cwd="/", env=dict(os.environ, **env))  # fmt: skip
        if p.stdout.readline().strip() != "ready":
            raise SystemExit(f"variant {name} failed to start")
        procs[name] = p
    names = list(procs)
    times: dict[str, list[float]] = {n: [] for n in names}
    for r in range(args.rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            time.sleep(0.3)
            procs[name].stdin.write("run\n")
            procs[name].stdin.flush()
            times[name].append(float(procs[name].stdout.readline()))
    for p in procs.values():
        p.stdin.close()
        p.wait()
    base = times[names[0]]
    for name, t in times.items():
        ratios = sorted(a / b for a, b in zip(t, base))
        print(
            f"{args.level} {args.optimizer} {args.rows} rows  {name:12s} median "
            f"{statistics.median(t) * 1e3:.1f} ms (min {min(t) * 1e3:.1f}, max {max(t) * 1e3:.1f})"
            f"  / {names[0]} per round: median {statistics.median(ratios):.3f} "
            f"[{ratios[0]:.3f}, {ratios[-1]:.3f}]"
        )


if __name__ == "__main__":
    main()
