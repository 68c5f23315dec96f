"""Node behaviour a ROS 2 user relies on from day one: the video_source node (file, image folder) publishes image +
camera_info, the visualizer takes best-effort publishers and honours max_rate_hz, a misspelled parameter stops a
node from configuring, a node without input says on its log what it waits for, and the nodes that draw or publish
images start without torch."""

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from rclpy.lifecycle import TransitionCallbackReturn
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, Image
from visualization_msgs.msg import MarkerArray

from ghtt_core.estimator.camera import CameraIntrinsics
from ghtt_ros.convert import stamp_to_ns
from ghtt_ros.images import image_to_rgb
from ghtt_ros.nodes.video_source import VideoSourceNode
from ghtt_ros.nodes.visualizer import VisualizerNode
from ghtt_ros.transforms import DEFAULT_OPTICAL_FRAME
from ghtt.msg import TwoHandPose
from node_harness import NodeHarness
from ros_fixtures import pose_messages

REPO = Path(__file__).resolve().parents[2]
VIDEO = REPO.parent / "shared" / "fixtures" / "real_hands" / "videos" / "hand_landmarker_test_video.mp4"
SENSOR = qos_profile_sensor_data
# What the video_source offers (best effort), with room for every image of a test.
DEEP_SENSOR = QoSProfile(depth=300, reliability=ReliabilityPolicy.BEST_EFFORT)


@pytest.fixture
def harness():
    harness = NodeHarness()
    yield harness
    harness.close()


class RecordingLogger:
    def __init__(self):
        self.warnings = []

    def warning(self, message, **_):
        self.warnings.append(message)

    def __getattr__(self, name):  # info, error, ...: not recorded
        return lambda *args, **kwargs: None


def _configured_video_source(harness, namespace, **parameters):
    """A configured (not yet active) video_source whose image and camera_info topics reach the probe's readers."""
    node = harness.add(VideoSourceNode, namespace, autostart=False, **parameters)
    assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS, node.error
    assert harness.spin_until(lambda: all(harness.probe.get_publishers_info_by_topic(f"/{namespace}/{topic}")
                                          for topic in ("image", "camera_info")), 10)
    for subscription in harness.probe.subscriptions:
        if subscription.topic_name.startswith(f"/{namespace}/"):
            assert harness.spin_until(lambda: subscription.get_publisher_count() > 0, 10)
    return node


def test_video_source_publishes_a_video_file_with_camera_info_then_stops(harness):
    assert VIDEO.is_file(), f"real-hand fixture missing: {VIDEO}"
    images = harness.record(Image, "/cam/image", SENSOR)
    infos = harness.record(CameraInfo, "/cam/camera_info", SENSOR)
    node = _configured_video_source(harness, "cam", source=str(VIDEO), fps=100.0)
    assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS, node.error
    assert harness.spin_until(lambda: node.finished, 60)
    harness.spin_until(lambda: False, 0.5)
    assert node.stats.published == 202  # every frame of the 202-frame video, read in order
    assert len(images) > 20 and len(infos) > 20  # best-effort delivery to this reader
    first = images[0]
    assert (first.width, first.height, first.encoding) == (640, 360, "rgb8")
    assert first.header.frame_id == DEFAULT_OPTICAL_FRAME
    capture = cv2.VideoCapture(str(VIDEO))
    decoded = [capture.read()[1][:, :, ::-1] for _ in range(202)]
    capture.release()
    received = [image_to_rgb(msg) for msg in images[:3]]
    assert all(any(np.array_equal(rgb, frame) for frame in decoded) for rgb in received)  # the video's own pixels
    stamps = [stamp_to_ns(msg.header.stamp) for msg in images]
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)
    info = next(info for info in infos if info.header.stamp == first.header.stamp)
    np.testing.assert_allclose(info.k, CameraIntrinsics.from_fov(640, 360, 60.0).matrix.reshape(-1))


def test_video_source_plays_a_folder_of_mixed_sizes_and_skips_an_unreadable_image(harness, tmp_path):
    for name, (width, height) in (("a.png", (64, 48)), ("b.png", (80, 60)), ("d.png", (64, 48))):
        cv2.imwrite(str(tmp_path / name), np.full((height, width, 3), 100, np.uint8))
    (tmp_path / "c.png").write_bytes(b"not an image")
    images = harness.record(Image, "/folder/image", DEEP_SENSOR)
    infos = harness.record(CameraInfo, "/folder/camera_info", DEEP_SENSOR)
    node = _configured_video_source(harness, "folder", source=str(tmp_path), fps=20.0, frame_id="cam_x")
    assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS, node.error
    assert harness.spin_until(lambda: node.finished and len(infos) == 3, 30), node.stats.snapshot(0)
    assert [(m.width, m.height) for m in images] == [(64, 48), (80, 60), (64, 48)]
    assert [(m.width, m.height) for m in infos] == [(64, 48), (80, 60), (64, 48)]
    assert all(m.header.frame_id == "cam_x" for m in images + infos)
    assert node.stats.dropped["read_failed"] == 1


