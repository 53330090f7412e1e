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

        import_or_skip("fastnn.runtime")
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

    def timeraw_warmup(self, cache):
        # The child sets NUMBA_CACHE_DIR before numba is imported: for "cold", a new
        # empty directory per sample, so every kernel compiles from scratch.
        if cache == "cold":
            choose = f"tempfile.mkdtemp(dir={self.tmp!r})"
        else:
            choose = repr(os.path.join(self.tmp, "warm"))
        setup = f"import os, tempfile\nos.environ['NUMBA_CACHE_DIR'] = {choose}\n"
        return FIRST_STEP, setup
