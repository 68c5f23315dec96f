"""The pose-input graph (ghtt_pipeline + visualizer) started by the runner CLI in other processes, over real DDS:
message contents, stamps and frames; two namespaced instances side by side (one on sim time) give identical results
for identical input and do not see each other's data; malformed inputs are counted and the nodes keep running."""

import subprocess
import sys
import time

import numpy as np
import pytest
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rosgraph_msgs.msg import Clock
from visualization_msgs.msg import Marker, MarkerArray

from ghtt_ros.convert import motion_prediction_from_msg, ns_to_stamp, stamp_to_ns
from ghtt_ros.nodes.diagnostics import status_values
from ghtt.msg import ActionRecognition, MotionPrediction, TwoHandPose, TwoHandPoseArray
from ros_fixtures import pose_messages, spin_until, write_tiny_checkpoint
from sample_messages import assert_messages_equal

from test_graph import CONFIG

QOS = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
NAMESPACES = ("cam_a", "cam_b")  # cam_a runs on sim time
SAMPLES, HORIZON = 4, 32


@pytest.fixture(scope="module")
def graphs(tmp_path_factory):
    """Two runner processes with the pose-input graph in namespaces cam_a (use_sim_time) and cam_b."""
    checkpoint = write_tiny_checkpoint(tmp_path_factory.mktemp("model") / "tiny.pt")
    processes = []
    for namespace in NAMESPACES:
        command = [sys.executable, "-m", "ghtt_ros.graph.runner", str(CONFIG / "pose_input.yaml"), "--namespace", namespace]
        for assignment in (f"checkpoint={checkpoint}", "device=cpu", f"num_samples={SAMPLES}",
                           f"horizon_frames={HORIZON}", "diagnostics_period_s=0.2",
                           "clip_stride=16",  # one result per clip: the tests count results per clip
                           f"use_sim_time={'true' if namespace == 'cam_a' else 'false'}"):
            command += ["--set", f"ghtt_pipeline.{assignment}"]
        command += ["--set", "visualizer.diagnostics_period_s=0.2"]
        processes.append(subprocess.Popen(command))
    context = rclpy.Context()
    rclpy.init(context=context)
    probe = Probe(context)
    ready = False
    try:
        ready = probe.spin_until(lambda: all(
            probe.hands[ns].get_subscription_count() > 0 and probe.node.count_publishers(f"/{ns}/prediction") > 0
            for ns in NAMESPACES), 90)
        assert ready, "the ghtt_pipeline nodes did not become active"
        # A publisher may see a reader before that reader has matched it back; poses sent then can be lost. One early
        # pose per graph that shows up in its diagnostics proves the path (later stamps are far enough to reset).
        warm_up = pose_messages(1, start_ns=1_000_000_000, frame_id="warm_up")
        for ns in NAMESPACES:
            received = lambda: int(probe.diagnostics.get(f"/{ns}/ghtt_pipeline", {}).get("frames_received", 0)) > 0
            deadline = time.monotonic() + 30
            while not received() and time.monotonic() < deadline:
                probe.publish(ns, warm_up, with_clock=True)
                probe.spin_until(received, 0.5)
            assert received(), f"{ns}: poses do not reach the pipeline"
        yield probe
    finally:
        probe.executor.shutdown()
        probe.node.destroy_node()
        context.try_shutdown()
        for process in processes:
            process.terminate()
        exit_codes = [process.wait(timeout=20) for process in processes]
    assert exit_codes == [0, 0], "a runner did not stop cleanly on SIGTERM"


class Probe:
    """Publishes poses into both namespaces and records everything that comes back."""

    def __init__(self, context):
        self.node = rclpy.create_node("ghtt_test_probe", context=context)
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(self.node)
        self.hands = {ns: self.node.create_publisher(TwoHandPose, f"/{ns}/hands", QOS) for ns in NAMESPACES}
        self.predictions_in = {ns: self.node.create_publisher(MotionPrediction, f"/{ns}/prediction", QOS)
                               for ns in NAMESPACES}
        self.clock = self.node.create_publisher(Clock, "/clock", 10)
        self.received = {}
        self.diagnostics = {}
        for ns in NAMESPACES:
            for topic, msg_type in (("refined_hands", TwoHandPoseArray), ("action", ActionRecognition),
                                    ("prediction", MotionPrediction), ("markers", MarkerArray)):
                self.node.create_subscription(msg_type, f"/{ns}/{topic}", self._recorder((ns, topic)), QOS)
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, 50)

    def _recorder(self, key):
        return lambda msg: self.received.setdefault(key, []).append(msg)

    def _on_diagnostics(self, msg):
        for status in msg.status:
            self.diagnostics[status.name] = status_values(status)

    def spin_until(self, condition, timeout_s):
        return spin_until(self.node, condition, timeout_s, self.executor)

    def summary(self):
        counts = {f"{ns}/{topic}": len(messages) for (ns, topic), messages in sorted(self.received.items())}
        return f"received {counts}; diagnostics {self.diagnostics}"

    def messages(self, namespace, topic):
        return self.received.get((namespace, topic), [])

    def publish(self, namespace, messages, with_clock=False):
        for msg in messages:
            if with_clock:
                self.clock.publish(Clock(clock=msg.header.stamp))
            self.hands[namespace].publish(msg)
            self.spin_until(lambda: False, 1 / 60)  # a fast camera's rate

    def diagnostic_values(self, node_name, condition, timeout_s=10):
        """Values of the latest /diagnostics status of node_name once condition(values) holds."""
        self.spin_until(lambda: node_name in self.diagnostics and condition(self.diagnostics[node_name]), timeout_s)
        return self.diagnostics[node_name]


