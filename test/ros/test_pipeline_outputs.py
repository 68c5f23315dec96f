"""What planners get from ghtt_pipeline: outputs in a robot frame (target_frame from a parameter or from /tf_static),
the light prediction_summary and the nav_msgs/Path view with the frames already in the past left out, best-effort
pose publishers accepted, runtime-changeable parameters and the enable switch. Nodes run in-process over DDS."""

import numpy as np
import pytest
from geometry_msgs.msg import TransformStamped
from nav_msgs.msg import Path
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from std_srvs.srv import SetBool
from tf2_msgs.msg import TFMessage

from ghtt_ros.convert import (
    duration_to_seconds,
    motion_prediction_from_msg,
    motion_prediction_summary_from_msg,
    stamp_to_ns,
)
from ghtt_ros.nodes.pipeline import PipelineNode
from ghtt_ros.transforms import DEFAULT_OPTICAL_FRAME, RigidTransform
from ghtt.msg import ActionRecognition, MotionPrediction, MotionPredictionSummary, TwoHandPose, TwoHandPoseArray
from node_harness import NodeHarness
from ros_fixtures import pose_messages, write_tiny_checkpoint

BEST_EFFORT = QoSProfile(depth=100, reliability=ReliabilityPolicy.BEST_EFFORT)
SMALL = dict(device="cpu", num_samples=3, horizon_frames=32, clip_stride=16)  # one result per clip: counted below
# camera_color_optical_frame in base_link, as a robot's URDF would give it (through camera_link).
CAMERA_LINK_IN_BASE = ((0.4, -0.1, 1.2), (0.0, 0.38268343, 0.0, 0.92387953))  # 45 deg pitch
OPTICAL_IN_CAMERA_LINK = ((0.0, 0.015, 0.0), (-0.5, 0.5, -0.5, 0.5))  # REP-103 optical rotation


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return write_tiny_checkpoint(tmp_path_factory.mktemp("model") / "tiny.pt")


@pytest.fixture
def harness():
    harness = NodeHarness()
    yield harness
    harness.close()


def _transform(parent, child, translation, quaternion):
    msg = TransformStamped()
    msg.header.frame_id, msg.child_frame_id = parent, child
    msg.transform.translation.x, msg.transform.translation.y, msg.transform.translation.z = translation
    (msg.transform.rotation.x, msg.transform.rotation.y, msg.transform.rotation.z,
     msg.transform.rotation.w) = quaternion
    return msg


def _outputs(harness, namespace):
    return {topic: harness.record(msg_type, f"/{namespace}/{topic}") for topic, msg_type in (
        ("refined_hands", TwoHandPoseArray), ("action", ActionRecognition), ("prediction", MotionPrediction),
        ("prediction_summary", MotionPredictionSummary))}


def _matched_publisher(harness, namespace, qos=BEST_EFFORT):
    publisher = harness.publisher(TwoHandPose, f"/{namespace}/hands", qos)
    assert harness.spin_until(lambda: publisher.get_subscription_count() > 0, 20)
    return publisher


def _publish(harness, publisher, messages):
    for msg in messages:
        publisher.publish(msg)
        harness.spin_until(lambda: False, 0.002)


def _feed(harness, namespace, messages, qos=BEST_EFFORT):
    _publish(harness, _matched_publisher(harness, namespace, qos), messages)


