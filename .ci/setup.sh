#!/usr/bin/env bash
# Set up a fresh Debian/Ubuntu machine (Python >= 3.10) for fastnn: system
# packages (Fashion-MNIST data, Chromium for the dashboard tests), a virtual
# environment in .venv and the project installed into it, editable.
#   bash .ci/setup.sh          # runtime + benchmark tools (main job)
#   bash .ci/setup.sh test     # + test tools (pytest, hypothesis, ruff, selenium, scikit-learn,
#                              #   the dask extra) and PyTorch CPU as a reference
set -euo pipefail
cd "$(dirname "$0")/.."
extra="${1:-bench}"

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
if command -v apt-get >/dev/null; then
    pkgs="python3-venv dataset-fashion-mnist"
    if [ "$extra" = test ]; then pkgs="$pkgs chromium chromium-driver"; fi
    # shellcheck disable=SC2086
    if ! dpkg -s $pkgs >/dev/null 2>&1; then
        $SUDO apt-get update -q
        # shellcheck disable=SC2086
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q $pkgs
    fi
fi

PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then "$PY" -m venv .venv; fi
# setuptools>=64 and wheel: the packaging tests build without build isolation.
.venv/bin/python -m pip install -q --upgrade pip "setuptools>=64" wheel
.venv/bin/python -m pip install -q -e ".[$extra]"
# PyTorch is an optional benchmark peer and, in the tests, an independent reference
# (torch.optim updates); never a runtime dependency.
if [ "$extra" = test ] || [ "${FASTNN_WITH_TORCH:-0}" = 1 ]; then
    .venv/bin/python -m pip install -q "torch==2.13.0"
fi
