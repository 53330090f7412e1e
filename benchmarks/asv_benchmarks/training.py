"""Whole training runs: Fashion-MNIST epochs, tiny-net steps, their speedups, peak memory.

The workloads come from :mod:`fastnn.tools.bench` (the same ones ``fastnn bench``
measures); at commits without the model API they are skipped.
"""

from ._common import QUICK, alternate, import_or_skip

#: (optimizer, batch size) per case name, as in the performance issue.
EPOCH_CASES = {"sgd-b256": ("sgd", 256), "adam-b32": ("adam", 32)}
#: Samples per epoch: all of Fashion-MNIST's training set (a slice in quick mode).
EPOCH_SAMPLES = 4096 if QUICK else None
#: Samples of the epochs compared inside one track_ benchmark (the ratio is what counts).
RATIO_SAMPLES = 4096 if QUICK else 15_000

_data_cache = {}


def _bench_module():
    return import_or_skip("fastnn.tools.bench.runner", "fastnn.bench")


def _data(bench, n_samples):
    """Fashion-MNIST float32 (random data of its shape when the dataset is missing)."""
    if n_samples not in _data_cache:
        _data_cache[n_samples] = bench.training_data(n_samples)
    X, y, _ = _data_cache[n_samples]
    return X, y


def _build(bench, build):
    try:
        return build()
    except bench.Unavailable as exc:
        raise NotImplementedError(str(exc)) from exc


class Epoch:
    """One epoch of the 784-256-10 ReLU MLP, softmax cross-entropy, float32.

    ``runner``: a fastnn backend (through ``Sequential.fit``, shuffling and batch
    gathering included), the hand-written NumPy loop, or PyTorch CPU.
    """

    params = (["numba", "numpy", "auto", "numpy-loop", "torch"], list(EPOCH_CASES))
    param_names = ("runner", "case")
    number = 1
    repeat = (1, 3, 60.0)
    warmup_time = 0
    timeout = 600

    def setup(self, runner, case):
        bench = _bench_module()
        X, y = _data(bench, EPOCH_SAMPLES)
        optimizer, batch_size = EPOCH_CASES[case]
        self.epoch = _build(bench, lambda: bench.epoch_call(runner, X, y, optimizer, batch_size))
        self.epoch()  # warm-up epoch: JIT compile, workspaces, thread pools

    def time_epoch(self, runner, case):
        self.epoch()


class EpochSpeedup:
    """Epoch time of the hand-written NumPy loop / PyTorch divided by fastnn's (unit x).

    Both runners are timed alternately in one process, so the ratio holds under
    the machine's conditions of the moment.
    """

    params = (["numba", "auto"], list(EPOCH_CASES), ["numpy-loop", "torch"])
    param_names = ("backend", "case", "peer")
    unit = "x"
    timeout = 600

    def setup(self, backend, case, peer):
        bench = _bench_module()
        X, y = _data(bench, RATIO_SAMPLES)
        optimizer, batch_size = EPOCH_CASES[case]
        self.calls = {
            name: _build(bench, lambda n=name: bench.epoch_call(n, X, y, optimizer, batch_size))
            for name in (backend, peer)
        }

    def track_epoch_speedup(self, backend, case, peer):
        t = alternate(self.calls, repeats=3, min_time=0.0)
        return t[peer] / t[backend]


class TinyNetSteps:
    """Full-batch training steps of the tutorial nets (XOR 2-8-1, coffee 2-3-1, 10-15-5)."""

    params = (["numba", "numpy", "torch"], ["xor-2-8-1", "coffee-2-3-1", "net-10-15-5"])
    param_names = ("runner", "net")
    timeout = 300

    def setup(self, runner, net):
        bench = _bench_module()
        spec = {t.name: t for t in bench.TINY_NETS}[net]
        self.run = _build(bench, lambda: bench.tiny_call(runner, spec, steps=100))
        self.run()

    def time_100_steps(self, runner, net):
        self.run()


class TrainingMemory:
    """Peak RSS of a process that loads Fashion-MNIST and trains one SGD epoch (batch 256)."""

    params = (["numba", "numpy"],)
    param_names = ("backend",)
    timeout = 600

    def setup(self, backend):
        self.bench = _bench_module()
        # fail fast (skip) here if the backend or model API is missing
        _build(self.bench, lambda: self.bench.fastnn_mlp(backend, "sgd"))

    def peakmem_train_epoch(self, backend):
        X, y = _data(self.bench, EPOCH_SAMPLES)
        self.bench.epoch_call(backend, X, y, "sgd", 256)()
