"""hand_estimator node: sensor_msgs/Image (+ CameraInfo, optional depth) -> ghtt/TwoHandPose per processed frame.

Images arrive with sensor-data QoS (best effort, depth 1). A worker thread estimates the newest pending image only:
an image that arrives while another waits replaces it and is counted as skipped, so latency stays one frame and memory
stays bounded however slow the estimator is. The output copies the image's stamp and frame_id.

The per-image logic (stamp checks, tracking reset, intrinsics from CameraInfo or the default field of view, depth
matching, the estimator call) is ghtt_core.estimator.stream.ImageStreamEstimator; `estimate_image` feeds it one
message, here and in the offline mode of the bag evaluation. The image and camera_info subscriptions accept
`qos_overrides./<ns>/image.subscription.reliability` etc. (the bag evaluation makes both reliable).
"""

import time

from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from rclpy.qos_overriding_options import QoSOverridingOptions
from sensor_msgs.msg import CameraInfo, Image

from ghtt_core.estimator.stream import BACKENDS, FrameEstimate, ImageStreamEstimator
from ghtt_ros.convert import TwoHandArrays, stamp_to_ns, two_hand_pose_to_msg
from ghtt_ros.nodes.frame_worker import FrameWorker
from ghtt_ros.nodes.image_transport import missing_images_advice
from ghtt_ros.images import camera_info_to_intrinsics, depth_to_metres, image_to_rgb
from ghtt_ros.nodes.base import GhttNode, run_node
from ghtt_ros.nodes.parameters import ParameterSpec
from ghtt_ros.nodes.qos import OUTPUT_QOS
from ghtt_ros.nodes.rate_limit import StampRateLimiter
from ghtt.msg import TwoHandPose

IMAGE_QOS = QoSProfile(depth=1, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.BEST_EFFORT)

ESTIMATOR_PARAMETERS = (
    ParameterSpec("backend", "mediapipe", "Hand estimator: mediapipe (off the shelf) or resnet (trained ghtt "
                  "estimator, needs estimator_checkpoint).", choices=BACKENDS),
    ParameterSpec("estimator_checkpoint", "", "ResNet estimator checkpoint (backend resnet)."),
    ParameterSpec("model_complexity", 1, "MediaPipe landmark model: 0 lite, 1 full.", 0, 1),
    ParameterSpec("min_detection_confidence", 0.5, "MediaPipe hand detection threshold.", 0.0, 1.0),
    ParameterSpec("min_tracking_confidence", 0.5, "MediaPipe landmark tracking threshold.", 0.0, 1.0),
    ParameterSpec("palm_detection_interval", 5, "MediaPipe: while fewer than two hands are tracked, look for a new "
                  "hand on every Nth image only (1 = every image: the palm detector then runs on every one-hand "
                  "image and doubles the cost).", 1, 100),
    ParameterSpec("image_is_mirrored", False, "True only for mirrored (selfie preview) images: swaps handedness."),
    ParameterSpec("default_horizontal_fov_deg", 60.0, "Field of view assumed while no valid CameraInfo is known.",
                  1.0, 179.0),
    ParameterSpec("use_camera_info", True, "Use intrinsics from the camera_info topic when it has a calibration."),
    ParameterSpec("use_depth", False, "Subscribe to `depth` (REP-118 16UC1 mm or 32FC1 m, aligned to the image) and "
                  "place hands with measured depth."),
    ParameterSpec("depth_max_skew_s", 0.02, "A depth image is used for a colour image when their stamps differ by at "
                  "most this.", 0.0, 1.0),
    ParameterSpec("max_rate_hz", 0.0, "Estimate at most this many images per second of source time (by image "
                  "stamp); the others are skipped (0 = as many as the estimator keeps up with).", 0.0, 1000.0,
                  runtime=True),
)
# CameraInfo messages keep coming but no image for this long: the images are probably lost in transport (too large).
MISSING_IMAGES_S = 3.0


def estimate_image(stream: ImageStreamEstimator, image_msg, camera_info=None, depth_msg=None) -> FrameEstimate:
    """The node's step for one Image message (+ the latest CameraInfo and depth Image): decodes the messages lazily
    and runs ImageStreamEstimator.process. The offline bag evaluation calls this too (ghtt_ros.bag.evaluation)."""
    depth, depth_stamp_ns = None, None
    if depth_msg is not None:
        depth, depth_stamp_ns = (lambda: depth_to_metres(depth_msg)), stamp_to_ns(depth_msg.header.stamp)
    return stream.process(stamp_to_ns(image_msg.header.stamp), lambda: image_to_rgb(image_msg),
                          calibration=None if camera_info is None else (lambda: camera_info_to_intrinsics(camera_info)),
                          depth=depth, depth_stamp_ns=depth_stamp_ns)


def estimate_to_msg(estimate: FrameEstimate, frame_id) -> TwoHandPose:
    """The TwoHandPose the node publishes for an estimate with hands (stamp and frame_id of the image)."""
    hands = estimate.hands
    return two_hand_pose_to_msg(TwoHandArrays(stamp_ns=estimate.stamp_ns, frame_id=frame_id, joints=hands.joints,
                                              presence=hands.presence, confidence=hands.confidence))


