"""hand_estimator node: sensor_msgs/Image (+ CameraInfo, optional depth) -> ghtt/TwoHandPose per processed frame.

Images arrive with sensor-data QoS (best effort, depth 1). A worker thread estimates the newest pending image only:
an image that arrives while another waits replaces it and is counted as skipped, so latency stays one frame and memory
stays bounded however slow the estimator is. The output copies the image's stamp and frame_id.
"""

import time

from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from rclpy.qos_overriding_options import QoSOverridingOptions
from sensor_msgs.msg import CameraInfo, Image

from ghtt_core.estimator.camera import CameraIntrinsics
from ghtt_ros.convert import TwoHandArrays, stamp_to_ns, two_hand_pose_to_msg
from ghtt_ros.frame_worker import FrameWorker
from ghtt_ros.images import camera_info_to_intrinsics, depth_to_metres, image_to_rgb
from ghtt_ros.node_base import GhttNode, run_node
from ghtt_ros.parameters import ParameterSpec
from ghtt.msg import TwoHandPose

BACKENDS = ("mediapipe", "resnet")
IMAGE_QOS = QoSProfile(depth=1, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.BEST_EFFORT)
OUTPUT_QOS = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)

ESTIMATOR_PARAMETERS = (
    ParameterSpec("backend", "mediapipe", "Hand estimator: mediapipe (off the shelf) or resnet (trained ghtt "
                  "estimator, needs estimator_checkpoint).", choices=BACKENDS),
    ParameterSpec("estimator_checkpoint", "", "ResNet estimator checkpoint (backend resnet)."),
    ParameterSpec("model_complexity", 1, "MediaPipe landmark model: 0 lite, 1 full.", 0, 1),
    ParameterSpec("min_detection_confidence", 0.5, "MediaPipe hand detection threshold.", 0.0, 1.0),
    ParameterSpec("min_tracking_confidence", 0.5, "MediaPipe landmark tracking threshold.", 0.0, 1.0),
    ParameterSpec("image_is_mirrored", False, "True only for mirrored (selfie preview) images: swaps handedness."),
    ParameterSpec("default_horizontal_fov_deg", 60.0, "Field of view assumed while no valid CameraInfo is known.",
                  1.0, 179.0),
    ParameterSpec("use_camera_info", True, "Use intrinsics from the camera_info topic when it has a calibration."),
    ParameterSpec("use_depth", False, "Subscribe to `depth` (REP-118 16UC1 mm or 32FC1 m, aligned to the image) and "
                  "place hands with measured depth."),
    ParameterSpec("depth_max_skew_s", 0.02, "A depth image is used for a colour image when their stamps differ by at "
                  "most this.", 0.0, 1.0),
)


