"""QoS of the nodes' topics. Inputs from other programs (hand trackers, cameras) accept best-effort publishers by
default, as sensor data usually is: a best-effort reader matches best-effort and reliable writers alike, a reliable
reader only reliable ones (yolo_ros has the same switch as `image_reliability`)."""

from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy

from ghtt_ros.nodes.parameters import ParameterSpec

OUTPUT_QOS = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
RELIABILITIES = {"best_effort": ReliabilityPolicy.BEST_EFFORT, "reliable": ReliabilityPolicy.RELIABLE}

INPUT_RELIABILITY_PARAMETER = ParameterSpec(
    "input_reliability", "best_effort", "QoS reliability of the ghtt inputs: best_effort (default: matches best-effort "
    "and reliable publishers) or reliable (only reliable publishers; retransmits lost samples).",
    choices=tuple(RELIABILITIES))


def input_qos(reliability, depth):
    return QoSProfile(depth=depth, history=HistoryPolicy.KEEP_LAST, reliability=RELIABILITIES[reliability])
