"""Backend implementations of the fastnn op contract (installed as ``fastnn.kernels``).

* :mod:`fastnn.kernels.contract` -- the :class:`~fastnn.kernels.contract.Ops` contract.
* :mod:`fastnn.kernels.python` -- plain loops, the readable reference.
* :mod:`fastnn.kernels.numpy` -- vectorized NumPy.
* :mod:`fastnn.kernels.numba` -- ``@njit`` kernels (imported only when requested).
* :mod:`fastnn.kernels.cpuload` -- other processes' CPU load on our cores (the numba
  trainer's thread governor and ``auto``'s in-use check read it).
* :mod:`fastnn.kernels.cblas` -- NumPy's own OpenBLAS through CBLAS (products that
  add into their output, for the numpy backend and the numba trainer).

Backend modules are imported lazily by :mod:`fastnn.dispatch`, so importing
this package never imports or compiles Numba code.
"""

from .contract import ACTIVATIONS, LOSSES, OP_NAMES, PROB_EPS, Ops

__all__ = ["ACTIVATIONS", "LOSSES", "OP_NAMES", "PROB_EPS", "Ops"]
