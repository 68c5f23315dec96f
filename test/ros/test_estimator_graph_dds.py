"""hand_estimator started by GraphRunner as a subprocess (process mode), fed over real DDS with a real photo at 60 Hz:
output stamps and frames are the images', the newest image is processed while older pending ones are skipped, memory
stays bounded, and malformed images are counted while the node keeps running."""

import time

import cv2
import numpy as np
import psutil
import pytest
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, Image

from ghtt_core.skeleton import LEFT, RIGHT
from ghtt_ros.convert import ns_to_stamp, stamp_to_ns, two_hand_pose_from_msg
from ghtt_ros.nodes.diagnostics import status_values
from ghtt_ros.images import array_to_image
from ghtt_ros.graph.runner import GraphRunner
from ghtt.msg import TwoHandPose
from ros_fixtures import spin_until

from test_graph import REPO

PHOTO = REPO.parent / "shared/fixtures/real_hands/images/unsplash/brooke-cagle-mt2fyrdXxzk-unsplash.jpg"
WIDTH, HEIGHT = 720, 1080  # portrait photo scaled down; 2.3 MB per bgr8 image
RATE_HZ = 60.0
FRAME_ID = "cam_x_color_optical"


@pytest.fixture(scope="module")
def photo_bgr():
    if not PHOTO.is_file():
        pytest.fail(f"real-hand fixture missing: {PHOTO}")
    return cv2.resize(cv2.imread(str(PHOTO)), (WIDTH, HEIGHT), interpolation=cv2.INTER_AREA)


@pytest.fixture(scope="module")
def estimator_graph():
    graph = {"namespace": "cam_x", "nodes": [{
        "name": "hand_estimator", "executable": "hand_estimator", "parameters_file": "hand_estimator.yaml",
        "parameters": {"device": "cpu", "diagnostics_period_s": 0.2},
        "remappings": {"image": "color/image_raw", "camera_info": "color/camera_info"},
    }]}
    runner = GraphRunner(graph, mode="process").start()
    context = rclpy.Context()
    rclpy.init(context=context)
    probe = ImageProbe(context)
    try:
        assert runner.wait_until_active(90), runner.lifecycle_states()
        assert probe.spin_until(lambda: probe.images.get_subscription_count() > 0, 30)
        yield runner, probe
    finally:
        probe.executor.shutdown()
        probe.node.destroy_node()
        context.try_shutdown()
        exit_codes = runner.stop()
    assert exit_codes == {"hand_estimator": 0}, "the node process did not stop cleanly on SIGINT"


class ImageProbe:
    def __init__(self, context):
        self.node = rclpy.create_node("ghtt_image_probe", context=context)
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(self.node)
        self.images = self.node.create_publisher(Image, "/cam_x/color/image_raw",
                                                 qos_profile_sensor_data)
        self.camera_info = self.node.create_publisher(CameraInfo, "/cam_x/color/camera_info", qos_profile_sensor_data)
        self.hands = []
        self.node.create_subscription(TwoHandPose, "/cam_x/hands", self.hands.append,
                                      QoSProfile(depth=500, reliability=ReliabilityPolicy.RELIABLE))
        self.diagnostics = {}
        self.node.create_subscription(DiagnosticArray, "/diagnostics", lambda msg: self.diagnostics.update(
            {status.name: status_values(status) for status in msg.status}), 50)

    def spin_until(self, condition, timeout_s):
        return spin_until(self.node, condition, timeout_s, self.executor)

    def now_ns(self):
        return self.node.get_clock().now().nanoseconds

    def publish_image(self, image, stamp_ns, encoding="bgr8"):
        info = CameraInfo(width=WIDTH, height=HEIGHT, k=[900.0, 0, WIDTH / 2, 0, 900.0, HEIGHT / 2, 0, 0, 1])
        info.header.stamp, info.header.frame_id = ns_to_stamp(stamp_ns), FRAME_ID
        self.camera_info.publish(info)
        self.images.publish(array_to_image(image, encoding, stamp_ns, FRAME_ID))

    def diagnostic(self, condition, timeout_s=10):
        name = "/cam_x/hand_estimator"
        self.spin_until(lambda: name in self.diagnostics and condition(self.diagnostics[name]), timeout_s)
        return self.diagnostics[name]


