"""The ``fastnn`` command line: every subcommand, its output and its exit codes.

Commands run in-process through ``fastnn.tools.cli.main`` (fast); one test runs the
installed console script to prove the entry point is wired.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import fastnn
from fastnn import datasets
from fastnn.tools import cli

FAST = [b for b in fastnn.available_backends() if b != "python"]
needs_real = pytest.mark.skipif(
    not all((datasets.SYSTEM_DIR / n).is_file() for n in datasets.FILE_NAMES),
    reason="Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)",
)


def run(capsys, *argv):
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code, err, *needles):
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("fastnn"), err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


# ------------------------------------------------------------------------ info


def test_info(capsys):
    code, out, _ = run(capsys, "info")
    assert code == 0
    assert f"numpy {np.__version__}" in out
    assert f"python {sys.version.split()[0]}" in out
    assert "backends available: " + ", ".join(fastnn.available_backends()) in out
    assert "cpu:" in out and "logical cores" in out
    assert "thread pools (threadpoolctl):" in out
    assert "fashion-mnist data: " in out
    if "numba" in fastnn.available_backends():
        import numba

        assert f"numba {numba.__version__}" in out
        assert "numba threading layer:" in out


def test_info_dispatch_prints_the_autotune_table(capsys, monkeypatch):
    from fastnn.dispatch import autotune

    monkeypatch.setattr(autotune, "describe", lambda: "dense_forward|float32|... -> numba")
    code, out, _ = run(capsys, "info", "--dispatch")
    assert code == 0 and "dense_forward|float32|... -> numba" in out


# --------------------------------------------------------------------- example


def test_example_gates(capsys):
    code, out, _ = run(capsys, "example", "gates", "--backend", FAST[0])
    assert code == 0
    assert "AND  predictions [0, 0, 0, 1]  learned exactly" in out
    assert "XOR is not linearly separable" in out


def test_example_xor_with_seed(capsys):
    code, out, _ = run(capsys, "example", "xor", "--backend", FAST[0], "--seed", "4")
    assert code == 0 and "XOR solved" in out


def test_example_nn_with_epochs_and_plot(capsys, tmp_path):
    pytest.importorskip("matplotlib")
    png = tmp_path / "loss.png"
    code, out, _ = run(capsys, "example", "nn-10-15-5", "--epochs", "20", "--plot", str(png))
    assert code == 0 and "epoch     20" in out
    assert png.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize(
    "argv, needles",
    [
        (["example", "mnist"], ["invalid choice: 'mnist'"]),
        (["example", "xor", "--backend", "cuda"], ["invalid choice: 'cuda'"]),
        (["example", "xor", "--seed", "-3"], ["--seed", "-3"]),
        (["example", "xor", "--plot", "x.png"], ["--plot is only available"]),
        (["example", "xor", "--epochs", "0"], ["--epochs"]),
    ],
)
def test_example_errors(capsys, argv, needles):
    code, _, err = run(capsys, *argv)
    assert_one_line_error(code, err, *needles)


# ----------------------------------------------------------------------- train


@needs_real
def test_train_one_epoch_on_a_subset(capsys, tmp_path):
    code, out, err = run(
        capsys, "train", "--backend", FAST[0], "--epochs", "1", "--limit", "2000",
        "--batch-size", "64", "--hidden", "32",
    )  # fmt: skip
    assert code == 0, err
    assert "784-32-10" in out and "2000 training images" in out
    assert "Epoch 1/1" in out
    acc = float(out.split("test accuracy")[1].split()[0])
    assert 0.5 < acc <= 1.0  # 31 SGD steps from chance (0.1)


@needs_real
def test_train_adam_two_layers_quiet(capsys):
    code, out, _ = run(
        capsys, "train", "--backend", FAST[0], "--epochs", "1", "--limit", "1000",
        "--optimizer", "adam", "--hidden", "32,16", "--quiet", "--dtype", "float64",
    )  # fmt: skip
    assert code == 0
    lines = out.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("test accuracy")


@needs_real
def test_train_save(capsys, tmp_path):
    pytest.importorskip("fastnn.saving")
    path = tmp_path / "m.npz"
    code, out, err = run(
        capsys, "train", "--backend", FAST[0], "--epochs", "1", "--limit", "500",
        "--hidden", "16", "--save", str(path), "--quiet",
    )  # fmt: skip
    assert code == 0, err
    assert path.is_file()
    model = fastnn.load_model(str(path))
    assert model.predict(np.zeros((2, 784), dtype=np.float32)).shape == (2, 10)


@pytest.mark.parametrize(
    "argv, needles",
    [
        (["train", "--epochs", "0"], ["--epochs", "positive integer"]),
        (["train", "--hidden", "256,x"], ["--hidden", "256,x"]),
        (["train", "--hidden", "0"], ["--hidden"]),
        (["train", "--lr", "-1"], ["--lr"]),
        (["train", "--lr", "nan"], ["--lr"]),
        (["train", "--batch-size", "abc"], ["--batch-size"]),
        (["train", "--optimizer", "rmsprop"], ["invalid choice: 'rmsprop'"]),
        (["train", "--dtype", "float16"], ["invalid choice: 'float16'"]),
        (["train", "--no-such-option"], ["unrecognized arguments"]),
        ([], ["required"]),
        (["frobnicate"], ["invalid choice: 'frobnicate'"]),
    ],
)
def test_usage_errors_exit_2_with_one_line(capsys, argv, needles):
    code, _, err = run(capsys, *argv)
    assert_one_line_error(code, err, *needles)


def test_missing_data_directory_is_a_one_line_error(capsys, tmp_path):
    missing = tmp_path / "nowhere"
    code, _, err = run(capsys, "train", "--data", str(missing), "--epochs", "1")
    assert_one_line_error(code, err, str(missing), "does not exist")


def test_corrupt_data_is_a_one_line_error(capsys, tmp_path):
    for name in datasets.FILE_NAMES:
        (tmp_path / name).write_bytes(b"garbage")
    code, _, err = run(capsys, "train", "--data", str(tmp_path), "--epochs", "1")
    assert_one_line_error(code, err, "train-images-idx3-ubyte.gz", "corrupt")


def test_debug_env_shows_traceback(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("FASTNN_DEBUG", "1")
    with pytest.raises(FileNotFoundError):
        cli.main(["train", "--data", str(tmp_path / "nowhere")])


# ------------------------------------------------------------------------ demo


@needs_real
def test_demo_one_backend(capsys):
    code, out, err = run(
        capsys, "demo", "--epochs", "1", "--backends", "numpy", "--limit", "2000",
        "--hidden", "32",
    )  # fmt: skip
    assert code == 0, err
    assert "784-32-10" in out
    table = out[out.index("backend ") :].splitlines()
    assert table[0].split()[:4] == ["backend", "test", "acc", "train"]
    row = table[2].split()
    assert row[0] == "numpy" and 0.3 < float(row[1]) <= 1.0
    assert row[-1] == "1.00x"  # numpy against itself


def test_demo_unknown_backend(capsys):
    code, _, err = run(capsys, "demo", "--backends", "numpy,tpu")
    assert_one_line_error(code, err, "unknown backend 'tpu'")


def test_demo_unavailable_backend_is_skipped(capsys, monkeypatch):
    monkeypatch.setattr(fastnn, "available_backends", lambda: ["python", "numpy"])
    use, skipped = cli._available_demo_backends(["numpy", "numba", "auto"])
    assert use == ["numpy", "auto"] and skipped == ["numba"]


def test_demo_table_ratios():
    rows = [
        {"backend": "numpy", "test_accuracy": 0.8401, "train_time": 4.0, "epochs": 10},
        {"backend": "numba", "test_accuracy": 0.8412, "train_time": 2.5, "epochs": 10},
    ]
    text = cli.format_demo_table(rows, "numpy")
    lines = text.splitlines()
    assert "speed vs numpy" in lines[0]
    # 4.0 s / 2.5 s = 1.6x faster; s/epoch 0.25.
    assert lines[3].split() == ["numba", "0.8412", "2.50", "s", "0.250", "1.60x"]
    assert lines[2].split()[-1] == "1.00x"
    assert "speed vs" not in cli.format_demo_table(rows, "auto")


# -------------------------------------------------------------- warmup & bench


def test_warmup(capsys, monkeypatch):
    from fastnn.dispatch import runtime

    calls = []
    monkeypatch.setattr(runtime, "warmup", lambda: calls.append(1) or 1.25)
    code, out, _ = run(capsys, "warmup")
    assert code == 0 and calls == [1]
    # One line, the elapsed time: no stray float from warmup()'s return value.
    assert out.strip().splitlines() == ["warm-up done in 1.25 s"]


def test_bench_passes_arguments_through(capsys, monkeypatch):
    from fastnn.tools import bench

    seen = []
    monkeypatch.setattr(bench, "main", lambda argv: seen.append(argv) or 3)
    code = cli.main(["bench", "--quick", "--only", "ops", "-h"])
    assert code == 3
    assert seen == [["--quick", "--only", "ops", "-h"]]


def test_help_lists_every_command(capsys):
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    for command in cli.COMMANDS:
        assert command in out


# --------------------------------------------------------------- console script


def test_console_script_entry_point():
    exe = Path(sys.executable).with_name("fastnn")
    script = str(exe) if exe.exists() else shutil.which("fastnn")
    if script is None:
        pytest.skip("fastnn console script not installed")
    done = subprocess.run(
        [script, "example", "gates", "--backend", "numpy"], capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "NAND predictions [1, 1, 1, 0]" in done.stdout
    bad = subprocess.run([script, "train", "--epochs", "-1"], capture_output=True, text=True)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1
