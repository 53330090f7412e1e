"""Packaging: ``kernels/`` installs as ``fastnn.kernels`` (never as a top-level
``kernels``, a name owned by an unrelated PyPI package), in regular and editable
installs; and CI runs exactly the README's test command."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: Not part of the package build: VCS data, environments, caches, build output.
SKIP = shutil.ignore_patterns(
    ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".hypothesis",
    ".pytest_cache", ".ruff_cache", ".asv", ".benchmarks", "report", "*.nbi", "*.nbc",
)  # fmt: skip


def source_modules() -> set[str]:
    """Every module file the package should ship, as installed paths (``fastnn/...``)."""
    files = {f"fastnn/{p.relative_to(ROOT / 'fastnn')}" for p in (ROOT / "fastnn").rglob("*.py")}
    files |= {
        f"fastnn/kernels/{p.relative_to(ROOT / 'kernels')}"
        for p in (ROOT / "kernels").rglob("*.py")
    }
    return {f for f in files if "__pycache__" not in f}


def clean_env(**extra) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "FASTNN_BACKEND")}
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def regular_install(tmp_path_factory) -> Path:
    """A regular (non-editable) install of a copy of the work tree into a temp dir.

    The copy keeps the build's ``build/`` directory and any stale files in it out of
    the work tree.
    """
    tmp = tmp_path_factory.mktemp("install")
    src, target = tmp / "src", tmp / "target"
    shutil.copytree(ROOT, src, ignore=SKIP)
    # Build with the environment's setuptools when it has one (offline, fast); venvs of
    # Python >= 3.12 ship without it, and then pip fetches it into an isolated build env.
    isolation = [] if importlib.util.find_spec("setuptools") is None else ["--no-build-isolation"]
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", *isolation, "--no-compile",
         "--disable-pip-version-check", "--quiet", "--target", str(target), str(src)],
        capture_output=True, text=True, timeout=300, env=clean_env(),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return target


def test_regular_install_layout(regular_install):
    assert (regular_install / "fastnn" / "kernels" / "__init__.py").is_file()
    assert not (regular_install / "kernels").exists()
    assert not (regular_install / "kernels.py").exists()
    installed = {
        str(p.relative_to(regular_install))
        for p in (regular_install / "fastnn").rglob("*.py")
        if "__pycache__" not in p.parts
    }
    missing = source_modules() - installed
    assert not missing, f"modules in the source tree but not in the install: {sorted(missing)}"
    assert (regular_install / "fastnn" / "py.typed").is_file()


def test_regular_install_imports(regular_install, tmp_path):
    code = (
        "import sys, fastnn.kernels, fastnn.kernels.contract, fastnn\n"
        "print(fastnn.kernels.__file__)\n"
        "print(fastnn.available_backends())\n"
        "import importlib.util\n"
        "spec = importlib.util.find_spec('kernels')\n"
        "print(spec.origin if spec else None)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
        env=clean_env(PYTHONPATH=str(regular_install)),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    kernels_file, backends, top_level = proc.stdout.splitlines()
    assert Path(kernels_file) == regular_install / "fastnn" / "kernels" / "__init__.py"
    assert "'python'" in backends and "'numpy'" in backends
    # A top-level `kernels` may exist in the environment, but never one of ours.
    assert top_level == "None" or str(regular_install) not in top_level


def test_editable_install_imports():
    """The current install (editable in development) maps fastnn.kernels to kernels/."""
    code = (
        "import fastnn.kernels, importlib.util\n"
        "print(fastnn.kernels.__file__)\n"
        "spec = importlib.util.find_spec('kernels')\n"
        "print(spec.origin if spec else None)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True, text=True, timeout=120, cwd="/tmp", env=clean_env(),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    kernels_file, top_level = proc.stdout.splitlines()
    path = Path(kernels_file)
    # Editable: the work tree's kernels/; regular: site-packages/fastnn/kernels/.
    assert path == ROOT / "kernels" / "__init__.py" or path.parts[-3:] == (
        "fastnn",
        "kernels",
        "__init__.py",
    )
    assert top_level == "None" or not top_level.startswith(str(ROOT))


def readme_test_command() -> str:
    """The fenced bash block that follows the README's "Tests" line."""
    text = (ROOT / "README.md").read_text()
    match = re.search(r"^(?:#+\s*)?Tests\b[^\n]*\n+```(?:bash|sh)\n(.*?)\n```", text, re.M | re.S)
    assert match, "README.md has no fenced bash block after a 'Tests' line"
    return match.group(1).strip()


def test_ci_runs_readme_test_command():
    command = readme_test_command()
    assert "pytest" in command and "ruff" in command
    ci_lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    for line in command.splitlines():
        assert line.strip() in ci_lines, f"{line!r} from README.md is not in .ci/run"
    assert os.access(ROOT / ".ci" / "run", os.X_OK)