def test_video_source_rejects_a_missing_source_and_caps_its_rate(harness, tmp_path):
    missing = harness.add(VideoSourceNode, "missing", source=str(tmp_path / "nope.mp4"))
    assert missing.start() is False and "input not found" in missing.error
    images = harness.record(Image, "/capped/image", DEEP_SENSOR)
    node = _configured_video_source(harness, "capped", source=str(VIDEO), fps=60.0, max_rate_hz=20.0)
    assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS, node.error
    assert harness.spin_until(lambda: node.finished, 60)
    harness.spin_until(lambda: False, 0.3)
    stamps = np.array([stamp_to_ns(msg.header.stamp) for msg in images])
    assert len(stamps) > 10 and node.stats.events["rate_limited"] > 0
    assert node.stats.published + node.stats.events["rate_limited"] == 202
    assert np.diff(stamps).min() >= 0.95 / 20 * 1e9  # never faster than max_rate_hz


def test_visualizer_draws_from_a_best_effort_publisher_and_honours_max_rate(harness):
    markers = harness.record(MarkerArray, "/viz/markers")
    node = harness.add(VisualizerNode, "viz", max_rate_hz=10.0)
    assert node.start(), node.error
    publisher = harness.publisher(TwoHandPose, "/viz/hands", QoSProfile(depth=50,
                                                                          reliability=ReliabilityPolicy.BEST_EFFORT))
    assert harness.spin_until(lambda: publisher.get_subscription_count() > 0 and
                              node._output.get_subscription_count() > 0, 20)
    for msg in pose_messages(30):  # 30 Hz in source time for 1 s: 10 Hz allowed
        publisher.publish(msg)
        harness.spin_until(lambda: False, 0.005)
    assert harness.spin_until(lambda: node.stats.received == 30, 20)
    harness.spin_until(lambda: False, 0.3)
    stamps = [stamp_to_ns(array.markers[0].header.stamp) for array in markers]
    assert len(stamps) == node.stats.published == 10 and node.stats.events["rate_limited"] == 20
    assert np.diff(stamps).min() >= 0.95 / 10 * 1e9
    assert node.set_parameters([Parameter("max_rate_hz", value=0.0)])[0].successful  # runtime: uncapped now
    for msg in pose_messages(10, start_ns=3_000_000_000):
        publisher.publish(msg)
        harness.spin_until(lambda: False, 0.005)
    assert harness.spin_until(lambda: node.stats.published == 20, 20)


def test_a_misspelled_parameter_keeps_the_node_unconfigured(harness):
    node = harness.add(VisualizerNode, "typo", max_sample_drawn=3)
    assert node.start() is False and node.state_label == "unconfigured"
    assert "unknown parameter 'max_sample_drawn' (did you mean max_samples_drawn?)" in node.diagnostic_status().message


def test_a_node_without_input_logs_which_topic_type_and_qos_it_waits_for(harness):
    node = harness.add(VisualizerNode, "silent", input_timeout_s=0.5, diagnostics_period_s=0.1)
    logger = RecordingLogger()
    node.get_logger = lambda: logger
    assert node.start(), node.error
    assert harness.spin_until(lambda: logger.warnings, 10)
    harness.spin_until(lambda: False, 0.5)
    assert len(logger.warnings) == 1  # once per silence
    warning = logger.warnings[0]
    assert "/silent/hands [ghtt/TwoHandPose, best effort, depth 10; 0 publishers]" in warning
    assert "/silent/prediction [ghtt/MotionPrediction" in warning and "ROS_DOMAIN_ID" in warning


@pytest.mark.parametrize("module", ["ghtt_ros.nodes.visualizer", "ghtt_ros.nodes.video_source"])
def test_visualizer_and_video_source_start_without_torch(module):
    probe = (f"import sys, {module}; from ghtt_ros.graph.runner import declared_parameters; "
             f"assert 'torch' not in sys.modules, 'torch imported'; print('ok')")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-2000:]
