#!/usr/bin/env bash
# Create .venv and install toyformer into it, keeping a CPU build of torch on CPU machines.
# Re-running is cheap: nothing is reinstalled unless pyproject.toml changed.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "setup: $PY is $("$PY" --version 2>&1); toyformer needs Python >= 3.11 (set PYTHON=python3.11)" >&2
  exit 2
fi
[ -x .venv/bin/python ] || "$PY" -m venv .venv
stamp=.venv/.toyformer-installed
if [ -f "$stamp" ] && cmp -s pyproject.toml "$stamp"; then exit 0; fi
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    .venv/bin/pip install -q "torch>=2.4"        # a CUDA machine: pip's default build
  else
    # CPU machine: pin the CPU build (on this workplace a local wheel). An open range would
    # make pip pick a newer CUDA build and download gigabytes of CUDA libraries.
    .venv/bin/pip install -q torch==2.13.0
  fi
fi
.venv/bin/pip install -q -e ".[dev]"
cp pyproject.toml "$stamp"
