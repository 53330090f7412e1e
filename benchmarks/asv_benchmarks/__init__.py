"""fastnn's asv benchmark suite (``benchmark_dir`` in ``asv.conf.json``).

* :mod:`.ops` -- ``dense_forward``, ``dense_backward``, losses and optimizer
  updates over backend x dtype x shape, and ``track_`` speedups (unit ``x``) of
  each backend over ``python`` and over ``numpy``;
* :mod:`.training` -- whole Fashion-MNIST epochs and tiny-net steps through
  ``Sequential.fit`` against a hand-written NumPy loop and PyTorch, their
  speedups, and the peak memory of a training run;
* :mod:`.startup` -- ``timeraw_`` import time and cold / warm-cache compile time.

Every ``setup`` builds its data and calls the benchmarked op once (JIT compile,
autotune), so no compile is ever timed.  Combinations that cannot run here
(``python`` at large shapes, a backend or the model API missing at an older
commit, PyTorch not installed) raise ``NotImplementedError`` and are skipped.
Only the op contract (``fastnn.get_ops``) is assumed at module level, so the
suite imports at every commit of the project's history.
"""