def test_outputs_in_target_frame_from_a_parameter_and_from_tf_static(harness, checkpoint):
    chain = RigidTransform.from_translation_quaternion(*OPTICAL_IN_CAMERA_LINK).then(
        RigidTransform.from_translation_quaternion(*CAMERA_LINK_IN_BASE))
    parameter_transform = list(chain.translation) + [0.0, 0.0, 0.0, 1.0]  # a pure translation, the other case
    harness.add(PipelineNode, "camera", checkpoint=str(checkpoint), **SMALL)
    harness.add(PipelineNode, "from_tf", checkpoint=str(checkpoint), target_frame="base_link", **SMALL)
    harness.add(PipelineNode, "from_parameter", checkpoint=str(checkpoint), target_frame="base_link",
                target_transform_source="parameter", target_transform=parameter_transform, **SMALL)
    outputs = {ns: _outputs(harness, ns) for ns in ("camera", "from_tf", "from_parameter")}
    for node in harness.nodes:
        assert node.start(), node.error
    poses = pose_messages(48, frame_id=DEFAULT_OPTICAL_FRAME)
    # No transform yet: the tf_static graph cannot place its first result and drops it, counted.
    for ns in outputs:
        _feed(harness, ns, poses[:16])
    assert harness.spin_until(lambda: harness.nodes[1].stats.dropped.get("no_transform") == 1
                              and len(outputs["camera"]["prediction"]) == 1, 60)
    assert outputs["from_tf"]["prediction"] == []
    tf_static = harness.publisher(TFMessage, "/tf_static", QoSProfile(
        depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL))
    tf_static.publish(TFMessage(transforms=[
        _transform("base_link", "camera_link", *CAMERA_LINK_IN_BASE),
        _transform("camera_link", DEFAULT_OPTICAL_FRAME, *OPTICAL_IN_CAMERA_LINK)]))
    harness.spin_until(lambda: False, 0.5)
    for ns in outputs:
        _feed(harness, ns, poses[16:])
    assert harness.spin_until(lambda: len(outputs["camera"]["prediction"]) == 3
                              and len(outputs["from_tf"]["prediction"]) == 2
                              and len(outputs["from_parameter"]["prediction"]) == 3, 60)

    expected_transforms = {"from_tf": chain,
                           "from_parameter": RigidTransform(np.eye(3), np.asarray(parameter_transform[:3]))}
    for ns, transform in expected_transforms.items():
        camera, moved = outputs["camera"]["prediction"][-1], outputs[ns]["prediction"][-1]
        assert camera.header.frame_id == DEFAULT_OPTICAL_FRAME and moved.header.frame_id == "base_link"
        assert moved.header.stamp == camera.header.stamp
        in_camera, mean_camera, spread_camera = motion_prediction_from_msg(camera)
        in_target, mean_target, spread_target = motion_prediction_from_msg(moved)
        np.testing.assert_allclose(in_target.positions, transform.apply(in_camera.positions), atol=2e-5)
        np.testing.assert_allclose(mean_target, transform.apply(mean_camera), atol=2e-5)
        np.testing.assert_allclose(spread_target, spread_camera, atol=2e-5)  # rigid: the spread does not change
        refined_camera = outputs["camera"]["refined_hands"][-1].frames[3]
        refined = outputs[ns]["refined_hands"][-1].frames[3]
        assert refined.header.frame_id == "base_link" and outputs[ns]["action"][-1].header.frame_id == "base_link"
        np.testing.assert_allclose(np.reshape(refined.left.joints, (21, 3)),
                                   transform.apply(np.reshape(refined_camera.left.joints, (21, 3))), atol=2e-5)
        summary = outputs[ns]["prediction_summary"][-1]
        assert summary.header.frame_id == "base_link"
    # The camera looks down at 45 degrees from 1.2 m: hands 0.5 m in front of it are below the camera, in front.
    wrists = motion_prediction_from_msg(outputs["from_tf"]["prediction"][-1])[1][:, :, 0]
    assert (wrists[..., 2] < 1.2).all() and (wrists[..., 0] > 0.4).all()


