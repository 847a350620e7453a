#!/usr/bin/env bash
# Idempotent machine setup for the suite: system audio tools, the locked Python stacks (built by
# nbhelpers/stacks.py, the same code a notebook's set-up cell runs on Kaggle/Colab) and the plain notebook kernel.
# Stacks live in a cache outside the clone, keyed by the lock's sha256, so fresh clones reuse them; .venv,
# .venv-parler and .venv-kernel in the clone are symbolic links into that cache.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PY=${PYTHON:-python3}

log() { printf '[setup] %s\n' "$*"; }

install_system_packages() {
  local need=()
  command -v espeak-ng >/dev/null || need+=(espeak-ng)
  command -v ffmpeg >/dev/null || need+=(ffmpeg)
  ldconfig -p 2>/dev/null | grep -q libsndfile || need+=(libsndfile1)
  command -v chromium >/dev/null || need+=(chromium)  # tests/suite/test_student_view.py opens the notebooks in it
  fc-list 2>/dev/null | grep -q "Noto Sans Kannada" || need+=(fonts-noto-core)  # Kannada/Bangla text in its screenshots
  [ ${#need[@]} -eq 0 ] && return 0
  log "installing Debian packages: ${need[*]}"
  local sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
}

# register_kernel: the plain "python3" kernel the notebooks name (as on Kaggle and Colab), on the kernel stack:
# ipykernel at Kaggle's versions and nothing heavy, so a notebook that imports torch into the kernel fails here too.
register_kernel() {
  local d="$ROOT/build/jupyter/kernels/python3"
  mkdir -p "$d"
  cat >"$d/kernel.json" <<JSON
{
  "argv": ["$ROOT/.venv-kernel/bin/python", "-Xfrozen_modules=off", "-m", "ipykernel_launcher", "-f", "{connection_file}"],
  "display_name": "Python 3",
  "language": "python",
  "env": {"PYTHONUNBUFFERED": "1"},
  "metadata": {"debugger": true}
}
JSON
}

install_system_packages
PYTHONPATH="$ROOT" "$PY" -m nbhelpers.stacks build main parler kernel --link
register_kernel
log "ready"
