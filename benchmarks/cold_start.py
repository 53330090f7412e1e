"""Cold start: seconds from the first ``fit`` call to the first trained batch.

Each measurement is a fresh process with an empty Numba cache (``NUMBA_CACHE_DIR``)
and an empty fastnn cache (``FASTNN_CACHE_DIR``): a newcomer's first run on a
machine.  The process builds the Fashion-MNIST-shaped MLP (784-256-10, SGD, batch
256, float32, 20,000 random rows), notes the end of the first trained batch
(a batch callback on a first one-batch ``fit``), then trains epochs until numba's
trainers are ready and ``--epochs`` more (their times are printed).  Backends:

* ``auto`` (the default): numba's trainers build in a background process
  (fastnn/dispatch/coldstart.py) while numpy trains;
* ``numba``: compiles in the calling process before its first batch.

Also a warm run of each (the caches the cold run left), for the warm-cache first
step.  Target (issue 14): cold first batch <= 5 s; warm <= 1 s; ``import fastnn``
compiles nothing.  Prints one line per run::

    .venv/bin/python benchmarks/cold_start.py --epochs 5
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

CHILD = r"""
import json, sys, time
t_import = time.perf_counter()
import numpy as np
import fastnn
import_s = time.perf_counter() - t_import
backend, epochs = sys.argv[1], int(sys.argv[2])
rng = np.random.default_rng(0)
X = rng.random((20000, 784), dtype=np.float32)
y = rng.integers(0, 10, 20000)
model = fastnn.Sequential([fastnn.Dense(256, activation="relu", input_shape=(784,)),
                           fastnn.Dense(10, activation="softmax")], backend=backend)
model.compile(optimizer=fastnn.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy")
marks = {}
class Marks(fastnn.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
        marks.setdefault("first_batch", time.perf_counter() - t0)
t0 = time.perf_counter()
model.fit(X[:256], y[:256], epochs=1, batch_size=256, verbose=0, callbacks=[Marks()])
from fastnn.dispatch import coldstart
epoch_s, ready_s = [], None
while len(epoch_s) < epochs or ready_s is None:  # until numba's build is done, + epochs
    t = time.perf_counter()
    model.fit(X, y, epochs=1, batch_size=256, verbose=0)
    epoch_s.append(time.perf_counter() - t)
    if ready_s is None and (backend != "auto" or coldstart.trainers_ready("float32")):
        ready_s = time.perf_counter() - t0
        epoch_s = epoch_s[-1:]
print(json.dumps({"import_s": import_s, "first_batch_s": marks["first_batch"],
                  "ready_s": ready_s, "epoch_s": epoch_s}))
"""


def run(backend: str, epochs: int, numba_dir: str, fastnn_dir: str) -> dict:
    env = dict(os.environ, NUMBA_CACHE_DIR=numba_dir, FASTNN_CACHE_DIR=fastnn_dir)
    env.pop("FASTNN_BACKGROUND_BUILD", None)
    out = subprocess.run(
        [sys.executable, "-c", CHILD, backend, str(epochs)],
        env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def describe(label: str, r: dict) -> str:
    ep = r["epoch_s"]
    head = " ".join(f"{s:.2f}" for s in ep[:4])
    tail = " ".join(f"{s:.2f}" for s in ep[-3:])
    return (
        f"{label:12s} import {r['import_s']:.2f} s  first batch {r['first_batch_s']:.2f} s  "
        f"numba trainers ready {r['ready_s']:.1f} s  epochs after: {head} ... {tail} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--backends", default="auto,numba")
    args = parser.parse_args()
    for backend in args.backends.split(","):
        with tempfile.TemporaryDirectory() as nb, tempfile.TemporaryDirectory() as fc:
            print(describe(f"{backend} cold", run(backend, args.epochs, nb, fc)), flush=True)
            print(describe(f"{backend} warm", run(backend, args.epochs, nb, fc)), flush=True)


if __name__ == "__main__":
    main()
