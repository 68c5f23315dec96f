#!/usr/bin/env bash
# Sets up if needed, then runs the whole test suite. Extra arguments go to pytest (e.g. -k convert).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$repo/scripts/setup.sh"
source "$repo/scripts/ros_env.sh"
cd "$repo"
exec "$repo/.venv/bin/python" -m pytest "$@"
