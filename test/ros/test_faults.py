"""Fault injection into a running composed camera graph (hand_estimator -> ghtt_pipeline -> visualizer, one process,
one executor), as a field robot would meet it: each malformed message type, an exception inside a callback, a
degenerate hand, broken calibrations, garbage depth, a 4K camera, a burst of negative stamps. After each fault every
node still publishes, every fault is counted on /diagnostics, and logs stay throttled."""

import copy
import math
import threading
import time

import cv2
import numpy as np
import pytest
import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import String
from visualization_msgs.msg import MarkerArray

import ghtt_ros.nodes.visualizer as visualizer_module
from ghtt_ros.convert import ns_to_stamp, stamp_to_ns, two_hand_pose_array_from_msg
from ghtt_ros.graph.runner import GraphRunner
from ghtt_ros.images import array_to_image
from ghtt_ros.nodes.diagnostics import status_values
from ghtt.msg import ActionRecognition, MotionPrediction, TwoHandPose, TwoHandPoseArray
from ros_fixtures import FRAME_PERIOD_NS, pose_messages, spin_until, write_tiny_checkpoint
from sample_messages import make_samples
from test_graph import CONFIG, REPO

NAMESPACE = "faults"
PHOTO = REPO.parent / "shared/fixtures/real_hands/images/unsplash/brooke-cagle-mt2fyrdXxzk-unsplash.jpg"
WIDTH, HEIGHT = 640, 480
QOS = QoSProfile(depth=200, reliability=ReliabilityPolicy.RELIABLE)
NODES = ("hand_estimator", "ghtt_pipeline", "visualizer")


@pytest.fixture(scope="module")
def photo_bgr():
    if not PHOTO.is_file():
        pytest.fail(f"real-hand fixture missing: {PHOTO}")
    return cv2.resize(cv2.imread(str(PHOTO)), (WIDTH, HEIGHT), interpolation=cv2.INTER_AREA)


class Probe:
    """Publishes into every input of the graph and records every output and diagnostic status."""

    def __init__(self, context):
        self.node = rclpy.create_node("ghtt_fault_probe", context=context)
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(self.node)
        topic = lambda name: f"/{NAMESPACE}/{name}"  # noqa: E731
        self.inputs = {name: self.node.create_publisher(msg_type, topic(name), QOS) for name, msg_type in (
            ("hands", TwoHandPose), ("refined_hands", TwoHandPoseArray), ("action", ActionRecognition),
            ("prediction", MotionPrediction), ("object_label", String))}
        for name, msg_type in (("image", Image), ("camera_info", CameraInfo), ("depth", Image)):
            self.inputs[name] = self.node.create_publisher(msg_type, topic(name), qos_profile_sensor_data)
        self.received = {}
        for name, msg_type in (("refined_hands", TwoHandPoseArray), ("action", ActionRecognition),
                               ("prediction", MotionPrediction), ("markers", MarkerArray), ("hands", TwoHandPose)):
            self.node.create_subscription(msg_type, topic(name), self._recorder(name), QOS)
        self.statuses = {}
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, 100)

    def _recorder(self, name):
        return lambda msg: self.received.setdefault(name, []).append(msg)

    def _on_diagnostics(self, msg):
        for status in msg.status:
            self.statuses[status.name] = status

    def spin_until(self, condition, timeout_s):
        return spin_until(self.node, condition, timeout_s, self.executor)

    def count(self, name):
        return len(self.received.get(name, []))

    def now_ns(self):
        return self.node.get_clock().now().nanoseconds

    def values(self, node_name, condition=lambda values: True, timeout_s=15):
        name = f"/{NAMESPACE}/{node_name}"
        self.spin_until(lambda: name in self.statuses and condition(status_values(self.statuses[name])), timeout_s)
        return status_values(self.statuses[name])

    def counter(self, node_name, key):
        return int(self.values(node_name).get(key, 0))

    def publish_poses(self, messages, period_s=1 / 30):
        for msg in messages:
            self.inputs["hands"].publish(msg)
            self.spin_until(lambda: False, period_s)

    def publish_image(self, image, stamp_ns, camera_info=True, depth=None):
        if camera_info:
            info = CameraInfo(width=image.shape[1], height=image.shape[0],
                              k=[600.0, 0, image.shape[1] / 2, 0, 600.0, image.shape[0] / 2, 0, 0, 1])
            info.header.stamp = ns_to_stamp(stamp_ns)
            self.inputs["camera_info"].publish(info)
        if depth is not None:
            self.inputs["depth"].publish(array_to_image(depth, "16UC1", stamp_ns, "camera"))
        self.inputs["image"].publish(array_to_image(image, "bgr8", stamp_ns, "camera"))

    def image_estimated(self, image, stamp_ns, timeout_s=20, **options):
        """Publish an image (again, best effort) until the estimator's hands for its stamp come back."""
        def estimated():
            return any(stamp_to_ns(m.header.stamp) == stamp_ns for m in self.received.get("hands", []))
        deadline = time.monotonic() + timeout_s
        while not estimated() and time.monotonic() < deadline:
            self.publish_image(image, stamp_ns, **options)
            self.spin_until(estimated, 1.0)
        return estimated()


