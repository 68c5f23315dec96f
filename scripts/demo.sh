#!/usr/bin/env bash
# `make demo`: set up (idempotent), then run the whole ghtt graph on the built-in inputs (docs/demo.md).
# Extra arguments go to the demo, e.g. `bash scripts/demo.sh --speed 0 --actions 2`.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
bash scripts/setup.sh
# shellcheck source=ros_env.sh
source scripts/ros_env.sh
exec "$repo/.venv/bin/python" -m ghtt_ros.demo "$@"
