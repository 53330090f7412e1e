"""Training epochs and tiny-net steps: fastnn backends next to a hand-written
NumPy loop and PyTorch (optional), one group per workload."""

import pytest
from conftest import QUICK, build_or_skip, warm

from fastnn.tools.bench import runner as bench

EPOCH_RUNNERS = ["numba", "numpy", "auto", "numpy-loop", "torch"]
TINY_RUNNERS = ["numba", "numpy", "torch"]
TINY_STEPS = 20 if QUICK else 200
ROUNDS = 1 if QUICK else 3


def _needs(runner):
    if runner == "torch":
        pytest.importorskip("torch")


@pytest.mark.parametrize("case", [c[0] for c in bench.EPOCH_CASES])
@pytest.mark.parametrize("runner", EPOCH_RUNNERS)
def test_epoch(benchmark, fashion_mnist, runner, case):
    """One epoch of the 784-256-10 MLP (float32; SGD at batch 256, Adam at batch 32)."""
    _needs(runner)
    X, y = fashion_mnist
    _, optimizer, batch_size = next(c for c in bench.EPOCH_CASES if c[0] == case)
    epoch = warm(build_or_skip(lambda: bench.epoch_call(runner, X, y, optimizer, batch_size)))
    benchmark.group = f"epoch {case} ({len(X)} samples)"
    benchmark.extra_info["flops"] = bench.epoch_flops(len(X))
    benchmark.pedantic(epoch, rounds=ROUNDS, iterations=1, warmup_rounds=0)


@pytest.mark.parametrize("net", bench.TINY_NETS, ids=lambda n: n.name)
@pytest.mark.parametrize("runner", TINY_RUNNERS)
def test_tiny_net(benchmark, runner, net):
    """``TINY_STEPS`` full-batch training steps of a tutorial network."""
    _needs(runner)
    run = warm(build_or_skip(lambda: bench.tiny_call(runner, net, steps=TINY_STEPS)))
    benchmark.group = f"tiny {net.name} ({TINY_STEPS} steps)"
    benchmark(run)
