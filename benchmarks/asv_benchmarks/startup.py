"""Start-up costs, each timed in a fresh interpreter (``timeraw_``)."""

import os
import shutil
import subprocess
import sys
import tempfile

from ._common import import_or_skip

#: Compile (or load) everything a Fashion-MNIST training needs, then one training step.
FIRST_STEP = """
import numpy as np
import fastnn
fastnn.warmup()
"""

#: What a Fashion-MNIST training needs, nothing more: one fit step of the 784-256-10
#: MLP on float32 data of its shape, then evaluate and predict (the issue's "cold
#: compile of everything a Fashion-MNIST training needs").
FIRST_TRAINING = """
import numpy as np
import fastnn
from fastnn.optimizers import SGD
rng = np.random.default_rng(0)
X = rng.random((512, 784), dtype=np.float32)
y = rng.integers(0, 10, 512)
model = fastnn.Sequential(
    [fastnn.Dense(256, activation="relu", input_dim=784), fastnn.Dense(10, activation="softmax")],
    backend="numba",
)
model.compile(optimizer=SGD(0.1), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
model.fit(X, y, batch_size=256, epochs=1, verbose=0)
model.evaluate(X, y, verbose=0)
model.predict(X[:10])
"""


def timeraw_import_fastnn():
    """``import fastnn``: must stay cheap (no Numba import, no compilation)."""
    return "import fastnn"


class Compile:
    """``fastnn.warmup()`` with a cold (fresh, empty) and with a warm Numba cache."""

    params = (["cold", "warm"],)
    param_names = ("cache",)
    number = 1
    repeat = (1, 3, 120.0)
    timeout = 600

    def setup(self, cache):
        import fastnn

        import_or_skip("fastnn.dispatch.runtime", "fastnn.runtime")
        if "numba" not in fastnn.available_backends():
            raise NotImplementedError("numba backend not available")
        self.tmp = tempfile.mkdtemp(prefix="fastnn-asv-compile-")
        if cache == "warm":
            # populate the cache once, untimed
            env = dict(os.environ, NUMBA_CACHE_DIR=os.path.join(self.tmp, "warm"))
            subprocess.run([sys.executable, "-c", FIRST_STEP], env=env, check=True)

    def teardown(self, cache):
        # asv calls teardown even when setup skipped the combination
        if getattr(self, "tmp", None):
            shutil.rmtree(self.tmp, ignore_errors=True)

    def _setup_code(self, cache):
        # The child sets NUMBA_CACHE_DIR before numba is imported: for "cold", a new
        # empty directory per sample, so every kernel compiles from scratch.
        if cache == "cold":
            choose = f"tempfile.mkdtemp(dir={self.tmp!r})"
        else:
            choose = repr(os.path.join(self.tmp, "warm"))
        return f"import os, tempfile\nos.environ['NUMBA_CACHE_DIR'] = {choose}\n"

    def timeraw_warmup(self, cache):
        """Everything, both dtypes (``fastnn.warmup()``)."""
        return FIRST_STEP, self._setup_code(cache)

    def timeraw_first_training(self, cache):
        """Only what a Fashion-MNIST training compiles: fit, evaluate, predict."""
        return FIRST_TRAINING, self._setup_code(cache)
