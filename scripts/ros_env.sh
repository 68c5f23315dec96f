# Sourced by users and by the test, demo and runner scripts: DDS stays on loopback, logs stay inside build/, no hub
# access. ROS_DOMAIN_ID is left as it is: unset means ROS's default domain 0, so every terminal that sources this file
# talks to the others (export one fixed id, the same in every terminal, to keep away from other ROS users on a
# shared machine). Only the test suite picks a domain of its own per run (test/conftest.py).
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export ROS_AUTOMATIC_DISCOVERY_RANGE="${ROS_AUTOMATIC_DISCOVERY_RANGE:-LOCALHOST}"
export ROS_HOME="${ROS_HOME:-$repo/build/ros_home}"
export ROS_LOG_DIR="${ROS_LOG_DIR:-$ROS_HOME/log}"
# A 16 MB shared-memory segment so full camera images are delivered (the default 512 KB loses most of them).
export FASTDDS_DEFAULT_PROFILES_FILE="${FASTDDS_DEFAULT_PROFILES_FILE:-$repo/config/fastdds_large_messages.xml}"
export HF_HUB_OFFLINE=1
export TRANSFORMERS_OFFLINE=1
export MPLBACKEND="${MPLBACKEND:-Agg}"
mkdir -p "$ROS_LOG_DIR"
