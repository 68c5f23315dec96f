"""Lifecycle behaviour of the nodes: bad configs and model files leave a node unconfigured or inactive with a reported
error (it never dies), autostart, read-on-configure parameters, device fallback, and freeing the model on deactivate."""

import threading
import time

import pytest
import rclpy
from diagnostic_msgs.msg import DiagnosticStatus
from rclpy.lifecycle import TransitionCallbackReturn
from rclpy.parameter import Parameter

from ghtt_core.pipeline import PipelineConfig
from ghtt_ros.nodes.diagnostics import status_values
from ghtt_ros.nodes.hand_estimator import HandEstimatorNode
from ghtt_ros.nodes.device import resolve_device
from ghtt_ros.nodes.pipeline import PipelineNode
from ghtt_ros.nodes.visualizer import VisualizerNode
from ros_fixtures import pose_messages, write_tiny_checkpoint


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return write_tiny_checkpoint(tmp_path_factory.mktemp("model") / "tiny.pt")


@pytest.fixture
def ros_context():
    context = rclpy.Context()
    rclpy.init(context=context)
    nodes = []
    yield context, nodes
    for node in nodes:
        node.destroy_node()
    context.try_shutdown()


def _pipeline(ros_context, **parameters):
    context, nodes = ros_context
    node = PipelineNode(context=context, parameter_overrides=[Parameter(k, value=v) for k, v in parameters.items()])
    nodes.append(node)
    return node


def test_missing_checkpoint_leaves_the_node_unconfigured_with_an_error_diagnostic(ros_context, tmp_path):
    node = _pipeline(ros_context, device="cpu", checkpoint=str(tmp_path / "nope.pt"))
    assert node.start() is False
    assert node.state_label == "unconfigured"
    status = node.diagnostic_status()
    assert status.level == DiagnosticStatus.ERROR and "checkpoint not found" in status.message
    assert status_values(status)["state"] == "unconfigured"


def test_a_corrupt_checkpoint_fails_activation_and_the_node_stays_inactive(ros_context, tmp_path):
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"not a torch file")
    node = _pipeline(ros_context, device="cpu", checkpoint=str(corrupt))
    assert node.start() is False
    assert node.state_label == "inactive" and node.pipeline is None and node.worker is None
    assert "corrupt or not a torch file" in node.diagnostic_status().message


@pytest.mark.parametrize("parameters, message", [
    (dict(num_samples=0), "num_samples"),  # outside the declared range
    (dict(mode="fast"), "mode"),  # not one of the choices
    (dict(max_gap_s=3), "max_gap_s"),  # integer where a double is declared
    (dict(device="gpu"), "expected auto, cpu, cuda or cuda:N"),
])
def test_bad_parameter_values_are_reported_and_block_configuration(ros_context, checkpoint, parameters, message):
    node = _pipeline(ros_context, checkpoint=str(checkpoint), **parameters)
    assert node.start() is False
    assert node.state_label == "unconfigured"
    assert message in node.diagnostic_status().message


def test_autostart_false_waits_then_manual_transitions_load_and_free_the_model(ros_context, checkpoint):
    node = _pipeline(ros_context, checkpoint=str(checkpoint), device="cpu", autostart=False)
    assert node.start() is False and node.state_label == "unconfigured"
    assert node.diagnostic_status().level == DiagnosticStatus.WARN
    assert node.set_parameters([Parameter("top_k", value=2)])[0].successful  # allowed before configure
    assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS and node.pipeline is None
    assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS
    assert node.pipeline is not None and node.pipeline.config.top_k == 2
    rejected = node.set_parameters([Parameter("max_clips", value=3)])[0]
    assert not rejected.successful and "read on configure" in rejected.reason
    assert node.pipeline.config.max_clips == PipelineConfig.max_clips  # unchanged: the default
    assert node.trigger_deactivate() == TransitionCallbackReturn.SUCCESS
    assert node.pipeline is None and node.worker is None and node.state_label == "inactive"
    assert node.trigger_cleanup() == TransitionCallbackReturn.SUCCESS and node.state_label == "unconfigured"