def test_newest_images_are_processed_under_overload_with_bounded_memory(estimator_graph, photo_bgr):
    runner, probe = estimator_graph
    process = psutil.Process(runner.processes["hand_estimator"].pid)
    for _ in range(5):  # warm up MediaPipe and the DDS segments before measuring memory
        probe.publish_image(photo_bgr, probe.now_ns())
        probe.spin_until(lambda: False, 0.1)
    assert probe.spin_until(lambda: len(probe.hands) >= 1, 20)
    # every warm-up image processed (estimated, skipped or dropped) and its pose delivered before counting starts
    probe.diagnostic(lambda v: float(v.get("seconds_since_input", 0)) > 0.5 and int(v["outputs_published"])
                     + int(v["frames_skipped"]) + int(v["frames_dropped"]) >= int(v["frames_received"]), 30)
    probe.spin_until(lambda: False, 0.5)
    rss_before = process.memory_info().rss
    probe.hands.clear()

    sent = []
    start = time.monotonic()
    for i in range(int(2.5 * RATE_HZ)):
        probe.spin_until(lambda: time.monotonic() >= start + i / RATE_HZ, 1.0)
        sent.append(probe.now_ns())
        probe.publish_image(photo_bgr, sent[-1])
    assert probe.spin_until(lambda: probe.hands and stamp_to_ns(probe.hands[-1].header.stamp) == sent[-1], 10)
    rss_after = process.memory_info().rss

    stamps = [stamp_to_ns(msg.header.stamp) for msg in probe.hands]
    assert set(stamps) <= set(sent) and stamps == sorted(stamps)
    assert len(stamps) < len(sent)  # MediaPipe on two hands is slower than 60 Hz on this machine
    assert all(msg.header.frame_id == FRAME_ID for msg in probe.hands)
    hands = two_hand_pose_from_msg(probe.hands[-1])
    assert hands.presence.all() and (hands.confidence > 0.5).all()
    palm = np.linalg.norm(hands.joints[:, 9] - hands.joints[:, 0], axis=-1)  # wrist -> middle MCP
    assert ((palm > 0.04) & (palm < 0.15)).all(), palm  # metres
    assert (hands.joints[..., 2] > 0.1).all()  # in front of the camera
    assert hands.joints[RIGHT, 0, 1] < hands.joints[LEFT, 0, 1]  # her raised right hand is higher (y down)
    assert rss_after - rss_before < 150e6, f"estimator memory grew by {(rss_after - rss_before) / 1e6:.0f} MB"

    values = probe.diagnostic(lambda v: int(v["frames_skipped"]) > 0)
    received, skipped = int(values["frames_received"]), int(values["frames_skipped"])
    assert skipped > 0 and int(values["outputs_published"]) + skipped <= received
    assert float(values["latency_ms_p50"]) < 500  # no backlog: each output is about one image old


def test_malformed_images_are_counted_and_the_node_keeps_running(estimator_graph, photo_bgr):
    _, probe = estimator_graph
    probe.publish_image(photo_bgr[:, :, 0].copy(), probe.now_ns(), encoding="16UC1")  # not a colour encoding
    assert int(probe.diagnostic(lambda v: "dropped_bad_image" in v).get("dropped_bad_image", 0)) == 1
    probe.publish_image(photo_bgr, 0)
    assert int(probe.diagnostic(lambda v: "dropped_zero_stamp" in v).get("dropped_zero_stamp", 0)) == 1
    broken = array_to_image(photo_bgr, "bgr8", probe.now_ns(), FRAME_ID)
    broken.data = broken.data[: len(broken.data) // 2]  # fewer bytes than height x step
    probe.images.publish(broken)
    assert int(probe.diagnostic(lambda v: int(v.get("dropped_bad_image", 0)) == 2)["dropped_bad_image"]) == 2

    probe.hands.clear()
    stamp = probe.now_ns()
    probe.publish_image(photo_bgr, stamp)
    assert probe.spin_until(lambda: any(stamp_to_ns(m.header.stamp) == stamp for m in probe.hands), 10)
    assert probe.diagnostic(lambda v: True)["state"] == "active"
