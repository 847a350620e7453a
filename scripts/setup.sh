#!/usr/bin/env bash
# Idempotent machine setup for the suite: system audio tools, the two Python stacks and their Jupyter kernels.
# Virtual environments live in a cache outside the clone, keyed by a hash of the locked requirement file,
# so fresh clones reuse them; .venv and .venv-parler in the clone are symbolic links into that cache.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${TTS_SUITE_CACHE:-$HOME/.cache/tts-suite}
PY=${PYTHON:-python3}
UV_VERSION=0.13.8
mkdir -p "$CACHE/venvs"

log() { printf '[setup] %s\n' "$*"; }

install_system_packages() {
  local need=()
  command -v espeak-ng >/dev/null || need+=(espeak-ng)
  command -v ffmpeg >/dev/null || need+=(ffmpeg)
  ldconfig -p 2>/dev/null | grep -q libsndfile || need+=(libsndfile1)
  [ ${#need[@]} -eq 0 ] && return 0
  log "installing Debian packages: ${need[*]}"
  local sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
}

ensure_uv() {
  UV="$CACHE/tools/bin/uv"
  if [ ! -x "$UV" ] || ! "$UV" --version | grep -q "$UV_VERSION"; then
    log "installing uv $UV_VERSION into $CACHE/tools"
    "$PY" -m venv "$CACHE/tools"
    "$CACHE/tools/bin/pip" install -q "uv==$UV_VERSION"
  fi
  export UV_CACHE_DIR="$CACHE/uv" UV_LINK_MODE=hardlink UV_PYTHON_DOWNLOADS=never
}

# make_env NAME REQUIREMENTS LINK: build (once) the venv for REQUIREMENTS and point LINK at it.
make_env() {
  local name=$1 req=$2 link=$3 key dir
  key=$( { cat "$ROOT/$req"; "$PY" -c 'import sys; print(sys.version)'; echo "$UV_VERSION bytecode"; } | sha256sum | cut -c1-16)
  dir="$CACHE/venvs/$name-$key"
  (
    flock 9
    if [ ! -f "$dir/.complete" ]; then
      log "building $name environment from $req in $dir (several GB, a few minutes)"
      rm -rf "$dir"
      "$UV" venv -q --python "$PY" "$dir"
      # bytecode compiled at install: imports stay fast where PYTHONDONTWRITEBYTECODE=1 forbids caching later
      "$UV" pip sync -q --compile-bytecode --python "$dir/bin/python" "$ROOT/$req"
      touch "$dir/.complete"
    fi
  ) 9>"$CACHE/venvs/$name.lock"
  ln -sfn "$dir" "$ROOT/$link"
  log "$link -> $dir"
}

# register_kernel NAME LINK TITLE: a kernelspec that runs LINK's python with this clone on PYTHONPATH.
register_kernel() {
  local name=$1 link=$2 title=$3 d
  for d in "$ROOT/build/jupyter/kernels/$name" "${JUPYTER_DATA_DIR:-$HOME/.local/share/jupyter}/kernels/$name"; do
    mkdir -p "$d"
    cat >"$d/kernel.json" <<JSON
{
  "argv": ["$ROOT/$link/bin/python", "-m", "ipykernel_launcher", "-f", "{connection_file}"],
  "display_name": "$title",
  "language": "python",
  "env": {"PYTHONPATH": "$ROOT", "PYTHONUNBUFFERED": "1"},
  "metadata": {"debugger": true}
}
JSON
  done
}

install_system_packages
ensure_uv
make_env main requirements.txt .venv
make_env parler requirements-parler.txt .venv-parler
register_kernel tts-main .venv "TTS main stack (coqui, kokoro, pocket)"
register_kernel tts-parler .venv-parler "TTS parler stack (transformers 4.46.1)"
log "ready"
