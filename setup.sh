#!/usr/bin/env bash
# Set up a fresh Debian machine (Python >= 3.10, no GPU needed): headless GL, the CPU torch wheel, then
# the project with its dev extras. Safe to re-run. Use PYTHON=... to choose the interpreter.
set -euo pipefail
cd "$(dirname "$0")"
PYTHON=${PYTHON:-python3}
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
if command -v apt-get >/dev/null 2>&1; then
  pkgs="libegl1 libegl-mesa0 libgl1-mesa-dri libopengl0 libosmesa6"
  if ! dpkg -s $pkgs >/dev/null 2>&1; then
    # apt and debconf chatter (e.g. "debconf: delaying package configuration") goes to a log, shown only
    # when apt fails, so the user sees one line per step
    echo "installing the headless GL libraries: $pkgs"
    aptlog=$(mktemp)
    if ! { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq \
           -o Dpkg::Use-Pty=0 $pkgs; } >"$aptlog" 2>&1; then
      cat "$aptlog" >&2
      echo "setup.sh: apt-get could not install $pkgs (output above)" >&2
      exit 1
    fi
    rm -f "$aptlog"
  fi
fi
# torch first and on its own: a bare `torch` requirement would pull several GB of CUDA packages.
"$PYTHON" -m pip install -q "torch==2.13.0"
"$PYTHON" -m pip install -q -e ".[dev]"
"$PYTHON" - <<'PY'
import tasks, mujoco, torch
print(f"video-reward-bench ready: torch {torch.__version__}, mujoco {mujoco.__version__}, MUJOCO_GL={__import__('os').environ['MUJOCO_GL']}")
PY