def test_summary_and_wrist_paths_with_past_frames_left_out(harness, checkpoint):
    node = harness.add(PipelineNode, "planner", checkpoint=str(checkpoint), publish_wrist_paths=True,
                       **(SMALL | dict(horizon_frames=96)))
    outputs = _outputs(harness, "planner")
    paths = [harness.record(Path, f"/planner/predicted_path/{hand}_wrist") for hand in ("left", "right")]
    assert node.start(), node.error
    publisher = _matched_publisher(harness, "planner")
    now_ns = node.now_ns()
    # The last pose is stamped 0.3 s ago (9 frame periods): at least predicted frames 0..8 are in the past when the
    # result is published, and some of the 3.2 s horizon is still ahead.
    _publish(harness, publisher, pose_messages(16, start_ns=now_ns - 800_000_000, frame_id=DEFAULT_OPTICAL_FRAME))
    assert harness.spin_until(lambda: len(outputs["prediction_summary"]) == 1 and all(paths), 60)
    full, summary = outputs["prediction"][0], outputs["prediction_summary"][0]
    prediction, mean, spread = motion_prediction_from_msg(full)
    summary_mean, summary_spread = motion_prediction_summary_from_msg(summary)
    np.testing.assert_array_equal(summary_mean, mean)
    np.testing.assert_array_equal(summary_spread, spread)
    assert summary.header == full.header and summary.num_samples == 3 and summary.num_frames == 96
    assert summary.conditioning_action.label == full.conditioning_action.label
    np.testing.assert_array_equal(summary.trust, full.trust)
    period_ns = duration_to_seconds(summary.frame_period) * 1e9
    last_observed_ns = stamp_to_ns(summary.header.stamp)
    elapsed = (now_ns - last_observed_ns) / period_ns  # at least this much had passed before publishing
    assert summary.num_frames > summary.first_future_frame >= int(elapsed) >= 8
    assert len(summary.mean) * 4 < len(full.positions) * 4 / 2  # the summary carries no samples
    for hand, path in enumerate(paths):
        path = path[0]
        assert path.header.frame_id == DEFAULT_OPTICAL_FRAME
        assert len(path.poses) == summary.num_frames - summary.first_future_frame
        first = summary.first_future_frame
        assert stamp_to_ns(path.poses[0].header.stamp) == last_observed_ns + round((first + 1) * period_ns)
        position = path.poses[0].pose.position
        np.testing.assert_allclose([position.x, position.y, position.z], mean[first, hand, 0], atol=1e-6)


@pytest.mark.parametrize("reliability", ["best_effort", "reliable"])
def test_best_effort_and_reliable_pose_publishers_are_both_accepted(harness, checkpoint, reliability):
    node = harness.add(PipelineNode, "tracker", checkpoint=str(checkpoint), **SMALL)
    outputs = _outputs(harness, "tracker")
    assert node.start(), node.error
    qos = QoSProfile(depth=100, reliability=getattr(ReliabilityPolicy, reliability.upper()))
    _feed(harness, "tracker", pose_messages(32, frame_id=DEFAULT_OPTICAL_FRAME), qos)
    assert harness.spin_until(lambda: len(outputs["prediction"]) == 2, 60), node.stats.snapshot(0)


def test_runtime_parameters_change_while_active_and_enable_service_pauses_the_node(harness, checkpoint):
    node = harness.add(PipelineNode, "live", checkpoint=str(checkpoint), **SMALL)
    outputs = _outputs(harness, "live")
    assert node.start(), node.error
    poses = pose_messages(80, frame_id=DEFAULT_OPTICAL_FRAME)
    _feed(harness, "live", poses[:16])
    assert harness.spin_until(lambda: len(outputs["prediction"]) == 1, 60)
    results = node.set_parameters([Parameter("num_samples", value=5), Parameter("top_k", value=2),
                                   Parameter("sampling_temperature", value=1.0), Parameter("clip_stride", value=8)])
    assert all(result.successful for result in results)
    _feed(harness, "live", poses[16:32])
    assert harness.spin_until(lambda: len(outputs["prediction"]) == 3, 60)  # every 8 frames now
    latest = outputs["prediction"][-1]
    assert latest.num_samples == 5 and latest.sampling_temperature == 1.0
    assert len(outputs["action"][-1].hypotheses) == 2
    assert not node.set_parameters([Parameter("num_samples", value=0)])[0].successful  # ranges still hold

    client = harness.probe.create_client(SetBool, "/live/ghtt_pipeline/enable")
    assert client.wait_for_service(timeout_sec=10)
    future = client.call_async(SetBool.Request(data=False))
    assert harness.spin_until(future.done, 10) and future.result().success
    assert node.get_parameter("enable").value is False and node.diagnostic_status().message.startswith("disabled")
    _feed(harness, "live", poses[32:64])
    harness.spin_until(lambda: False, 1.0)
    assert len(outputs["prediction"]) == 3 and node.stats.events["disabled"] == 32
    assert node.set_parameters([Parameter("enable", value=True)])[0].successful
    _feed(harness, "live", poses[64:80])
    assert harness.spin_until(lambda: len(outputs["prediction"]) == 4, 60)
