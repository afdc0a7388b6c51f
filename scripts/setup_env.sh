#!/usr/bin/env bash
# Creates ./.venv with muppet_hf installed editable, plus the test tools. Safe to re-run.
# PyTorch: a CPU build is enough for everything here; where pip can see a local CPU wheel of torch 2.13.0
# (as on this project's machines) it takes that one instead of downloading a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -c "import torch" 2>/dev/null || .venv/bin/python -m pip install -q "torch==2.13.0"
.venv/bin/python -m pip install -q -e ".[dev]"
.venv/bin/python -c "import muppet_hf, torch, transformers; print(f'muppet_hf ready: torch {torch.__version__}, transformers {transformers.__version__}')"
