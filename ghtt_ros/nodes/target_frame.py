"""`target_frame`: the pipeline's outputs expressed in a robot frame (e.g. base_link) instead of the camera frame.

The camera -> target transform is static: either given as a parameter (x, y, z, qx, qy, qz, qw, as
static_transform_publisher takes it) or looked up in the robot's /tf_static (any chain of static transforms, read with
plain rclpy: tf2_ros is not installable from PyPI). The model itself always runs in the camera frame it was trained
in; only its outputs are moved.
"""

from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from tf2_msgs.msg import TFMessage

from ghtt_ros.nodes.parameters import ParameterSpec
from ghtt_ros.transforms import RigidTransform, StaticFrameTree

TF_STATIC_TOPIC = "/tf_static"
# As tf2's static listener: latched, so transforms published before this node started arrive too.
TF_STATIC_QOS = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE,
                           durability=DurabilityPolicy.TRANSIENT_LOCAL)
TRANSFORM_SOURCES = ("tf_static", "parameter")

TARGET_FRAME_PARAMETERS = (
    ParameterSpec("target_frame", "", "Frame of all outputs (e.g. base_link). Empty: outputs stay in the frame of "
                  "the input poses (the camera optical frame)."),
    ParameterSpec("target_transform_source", "tf_static", "Where the input frame -> target_frame transform comes "
                  "from: tf_static (the robot's /tf_static, chains of static transforms resolved) or parameter "
                  "(target_transform).", choices=TRANSFORM_SOURCES),
    ParameterSpec("target_transform", [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0], "x, y, z (m), qx, qy, qz, qw: the pose "
                  "of the input (camera) frame in target_frame, as static_transform_publisher takes it; used with "
                  "target_transform_source parameter."),
)


def transform_parameter(values):
    """The target_transform parameter -> RigidTransform (ValueError with the expected layout)."""
    values = list(values)
    if len(values) != 7:
        raise ValueError(f"parameter target_transform: expected 7 values [x, y, z, qx, qy, qz, qw], got {values}")
    return RigidTransform.from_translation_quaternion(values[:3], values[3:])


class TargetFrame:
    """The transform from an output's source frame to target_frame, while the node is active."""

    def __init__(self, node, params):
        self.frame = params["target_frame"]
        self._node = node
        self._fixed = None
        self._tree = None
        self._subscription = None
        if not self.frame:
            return
        if params["target_transform_source"] == "parameter":
            self._fixed = transform_parameter(params["target_transform"])
        else:
            self._tree = StaticFrameTree()
            self._subscription = node.create_subscription(TFMessage, TF_STATIC_TOPIC, self._on_tf_static,
                                                          TF_STATIC_QOS)

    def _on_tf_static(self, msg):
        for stamped in msg.transforms:
            try:
                self._tree.add(stamped.header.frame_id, stamped.child_frame_id,
                               RigidTransform.from_msg(stamped.transform))
            except ValueError as error:
                self._node.get_logger().warning(f"ignored /tf_static transform {stamped.header.frame_id} -> "
                                                f"{stamped.child_frame_id}: {error}", throttle_duration_sec=10.0)

    def transform_from(self, source_frame):
        """RigidTransform from source_frame to target_frame (identity without a target frame); None while
        /tf_static has not connected the two frames yet."""
        if not self.frame:
            return RigidTransform.identity()
        if self._fixed is not None:
            return self._fixed
        return self._tree.lookup(self.frame, source_frame)

    def close(self):
        if self._subscription is not None:
            self._node.destroy_subscription(self._subscription)
            self._subscription = None
