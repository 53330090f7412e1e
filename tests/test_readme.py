"""The README's example runs as written and shows what it claims."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def _python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_ten_line_example_solves_xor_identically_on_every_backend(tmp_path):
    example = _python_blocks()[0]
    assert "available_backends" in example
    # The python backend is slow but the example is tiny; run it as a user would.
    out = subprocess.run(
        [sys.executable, "-c", example], capture_output=True, text=True, cwd=tmp_path, timeout=600
    )
    assert out.returncode == 0, out.stderr
    rows = [line.split(maxsplit=1) for line in out.stdout.strip().splitlines()]
    backends = [r[0] for r in rows]
    assert {"python", "numpy"} <= set(backends)
    predictions = {r[0]: [float(x) for x in re.findall(r"[-\d.]+", r[1])] for r in rows}
    for backend, p in predictions.items():
        # XOR learned: outputs rounded to 2 decimals fall on the right side of 0.5
        assert [v > 0.5 for v in p] == [False, True, True, False], (backend, p)
    # "same numbers on every backend": the rounded predictions coincide.
    assert len({tuple(p) for p in predictions.values()}) == 1, predictions


def test_scikit_learn_example_runs_a_grid_search(tmp_path):
    (example,) = [b for b in _python_blocks() if "GridSearchCV" in b and "digits" in b]
    out = subprocess.run(
        [sys.executable, "-c", example], capture_output=True, text=True, cwd=tmp_path, timeout=600
    )
    assert out.returncode == 0, out.stderr
    params, score = out.stdout.strip().rsplit(" ", 1)
    assert "mlpclassifier__hidden_layer_sizes" in params
    assert float(score) > 0.9  # digits with a scaled MLP: scikit-learn's own reaches ~0.97