class HandEstimatorNode(GhttNode):
    USES_TORCH = True
    PARAMETERS = ESTIMATOR_PARAMETERS

    def __init__(self, node_name="hand_estimator", **node_options):
        super().__init__(node_name, **node_options)
        self.estimator = None
        self._inputs = []
        self._output = None
        self._camera_info = None
        self._depth = None
        self._last_stamp_ns = None

    def configure(self, params):
        if params["backend"] == "resnet" and not params["estimator_checkpoint"]:
            raise ValueError("backend resnet needs the estimator_checkpoint parameter")
        self._output = self.create_lifecycle_publisher(
            TwoHandPose, "hands", OUTPUT_QOS, qos_overriding_options=QoSOverridingOptions.with_default_policies())

    def activate(self):
        self.estimator = self._build_estimator(self.params)
        self._camera_info, self._depth, self._last_stamp_ns = None, None, None
        self.worker = FrameWorker(self._process_image, 1,
                                  lambda msg, error: self.on_worker_error(stamp_to_ns(msg.header.stamp), error),
                                  name=f"{self.get_name()}-estimator")
        overrides = QoSOverridingOptions.with_default_policies()
        self._inputs = [
            self.create_subscription(Image, "image", self._on_image, IMAGE_QOS, qos_overriding_options=overrides),
            self.create_subscription(CameraInfo, "camera_info", self._on_camera_info, qos_profile_sensor_data),
        ]
        if self.params["use_depth"]:
            self._inputs.append(self.create_subscription(Image, "depth", self._on_depth, IMAGE_QOS))

    def _build_estimator(self, params):
        if params["backend"] == "resnet":
            from ghtt_core.estimator.resnet_estimator import ResNetHandEstimator

            estimator = ResNetHandEstimator.from_checkpoint(params["estimator_checkpoint"], device=self.device)
            estimator.default_horizontal_fov_deg = params["default_horizontal_fov_deg"]
            return estimator
        from ghtt_core.estimator.mediapipe_backend import MediaPipeConfig, MediaPipeHandEstimator

        return MediaPipeHandEstimator(MediaPipeConfig(
            model_complexity=params["model_complexity"],
            min_detection_confidence=params["min_detection_confidence"],
            min_tracking_confidence=params["min_tracking_confidence"],
            image_is_mirrored=params["image_is_mirrored"],
            default_horizontal_fov_deg=params["default_horizontal_fov_deg"],
        ))

    def deactivate(self):
        for subscription in self._inputs:
            self.destroy_subscription(subscription)
        self._inputs = []
        if self.worker is not None:
            self.worker.stop()
            self.worker = None
        if self.estimator is not None and hasattr(self.estimator, "close"):
            self.estimator.close()
        self.estimator = None

    def cleanup(self):
        if self._output is not None:
            self.destroy_lifecycle_publisher(self._output)
            self._output = None

    # ---- input -------------------------------------------------------------------------------------------------

    def _on_camera_info(self, msg):
        self._camera_info = msg

    def _on_depth(self, msg):
        self._depth = msg

    def _on_image(self, msg):
        self.stats.on_input(time.monotonic())
        self.hand_to_worker(msg)

    # ---- processing (worker thread) ----------------------------------------------------------------------------

    def _process_image(self, msg):
        started = time.monotonic()
        stamp_ns = stamp_to_ns(msg.header.stamp)
        if stamp_ns == 0:
            self.drop("zero_stamp", "image with stamp 0 (camera driver does not stamp its images?)")
            return
        try:
            rgb = image_to_rgb(msg)
        except ValueError as error:
            self.drop("bad_image", str(error))
            return
        if self._last_stamp_ns is not None and stamp_ns <= self._last_stamp_ns:
            # A replay restarted or the stream jumped back: forget tracking so hands are detected afresh.
            self.stats.on_event("stamp_backwards")
            self.get_logger().warning("image stamp did not increase: tracking reset", throttle_duration_sec=2.0)
            self.estimator.reset()
        self._last_stamp_ns = stamp_ns
        intrinsics = self._intrinsics(rgb.shape[1], rgb.shape[0])
        try:
            hands = self.estimator.estimate(rgb, intrinsics=intrinsics,
                                            depth=self._matching_depth(stamp_ns, rgb.shape), stamp=stamp_ns)
        except ValueError as error:  # e.g. an image too small to hold a hand
            self.drop("estimation_failed", str(error))
            return
        self._output.publish(two_hand_pose_to_msg(TwoHandArrays(
            stamp_ns=stamp_ns, frame_id=msg.header.frame_id, joints=hands.joints, presence=hands.presence,
            confidence=hands.confidence)))
        self.record_published(stamp_ns, started)

    def _intrinsics(self, width, height):
        """The camera's calibration when known, else the default field of view (counted, so it shows up)."""
        info = self._camera_info
        if not self.params["use_camera_info"] or info is None:
            return CameraIntrinsics.from_fov(width, height, self.params["default_horizontal_fov_deg"])
        try:
            intrinsics = camera_info_to_intrinsics(info)
        except ValueError as error:
            self.stats.on_event("camera_info_invalid")
            self.get_logger().warning(f"{error}: using the default field of view", throttle_duration_sec=10.0)
            return CameraIntrinsics.from_fov(width, height, self.params["default_horizontal_fov_deg"])
        if (intrinsics.width, intrinsics.height) != (width, height):
            return intrinsics.scaled(width, height)
        return intrinsics

    def _matching_depth(self, stamp_ns, image_shape):
        depth = self._depth
        if not self.params["use_depth"] or depth is None:
            return None
        if abs(stamp_to_ns(depth.header.stamp) - stamp_ns) > self.params["depth_max_skew_s"] * 1e9:
            self.stats.on_event("depth_unmatched")
            return None
        try:
            metres = depth_to_metres(depth)
        except ValueError as error:
            self.drop("bad_depth", str(error))
            return None
        if metres.shape != image_shape[:2]:
            self.drop("bad_depth", f"depth {metres.shape} is not aligned to the image {image_shape[:2]}")
            return None
        return metres


def main(args=None):
    run_node(HandEstimatorNode, args)


if __name__ == "__main__":
    main()