@pytest.fixture(scope="module")
def graph(tmp_path_factory):
    checkpoint = write_tiny_checkpoint(tmp_path_factory.mktemp("model") / "tiny.pt")
    common = {"device": "cpu", "diagnostics_period_s": 0.2}
    overrides = {
        "hand_estimator": {**common, "use_depth": True, "model_complexity": 0},
        # one result per clip: these tests count results per clip
        "ghtt_pipeline": {**common, "checkpoint": str(checkpoint), "num_samples": 4, "horizon_frames": 32,
                          "clip_stride": 16},
        "visualizer": {"diagnostics_period_s": 0.2},
    }
    runner = GraphRunner(CONFIG / "graph.yaml", overrides=overrides, namespace=NAMESPACE).start()
    context = rclpy.Context()
    rclpy.init(context=context)
    probe = Probe(context)
    try:
        assert runner.wait_until_active(120), runner.lifecycle_states()
        assert probe.spin_until(lambda: all(
            publisher.get_subscription_count() > 0 for name, publisher in probe.inputs.items()
            if name != "object_label"), 30)
        assert probe.spin_until(lambda: runner.nodes["visualizer"].count_subscribers(f"/{NAMESPACE}/markers"), 10)
        yield runner, probe
    finally:
        probe.executor.shutdown()
        probe.node.destroy_node()
        context.try_shutdown()
        runner.stop()


class RecordingLogger:
    """Stands in for a node's logger: keeps every line by level, forwards nothing."""

    def __init__(self):
        self.lines = {"debug": [], "info": [], "warning": [], "error": [], "fatal": []}

    def __getattr__(self, level):
        if level == "warn":
            level = "warning"
        return lambda message, **_: self.lines[level].append(message)


def _poses_with_results(probe, count, start_ns, mutate=None):
    """Publish `count` poses at 30 Hz clip by clip, each clip once the previous clip's result is back (so the model
    never falls a clip behind and skips a result); -> the refined_hands messages they produced."""
    messages = pose_messages(count, start_ns=start_ns)
    if mutate:
        mutate(messages)
    before = probe.count("refined_hands")
    for first in range(0, count, 16):
        probe.publish_poses(messages[first:first + 16])
        expected = before + (first + 16) // 16
        assert probe.spin_until(lambda: probe.count("refined_hands") >= expected, 30), probe.statuses
    return probe.received["refined_hands"][before:]


def _malformed_messages(stamp_ns):
    samples = make_samples()
    stamp = ns_to_stamp(stamp_ns)
    faults = {}

    def variant(name, change):
        msg = copy.deepcopy(samples[name])
        msg.header.stamp = stamp
        change(msg)
        return msg

    faults["hands"] = [
        variant("TwoHandPose", lambda m: setattr(m.left, "joints", np.full(63, np.nan, np.float32))),
        variant("TwoHandPose", lambda m: setattr(m.left, "side", 7)),
        variant("TwoHandPose", lambda m: setattr(m.left, "confidence", 2.0)),
        variant("TwoHandPose", lambda m: setattr(m.right, "present", True)),  # a present hand of NaN joints
    ]
    faults["refined_hands"] = [
        variant("TwoHandPoseArray", lambda m: setattr(m, "frames", [])),
        variant("TwoHandPoseArray", lambda m: setattr(m.frames[3].left, "confidence", -1.0)),
    ]
    faults["action"] = [
        variant("ActionRecognition", lambda m: setattr(m.hypotheses[0], "score", float("nan"))),
        variant("ActionRecognition", lambda m: setattr(m, "latent", np.full(8, np.inf, np.float32))),
    ]
    faults["prediction"] = [
        variant("MotionPrediction", lambda m: setattr(m, "num_joints", 0)),  # took the whole process down before
        variant("MotionPrediction", lambda m: setattr(m, "num_frames", 5)),
        variant("MotionPrediction", lambda m: setattr(m, "positions", np.full(len(m.positions), np.nan, np.float32))),
        variant("MotionPrediction", lambda m: setattr(m, "mode", 99)),
    ]
    bad_encoding = array_to_image(np.zeros((48, 64, 2), np.uint8), "bgr8", stamp_ns, "camera")
    bad_encoding.encoding = "yuv422"
    short = array_to_image(np.zeros((48, 64, 3), np.uint8), "bgr8", stamp_ns, "camera")
    short.data = short.data[:100]
    empty = array_to_image(np.zeros((48, 64, 3), np.uint8), "bgr8", stamp_ns, "camera")
    empty.height = empty.width = 0
    faults["image"] = [bad_encoding, short, empty]
    return faults