def test_cuda_request_without_cuda_falls_back_to_cpu_with_a_warning(ros_context, checkpoint):
    device, warning = resolve_device("cuda:0")
    if device == "cpu":
        assert "CUDA is not available" in warning
    else:
        assert device == "cuda:0" and warning is None
    node = _pipeline(ros_context, checkpoint=str(checkpoint), device="cuda", num_threads=1)
    assert node.start() is True
    assert node.device == device and node.diagnostic_status().hardware_id == device


def test_estimator_and_visualizer_configure_with_defaults_and_resnet_needs_a_checkpoint(ros_context):
    context, nodes = ros_context
    visualizer = VisualizerNode(context=context)
    estimator = HandEstimatorNode(context=context, parameter_overrides=[
        Parameter("backend", value="resnet"), Parameter("device", value="cpu")])
    nodes += [visualizer, estimator]
    assert visualizer.start() is True and visualizer.device == "none"
    assert estimator.start() is False and "estimator_checkpoint" in estimator.error


class _RecordingLogger:
    def __init__(self):
        self.warnings = []

    def warning(self, message, **_):
        self.warnings.append(message)

    def __getattr__(self, name):  # info, error, ...: not recorded
        return lambda *args, **kwargs: None


@pytest.mark.parametrize("queue_size", [None, 64, 8])  # None: the default pose_queue_size (256)
def test_pipeline_queues_every_pose_while_the_model_is_busy_and_drops_only_beyond_the_bound(
        ros_context, checkpoint, queue_size):
    parameters = dict(checkpoint=str(checkpoint), device="cpu")
    if queue_size is not None:
        parameters["pose_queue_size"] = queue_size
    node = _pipeline(ros_context, **parameters)
    assert node.start() is True
    bound = node.params["pose_queue_size"]
    assert bound == (queue_size or 256)
    release, pushed = threading.Event(), []
    push = node.pipeline.push

    def slow_push(frame, **options):  # the model is busy with a result while poses keep arriving
        pushed.append(frame.stamp_ns)
        release.wait(10)
        return push(frame, **options)

    node.pipeline.push = slow_push
    logger = _RecordingLogger()
    node.get_logger = lambda: logger
    messages = pose_messages(bound + 4)
    stamps = [m.header.stamp.sec * 10**9 + m.header.stamp.nanosec for m in messages]
    try:
        node._on_hands(messages[0])
        assert spin_wait(lambda: pushed, 5)  # the worker took pose 0 and blocks in the model
        for msg in messages[1:bound + 1]:  # a whole queue of poses: all kept
            node._on_hands(msg)
        # (the burst's synthetic stamps also draw the one-time "stamps disagree with the clock" warning)
        queue_warnings = lambda: [w for w in logger.warnings if "pose queue" in w]  # noqa: E731
        assert node.worker.pending == bound and node.stats.skipped == 0 and not queue_warnings()
        assert node.diagnostic_values()["queued_poses"] == bound
        for msg in messages[bound + 1:]:  # beyond the bound: the oldest pending are discarded, counted, logged
            node._on_hands(msg)
        assert node.worker.pending == bound and node.stats.skipped == 3
        assert len(queue_warnings()) == 3 and "pose queue full" in queue_warnings()[0]
    finally:
        release.set()
    assert node.worker.wait_idle(30)
    assert pushed == [stamps[0]] + stamps[4:]  # in stamp order, poses 1..3 discarded
    stats = node.pipeline.stats
    assert stats.frames == bound + 1 and stats.dropped_frames == 3  # the gap is filled in as missing frames
    assert stats.resets == 0
    # Every pose entered the history. Results are due at poses 15, 18, 21, ... (clip_stride 3); one due while the
    # poses of the next result were already waiting behind it (3 or more) was not computed: of poses 0 .. bound + 3
    # only the last due result is published (pose 258 with 256 queued, 66 with 64), the others are skipped.
    stride = node.params["clip_stride"]
    assert stride == 3
    assert stats.results + stats.results_skipped == max(0, 1 + (bound + 3 - 15) // stride)
    assert (stats.results, stats.results_skipped) == {256: (1, 81), 64: (1, 17), 8: (0, 0)}[bound]
    assert node.diagnostic_values()["results_skipped"] == stats.results_skipped
    assert node.stats.published == stats.results


def spin_wait(condition, timeout_s):
    deadline = time.monotonic() + timeout_s
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.005)
    return condition()