def test_outputs_copy_stamps_and_frames_and_namespaces_are_independent(graphs):
    first = pose_messages(48, start_ns=5_000_000_000, frame_id="left_camera_optical")
    graphs.publish("cam_a", first, with_clock=True)
    graphs.publish("cam_b", first[:32])
    assert graphs.spin_until(lambda: len(graphs.messages("cam_a", "prediction")) == 3
                             and len(graphs.messages("cam_b", "prediction")) == 2, 60), graphs.summary()
    graphs.spin_until(lambda: False, 0.5)  # anything arriving late would show up in the counts below
    for ns, clips in (("cam_a", 3), ("cam_b", 2)):
        assert len(graphs.messages(ns, "refined_hands")) == clips and len(graphs.messages(ns, "action")) == clips

    stamps = [stamp_to_ns(m.header.stamp) for m in first]
    refined = graphs.messages("cam_a", "refined_hands")[1]
    assert [stamp_to_ns(f.header.stamp) for f in refined.frames] == stamps[16:32]
    assert stamp_to_ns(refined.header.stamp) == stamps[16] and refined.header.frame_id == "left_camera_optical"
    assert all(f.header.frame_id == "left_camera_optical" and f.left.present and f.right.present
               for f in refined.frames)
    joints = np.array([f.right.joints for f in refined.frames]).reshape(16, 21, 3)
    assert np.isfinite(joints).all() and 0.2 < np.median(joints[..., 2]) < 1.0  # metres in front of the camera

    action = graphs.messages("cam_a", "action")[1]
    assert stamp_to_ns(action.observation_end) == stamps[31] == stamp_to_ns(action.header.stamp)
    assert stamp_to_ns(action.observation_start) == stamps[0] and action.num_clips == 2
    scores = [h.score for h in action.hypotheses]
    assert len(scores) == 3 and scores == sorted(scores, reverse=True) and abs(sum(scores) - 1) < 1e-3
    assert len(action.latent) == 0  # publish_latent defaults to false

    msg = graphs.messages("cam_a", "prediction")[1]
    prediction, mean, spread = motion_prediction_from_msg(msg)
    assert stamp_to_ns(msg.header.stamp) == stamps[31] and msg.header.frame_id == "left_camera_optical"
    assert prediction.positions.shape == (SAMPLES, HORIZON, 2, 21, 3) and prediction.mode == "action_guided"
    assert prediction.conditioning_action.label == action.hypotheses[0].label
    np.testing.assert_allclose(mean, prediction.positions.mean(axis=0), atol=1e-5)
    assert (spread > 0).any()

    # Same input, one graph on sim time and one on wall time: identical results, field by field.
    for topic in ("refined_hands", "action", "prediction"):
        for a, b in zip(graphs.messages("cam_a", topic)[:2], graphs.messages("cam_b", topic)[:2]):
            assert_messages_equal(b, a, topic)

    markers = [m for array in graphs.messages("cam_a", "markers") for m in array.markers]
    fan = [m for m in markers if m.ns == "prediction_samples" and m.action == Marker.ADD]
    assert fan and all(m.header.frame_id == "left_camera_optical" and len(m.points) == HORIZON for m in fan)
    assert {m.ns for m in markers} >= {"hands", "refined_hands", "action", "prediction_mean"}


def _with_nan_joints(msg):
    joints = np.array(msg.right.joints)
    joints[5] = np.nan
    msg.right.joints = joints
    return msg


def test_malformed_inputs_are_counted_and_the_nodes_keep_running(graphs):
    good = pose_messages(40, start_ns=50_000_000_000, frame_id="cam")
    zero_stamp = pose_messages(1, frame_id="cam")[0]
    zero_stamp.header.stamp = ns_to_stamp(0)
    backwards = pose_messages(1, start_ns=40_000_000_000, frame_id="cam")[0]
    before = len(graphs.messages("cam_b", "prediction"))
    graphs.publish("cam_b", good[:8] + [_with_nan_joints(good[8]), zero_stamp] + good[9:20] + [backwards])
    wrong_layout = graphs.messages("cam_b", "prediction")[0] if before else MotionPrediction()
    wrong_layout.num_samples += 1  # the arrays no longer match the declared layout
    graphs.predictions_in["cam_b"].publish(wrong_layout)
    # After the backwards stamp the history restarts: 16 further good frames give the next result.
    graphs.publish("cam_b", pose_messages(16, start_ns=60_000_000_000, frame_id="cam"))
    assert graphs.spin_until(lambda: len(graphs.messages("cam_b", "prediction")) >= before + 1, 30)

    pipeline = graphs.diagnostic_values("/cam_b/ghtt_pipeline", lambda v: "event_stamp_backwards" in v)
    assert pipeline["state"] == "active"
    assert int(pipeline["dropped_malformed"]) == 1 and int(pipeline["dropped_zero_stamp"]) == 1
    assert int(pipeline["event_stamp_backwards"]) >= 1 and int(pipeline["history_resets"]) >= 1
    visualizer = graphs.diagnostic_values("/cam_b/visualizer", lambda v: "dropped_malformed" in v)
    # The visualizer listens to `hands` too: it drops the NaN pose and the prediction with the wrong layout.
    assert visualizer["state"] == "active" and int(visualizer["dropped_malformed"]) == 2
    # cam_a never saw any of this.
    assert "dropped_malformed" not in graphs.diagnostic_values("/cam_a/ghtt_pipeline", lambda v: True)