def test_each_malformed_message_type_leaves_every_node_publishing(graph, monkeypatch):
    runner, probe = graph
    before = {node: probe.values(node) for node in NODES}
    faults = _malformed_messages(probe.now_ns())
    for topic, messages in faults.items():
        for msg in messages:
            probe.inputs[topic].publish(msg)
            probe.spin_until(lambda: False, 0.05)
    # An unexpected exception inside a callback (the IndexError of the visualizer that stopped every node of the
    # process before): counted, and the executor goes on.
    def broken_markers(*args, **kwargs):
        raise IndexError("index 0 is out of bounds for axis 3 with size 0")

    monkeypatch.setattr(visualizer_module, "prediction_markers", broken_markers)
    probe.inputs["prediction"].publish(make_samples()["MotionPrediction"])
    assert probe.spin_until(lambda: int(probe.values("visualizer").get("dropped_processing_error", 0)) >= 1, 15)
    monkeypatch.undo()

    dropped = lambda node, reason: int(probe.values(node).get(f"dropped_{reason}", 0)) - int(  # noqa: E731
        before[node].get(f"dropped_{reason}", 0))
    assert probe.spin_until(lambda: dropped("ghtt_pipeline", "malformed") == len(faults["hands"]), 15), \
        {k: v for k, v in probe.values("ghtt_pipeline").items() if "drop" in k or "frames" in k}
    visualizer_faults = sum(len(faults[t]) for t in ("hands", "refined_hands", "action", "prediction"))
    assert probe.spin_until(lambda: dropped("visualizer", "malformed") == visualizer_faults, 15), (
        visualizer_faults, {k: v for k, v in probe.values("visualizer").items() if "drop" in k or "frames" in k})
    assert probe.spin_until(lambda: dropped("hand_estimator", "bad_image") == len(faults["image"]), 15)
    assert runner._spin_thread.is_alive()

    # every node still publishes: valid poses give refined hands, actions and predictions, and markers of them
    counts = {name: probe.count(name) for name in ("refined_hands", "action", "prediction", "markers")}
    _poses_with_results(probe, 32, probe.now_ns())
    assert probe.spin_until(lambda: all(probe.count(name) > counts[name] for name in counts), 20), \
        {name: probe.count(name) - counts[name] for name in counts}
    for node in NODES:
        values = probe.values(node)
        level = probe.statuses[f"/{NAMESPACE}/{node}"].level
        assert values["state"] == "active" and level != DiagnosticStatus.ERROR, values


@pytest.mark.parametrize("kind", ["all_equal", "all_zero"])
def test_one_degenerate_frame_in_a_30_hz_stream_loses_no_result(graph, kind):
    _, probe = graph
    implausible = probe.counter("ghtt_pipeline", "implausible_hands")

    def degenerate(messages):
        joints = np.asarray(messages[20].left.joints).reshape(21, 3)
        messages[20].left.joints = np.zeros(63, np.float32) if kind == "all_zero" else np.tile(joints[5], 21)

    results = _poses_with_results(probe, 48, probe.now_ns(), mutate=degenerate)
    assert len(results) == 3  # one per clip, the clip with the bad frame included
    for msg in results:
        frames, _ = two_hand_pose_array_from_msg(msg)
        assert all(np.isfinite(f.joints[f.presence]).all() for f in frames)
    assert probe.spin_until(lambda: probe.counter("ghtt_pipeline", "implausible_hands") == implausible + 1, 10)


