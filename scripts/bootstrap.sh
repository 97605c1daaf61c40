#!/usr/bin/env bash
# Create the project's virtual environment (.venv) if needed and install beamlearn into it.
# Usage: source scripts/bootstrap.sh [EXTRAS]   (EXTRAS e.g. "test"; idempotent and quick once done)
# On a machine without an NVIDIA GPU it installs the CPU build of torch (torch==2.13.0); with a GPU,
# the default (CUDA) build.
set -euo pipefail
_bl_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
_bl_venv="${BEAMLEARN_VENV:-$_bl_root/.venv}"
_bl_extras="${1:-}"
_bl_python="${PYTHON:-python3}"

if ! "$_bl_python" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "beamlearn needs Python >= 3.11; set PYTHON=/path/to/python3.11" >&2
  exit 1
fi
if [ ! -x "$_bl_venv/bin/python" ]; then
  echo "[bootstrap] creating virtual environment $_bl_venv"
  "$_bl_python" -m venv "$_bl_venv"
fi
# shellcheck disable=SC1091
. "$_bl_venv/bin/activate"

# The ray tracer (extra "rt", sionna-rt) needs LLVM on a CPU: Debian's libllvm19.
if [[ ",$_bl_extras," == *",rt,"* ]] && ! ls /usr/lib/*/libLLVM*.so.19* >/dev/null 2>&1 \
    && ! ls /usr/lib/llvm-19/lib/libLLVM*.so* >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "[bootstrap] installing libllvm19 (LLVM backend of the Sionna RT ray tracer on a CPU)"
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libllvm19 >/dev/null
  else
    echo "[bootstrap] warning: sionna-rt needs LLVM on a CPU; install Debian's libllvm19 (or set DRJIT_LIBLLVM_PATH)" >&2
  fi
fi

_bl_want="$(sha1sum "$_bl_root/pyproject.toml" | cut -d' ' -f1) extras=$_bl_extras"
if [ "$(cat "$_bl_venv/.beamlearn-stamp" 2>/dev/null || true)" != "$_bl_want" ]; then
  echo "[bootstrap] installing beamlearn${_bl_extras:+[$_bl_extras]} into $_bl_venv"
  python -m pip install -q --upgrade pip
  if ! python -c 'import torch' 2>/dev/null; then
    if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
      python -m pip install -q torch
    else
      python -m pip install -q torch==2.13.0 || python -m pip install -q torch
    fi
  fi
  python -m pip install -q -e "$_bl_root${_bl_extras:+[$_bl_extras]}"
  echo "$_bl_want" > "$_bl_venv/.beamlearn-stamp"
fi
