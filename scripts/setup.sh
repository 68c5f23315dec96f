#!/usr/bin/env bash
# Sets up everything ghtt needs in ./.venv: pinned Python dependencies (ROS 2 Kilted wheels, PyTorch, ...), the ghtt
# messages built with CMake into the venv, and the project installed editable. Idempotent: each step runs only when
# its inputs changed since the last successful run (hashes in .venv/.ghtt-stamps/).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
venv="$repo/.venv"
stamps="$venv/.ghtt-stamps"
say() { printf '[setup] %s\n' "$*"; }

python_bin="${GHTT_PYTHON:-}"
if [ -z "$python_bin" ]; then
  for candidate in python3.11 python3; do
    if command -v "$candidate" >/dev/null && "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
      python_bin="$(command -v "$candidate")"; break
    fi
  done
fi
[ -n "$python_bin" ] || { echo "[setup] error: Python 3.11 not found (set GHTT_PYTHON=/path/to/python3.11)" >&2; exit 1; }

hash_of() { cat "$@" | sha256sum | cut -d' ' -f1; }
is_current() { [ -f "$stamps/$1" ] && [ "$(cat "$stamps/$1")" = "$2" ]; }
mark() { mkdir -p "$stamps"; echo "$2" > "$stamps/$1"; }

if [ ! -x "$venv/bin/python" ]; then
  say "creating virtual environment .venv with $python_bin"
  "$python_bin" -m venv "$venv"
fi
py="$venv/bin/python"
site="$("$py" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"

deps_hash="$(hash_of requirements/base.txt requirements/pip-only.txt requirements/lock.txt)"
if is_current deps "$deps_hash"; then
  say "dependencies up to date"
else
  say "installing pinned dependencies (ROS 2 Kilted wheels, torch 2.14.1, mediapipe, ...): 2-4 min, ~7 GB"
  "$py" -m pip install --disable-pip-version-check -q -r requirements/base.txt -c requirements/lock.txt 2>&1 \
    | grep -v "^WARNING: Location 'file:" || true
  "$py" -c "import torch, rclpy, cv2, mediapipe, rosbags" || { echo "[setup] error: dependency install failed" >&2; exit 1; }
  mark deps "$deps_hash"
fi

# ament_index look-ups and colcon need AMENT_PREFIX_PATH; let the venv provide it without exports.
cat > "$site/ghtt_ament_prefix.pth" <<'PTH'
import os, sys; _p = os.environ.get("AMENT_PREFIX_PATH", ""); os.environ["AMENT_PREFIX_PATH"] = _p if sys.prefix in _p.split(os.pathsep) else os.pathsep.join(x for x in (sys.prefix, _p) if x)
PTH

# build_interfaces SOURCE_DIR NAME [cmake options]: an interface package built with CMake into the venv.
build_interfaces() {
  local source="$1" name="$2"; shift 2
  rm -rf "build/$name" && mkdir -p build
  PATH="$venv/bin:$PATH" AMENT_PREFIX_PATH="$venv" cmake -S "$source" -B "build/$name" -DCMAKE_INSTALL_PREFIX="$venv" \
    -DCMAKE_PREFIX_PATH="$venv" -DPython3_EXECUTABLE="$py" -DBUILD_TESTING=OFF "$@" > "build/$name.log" 2>&1 \
    || { tail -40 "build/$name.log"; echo "[setup] error: cmake configure of $name failed (build/$name.log)" >&2; exit 1; }
  PATH="$venv/bin:$PATH" cmake --build "build/$name" -j2 >> "build/$name.log" 2>&1 \
    || { tail -40 "build/$name.log"; echo "[setup] error: build of $name failed (build/$name.log)" >&2; exit 1; }
  cmake --install "build/$name" >> "build/$name.log" 2>&1
}

# No tf2_msgs wheel exists; the nodes read /tf_static with its TFMessage type (vendor/tf2_msgs, same definition).
tf2_hash="$(hash_of vendor/tf2_msgs/msg/*.msg vendor/tf2_msgs/CMakeLists.txt vendor/tf2_msgs/package.xml)"
if is_current tf2_msgs "$tf2_hash" && "$py" -c "import tf2_msgs.msg" 2>/dev/null; then
  say "tf2_msgs up to date"
else
  say "building tf2_msgs (TFMessage) with CMake into .venv"
  build_interfaces vendor/tf2_msgs tf2_msgs
  "$py" -c "from tf2_msgs.msg import TFMessage" || { echo "[setup] error: tf2_msgs.msg does not import" >&2; exit 1; }
  mark tf2_msgs "$tf2_hash"
fi

msg_hash="$(hash_of msg/*.msg CMakeLists.txt package.xml)"
if is_current msgs "$msg_hash" && "$py" -c "import ghtt.msg" 2>/dev/null; then
  say "messages up to date"
else
  say "building ghtt messages with CMake into .venv"
  build_interfaces . msgs -DGHTT_INSTALL_PYTHON=OFF
  "$py" -c "from ghtt.msg import MotionPrediction" || { echo "[setup] error: ghtt.msg does not import" >&2; exit 1; }
  mark msgs "$msg_hash"
fi

project_hash="$(hash_of setup.py)"
if is_current project "$project_hash" && "$py" -c "import ghtt_core, ghtt_ros" 2>/dev/null; then
  say "ghtt (editable) up to date"
else
  say "installing ghtt (editable)"
  "$py" -m pip install --disable-pip-version-check -q --no-deps --no-build-isolation -e . 2>&1 \
    | grep -v "^WARNING: Location 'file:" || true
  mark project "$project_hash"
fi
say "ready: $venv ($(du -sh "$venv" 2>/dev/null | cut -f1))"