@pytest.mark.parametrize("broken", ["fx_inf", "fx_nan", "fx_1e-30", "zeros", "cx_nan"])
def test_a_broken_camera_info_is_counted_logged_once_and_the_default_used_until_a_valid_one(graph, photo_bgr,
                                                                                            broken):
    runner, probe = graph
    estimator = runner.nodes["hand_estimator"]
    logger = RecordingLogger()
    estimator.get_logger = lambda: logger
    try:
        k = {"fx_inf": [math.inf, 0, 320, 0, math.inf, 240, 0, 0, 1],
             "fx_nan": [math.nan, 0, 320, 0, 600, 240, 0, 0, 1],
             "fx_1e-30": [1e-30, 0, 320, 0, 1e-30, 240, 0, 0, 1],
             "zeros": [0.0] * 9,
             "cx_nan": [600, 0, math.nan, 0, 600, math.nan, 0, 0, 1]}[broken]
        invalid = probe.counter("hand_estimator", "event_camera_info_invalid")
        for _ in range(3):  # several images with the broken calibration: still estimated, with the default FOV
            info = CameraInfo(width=WIDTH, height=HEIGHT, k=[float(v) for v in k])
            probe.inputs["camera_info"].publish(info)
            probe.spin_until(lambda: estimator._camera_info is None and estimator._camera_info_problem, 5)
            assert probe.image_estimated(photo_bgr, probe.now_ns(), camera_info=False)
        assert estimator._camera_info is None
        assert probe.spin_until(lambda: probe.counter("hand_estimator", "event_camera_info_invalid") >= invalid + 3, 10)
        unusable = [line for line in logger.lines["warning"] if "unusable" in line or "no calibration" in line]
        assert len(unusable) == 1 and "default field of view" in unusable[0], logger.lines
        assert probe.image_estimated(photo_bgr, probe.now_ns())  # a valid CameraInfo with it
        assert estimator._camera_info is not None and estimator._camera_info.k[0] == 600.0
        assert any("valid CameraInfo arrived" in line for line in logger.lines["info"])
    finally:
        del estimator.get_logger


def test_garbage_depth_is_flagged_and_the_monocular_placement_used(graph, photo_bgr):
    _, probe = graph
    invalid = probe.counter("hand_estimator", "event_depth_invalid")
    garbage = np.random.default_rng(0).integers(1, 65535, (HEIGHT, WIDTH), dtype=np.uint16)
    stamp = probe.now_ns()
    assert probe.image_estimated(photo_bgr, stamp, depth=garbage)
    hands = [m for m in probe.received["hands"] if stamp_to_ns(m.header.stamp) == stamp][-1]
    for hand in (hands.left, hands.right):
        if hand.present:
            assert 0.1 < np.median(np.asarray(hand.joints).reshape(21, 3)[:, 2]) < 3.0  # not at 4-6 m
    assert probe.spin_until(lambda: probe.counter("hand_estimator", "event_depth_invalid") > invalid, 10)


def test_a_4k_camera_whose_images_do_not_arrive_is_reported_once(graph):
    runner, probe = graph
    estimator = runner.nodes["hand_estimator"]
    logger = RecordingLogger()
    estimator.get_logger = lambda: logger
    try:
        info = CameraInfo(width=3840, height=2160, k=[2000.0, 0, 1920, 0, 2000.0, 1080, 0, 0, 1])
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline:  # CameraInfo at 10 Hz, no image gets through
            info.header.stamp = ns_to_stamp(probe.now_ns())
            probe.inputs["camera_info"].publish(info)
            probe.spin_until(lambda: False, 0.1)
        values = probe.values("hand_estimator", lambda v: int(v.get("event_images_missing", 0)) >= 1)
        assert int(values["event_images_missing"]) == 1
        status = probe.statuses[f"/{NAMESPACE}/hand_estimator"]
        assert status.level == DiagnosticStatus.WARN
        assert "24.9 MB" in status.message and "fastdds_4k.xml" in status.message
        assert len([line for line in logger.lines["warning"] if "24.9 MB" in line]) == 1
    finally:
        del estimator.get_logger


