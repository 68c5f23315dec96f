# Sourced by the test, demo and runner scripts: DDS stays on loopback, logs stay inside build/, no hub access.
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export ROS_AUTOMATIC_DISCOVERY_RANGE="${ROS_AUTOMATIC_DISCOVERY_RANGE:-LOCALHOST}"
export ROS_DOMAIN_ID="${ROS_DOMAIN_ID:-$(( ($$ % 100) + 1 ))}"
export ROS_HOME="${ROS_HOME:-$repo/build/ros_home}"
export ROS_LOG_DIR="${ROS_LOG_DIR:-$ROS_HOME/log}"
# A 16 MB shared-memory segment so full camera images are delivered (the default 512 KB loses most of them).
export FASTDDS_DEFAULT_PROFILES_FILE="${FASTDDS_DEFAULT_PROFILES_FILE:-$repo/config/fastdds_large_messages.xml}"
export HF_HUB_OFFLINE=1
export TRANSFORMERS_OFFLINE=1
export MPLBACKEND="${MPLBACKEND:-Agg}"
mkdir -p "$ROS_LOG_DIR"