class HandEstimatorNode(GhttNode):
    USES_TORCH = True
    PARAMETERS = ESTIMATOR_PARAMETERS

    def __init__(self, node_name="hand_estimator", **node_options):
        super().__init__(node_name, **node_options)
        self.stream = None  # the ImageStreamEstimator while active
        self._inputs = []
        self._output = None
        self._camera_info = None  # the latest valid CameraInfo (None: default field of view)
        self._camera_info_problem = ""  # why the latest CameraInfo was not usable ("" when it was)
        self._depth = None
        self._rate_limiter = None
        self.camera_infos_received = 0  # CameraInfo messages received while active (the bag evaluation paces on it)
        self._info_without_image_s = None  # monotonic time of the first CameraInfo since the last image
        self.transport_problem = ""  # why images do not arrive while their CameraInfo does ("" when they do)

    def configure(self, params):
        if params["backend"] == "resnet" and not params["estimator_checkpoint"]:
            raise ValueError("backend resnet needs the estimator_checkpoint parameter")
        self._output = self.create_lifecycle_publisher(
            TwoHandPose, "hands", OUTPUT_QOS, qos_overriding_options=QoSOverridingOptions.with_default_policies())

    def activate(self):
        self.stream = ImageStreamEstimator.from_parameters(self.params, self.device)
        self._camera_info, self._camera_info_problem, self._depth = None, "", None
        self._info_without_image_s, self.transport_problem = None, ""
        self._rate_limiter = StampRateLimiter(self.params["max_rate_hz"])
        self.worker = FrameWorker(self._process_image, 1,
                                  lambda msg, error: self.on_worker_error(stamp_to_ns(msg.header.stamp), error),
                                  name=f"{self.get_name()}-estimator")
        overrides = QoSOverridingOptions.with_default_policies()
        image = self.subscribe(Image, "image", self._on_image, IMAGE_QOS, qos_overriding_options=overrides)
        self.watched_inputs = [image]
        self._inputs = [
            image,
            self.subscribe(CameraInfo, "camera_info", self._on_camera_info, qos_profile_sensor_data,
                           qos_overriding_options=overrides),
        ]
        if self.params["use_depth"]:
            self._inputs.append(self.subscribe(Image, "depth", self._on_depth, IMAGE_QOS))

    @property
    def estimator(self):
        """The HandEstimator backend while active (None otherwise)."""
        return None if self.stream is None else self.stream.estimator

    def deactivate(self):
        for subscription in self._inputs:
            self.destroy_subscription(subscription)
        self._inputs = []
        self.watched_inputs = []
        if self.stop_worker() and self.stream is not None:
            self.stream.close()
        self.stream = None

    def cleanup(self):
        if self._output is not None:
            self.destroy_lifecycle_publisher(self._output)
            self._output = None

    # ---- input -------------------------------------------------------------------------------------------------

    def _on_camera_info(self, msg):
        """A calibration is checked where it enters: an unusable one is counted (camera_info_invalid), logged when the
        camera starts sending such, and the default field of view is used until a valid one arrives."""
        self.camera_infos_received += 1
        self._check_images_arrive(msg)
        try:
            camera_info_to_intrinsics(msg)
        except ValueError as error:
            self.stats.on_event("camera_info_invalid")
            if not self._camera_info_problem:
                self.get_logger().warning(f"{error}: using the default field of view "
                                          f"({self.params['default_horizontal_fov_deg']} deg) until a valid one "
                                          "arrives")
            self._camera_info, self._camera_info_problem = None, str(error)
            return
        if self._camera_info_problem:
            self.get_logger().info("a valid CameraInfo arrived: using its calibration again")
        self._camera_info, self._camera_info_problem = msg, ""

    def _check_images_arrive(self, camera_info):
        now = time.monotonic()
        if self._info_without_image_s is None:
            self._info_without_image_s = now
        silent_s = now - self._info_without_image_s
        if silent_s > MISSING_IMAGES_S and not self.transport_problem and camera_info.width and camera_info.height:
            self.transport_problem = missing_images_advice(camera_info.width, camera_info.height, silent_s)
            self.stats.on_event("images_missing")
            self.get_logger().warning(self.transport_problem)

    def _on_depth(self, msg):
        self._depth = msg

    def _on_image(self, msg):
        self._info_without_image_s, self.transport_problem = None, ""
        unusable = self.on_input(stamp_to_ns(msg.header.stamp))
        if unusable:
            self.drop(unusable, f"image stamped {msg.header.stamp.sec} s {msg.header.stamp.nanosec} ns (camera "
                                "driver does not stamp its images?)")
            return
        if not self.input_enabled():
            return
        if not self._rate_limiter.allow(stamp_to_ns(msg.header.stamp)):
            self.stats.on_event("rate_limited")
            return
        self.hand_to_worker(msg)

    def apply_runtime_parameter(self, name, value):
        if name == "max_rate_hz" and self._rate_limiter is not None:
            self._rate_limiter.max_rate_hz = value

    def diagnostic_warning(self):
        return self.transport_problem or super().diagnostic_warning()

    # ---- processing (worker thread) ----------------------------------------------------------------------------

    def _process_image(self, msg):
        started = time.monotonic()
        stream = self.stream
        if stream is None:
            return
        camera_info = self._camera_info if self.params["use_camera_info"] else None
        depth = self._depth if self.params["use_depth"] else None
        estimate = estimate_image(stream, msg, camera_info, depth)
        for reason, detail in estimate.events:
            if reason in _LOGGED_EVENTS:
                self.note_event(reason, detail, period_s=_LOGGED_EVENTS[reason])
            else:
                self.stats.on_event(reason)
        for reason, detail in estimate.dropped:
            self.drop(reason, detail)
        if estimate.hands is None:
            return
        self._output.publish(estimate_to_msg(estimate, msg.header.frame_id))
        self.record_published(estimate.stamp_ns, started)


# Events worth a (throttled) log line, with the throttle period in seconds.
_LOGGED_EVENTS = {"stamp_backwards": 2.0, "depth_invalid": 10.0}


def main(args=None):
    run_node(HandEstimatorNode, args)


if __name__ == "__main__":
    main()