def test_a_4k_image_that_arrives_is_estimated(graph, photo_bgr):
    runner, probe = graph
    estimator = runner.nodes["hand_estimator"]
    image = cv2.resize(photo_bgr, (3840, 2160), interpolation=cv2.INTER_LINEAR)
    stamp = probe.now_ns()
    published = estimator.stats.published
    started = time.monotonic()
    # the worker's step on a 24.9 MB image, without the transport (bench/image_transport.py measures that)
    estimator._process_image(array_to_image(image, "bgr8", stamp, "camera"))
    print(f"4K image estimated in {time.monotonic() - started:.2f} s")
    assert estimator.stats.published == published + 1
    assert probe.spin_until(lambda: any(stamp_to_ns(m.header.stamp) == stamp for m in probe.received["hands"]), 10)


def test_a_burst_of_negative_stamps_is_dropped_counted_and_logged_throttled(graph):
    _, probe = graph
    before = probe.values("ghtt_pipeline")
    messages = pose_messages(300, start_ns=1_000_000_000)
    for msg in messages:
        msg.header.stamp.sec = -5
    started = time.monotonic()
    for msg in messages:
        probe.inputs["hands"].publish(msg)
    probe.spin_until(lambda: False, 1.0)
    key = "dropped_negative_stamp"
    values = probe.values("ghtt_pipeline", lambda v: int(v.get(key, 0)) - int(before.get(key, 0)) >= 50)
    dropped = int(values[key]) - int(before.get(key, 0))
    written = int(values["log_lines_written"]) - int(before["log_lines_written"])
    held_back = int(values["log_lines_held_back"]) - int(before["log_lines_held_back"])
    elapsed = time.monotonic() - started
    assert dropped >= 50  # a reliable burst: DDS may replace some in the writer's history (counted as lost)
    assert written + held_back == dropped and 1 <= written <= 2 + elapsed / 2.0, (written, held_back, elapsed)


def test_sim_time_without_clock_is_a_warning_that_says_which(tmp_path):
    graph = {"namespace": "sim_no_clock", "nodes": [{"name": "ghtt_pipeline", "executable": "ghtt_pipeline",
                                                      "parameters_file": "ghtt_pipeline.yaml"}]}
    checkpoint = write_tiny_checkpoint(tmp_path / "tiny.pt")
    overrides = {"ghtt_pipeline": {"device": "cpu", "checkpoint": str(checkpoint), "use_sim_time": True,
                                   "diagnostics_period_s": 0.2, "num_samples": 2, "horizon_frames": 16}}
    with GraphRunner(graph, overrides=overrides) as runner:
        assert runner.wait_until_active(60)
        node = runner.nodes["ghtt_pipeline"]
        messages = pose_messages(20, start_ns=time.time_ns())
        for msg in messages:
            node._on_hands(msg)
        assert node.worker.wait_idle(30)
        status = node.diagnostic_status()
        values = status_values(status)
        assert status.level == DiagnosticStatus.WARN
        assert "use_sim_time is true but nothing publishes /clock" in status.message
        assert "latency_ms_p50" not in values and int(values["outputs_published"]) == 1
        assert int(values["clock_mismatched_inputs"]) == 20


def test_input_lost_before_arrival_is_estimated_from_stamp_gaps(graph):
    _, probe = graph
    messages = pose_messages(20, start_ns=probe.now_ns())
    received = probe.counter("ghtt_pipeline", "frames_received")
    probe.publish_poses(messages[:1])  # the first pose: any gap to earlier tests' poses is counted now
    assert probe.spin_until(lambda: probe.counter("ghtt_pipeline", "frames_received") > received, 10)
    lost = probe.counter("ghtt_pipeline", "frames_lost_before_arrival")
    del messages[5:8]  # three poses that never reached the node
    probe.publish_poses(messages[1:])
    assert probe.spin_until(lambda: probe.counter("ghtt_pipeline", "frames_lost_before_arrival") == lost + 3, 10)


def test_the_executor_survives_even_an_exception_outside_the_guards(graph):
    runner, probe = graph
    failed = threading.Event()

    def raising():
        failed.set()
        raise RuntimeError("a timer callback that is not guarded")

    timer = runner.nodes["visualizer"].create_timer(0.05, raising)
    try:
        assert probe.spin_until(failed.is_set, 10)
        probe.spin_until(lambda: False, 0.5)
        assert runner._spin_thread.is_alive()
        stamp_before = probe.values("visualizer")["frames_received"]
        probe.publish_poses(pose_messages(3, start_ns=probe.now_ns() + FRAME_PERIOD_NS))
        assert probe.spin_until(lambda: probe.values("visualizer")["frames_received"] != stamp_before, 10)
    finally:
        timer.cancel()
        runner.nodes["visualizer"].destroy_timer(timer)
