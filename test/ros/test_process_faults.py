"""Faults of the process model, through `ghtt-ros run` and GraphRunner: a node that fails to configure ends the run
with its reason, a killed node process is restarted while the others keep publishing (and its shared-memory files
are removed), the same graph started twice in one namespace is warned about, and SIGINT / SIGTERM stop the graph
promptly even while a worker is busy with a long result."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import rclpy
import yaml
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import QoSProfile, ReliabilityPolicy

from ghtt_ros.graph import shared_memory
from ghtt_ros.graph.runner import GraphRunner
from ghtt_ros.nodes.diagnostics import status_values
from ghtt.msg import TwoHandPose, TwoHandPoseArray
from ros_fixtures import pose_messages, spin_until, write_tiny_checkpoint
from test_graph import CONFIG, REPO

QOS = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
# The spec is 2 s (docs/ros.md); the assertions leave room for a loaded 2-core machine, the measured time is printed.
STOP_LIMIT_S = 5.0


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return write_tiny_checkpoint(tmp_path_factory.mktemp("model") / "tiny.pt")


def _cli(*arguments):
    command = [sys.executable, "-m", "ghtt_ros.graph.cli", *arguments]
    return subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, PYTHONPATH=str(REPO)))


def _pipeline_settings(checkpoint, **extra):
    settings = {"checkpoint": str(checkpoint), "device": "cpu", "num_samples": 4, "horizon_frames": 32, **extra}
    return [arg for key, value in settings.items() for arg in ("--set", f"ghtt_pipeline.{key}={value}")]


def _error_lines(stderr):
    return [line for line in stderr.splitlines() if line.startswith("ghtt-ros:")]


@pytest.mark.parametrize("mode", ["composed", "process"])
def test_a_node_that_fails_to_configure_ends_the_run_naming_node_and_parameter(checkpoint, mode):
    run = _cli("run", str(CONFIG / "pose_input.yaml"), "--mode", mode, "--namespace", f"bad_param_{mode}",
               *_pipeline_settings(checkpoint, num_samples=0))
    _, stderr = run.communicate(timeout=120)
    assert run.returncode == 1, stderr
    [error] = [line for line in _error_lines(stderr) if "error:" in line]
    assert "node ghtt_pipeline failed to start" in error and "num_samples" in error and "out of range" in error


def test_a_corrupt_checkpoint_ends_the_run_with_one_line_naming_the_file(checkpoint, tmp_path):
    data = bytearray(Path(checkpoint).read_bytes())
    middle = len(data) // 2
    data[middle:middle + 4096] = bytes(4096)
    corrupt = tmp_path / "zeroed.pt"
    corrupt.write_bytes(bytes(data))
    run = _cli("run", str(CONFIG / "pose_input.yaml"), "--namespace", "bad_checkpoint",
               *_pipeline_settings(corrupt))
    _, stderr = run.communicate(timeout=120)
    assert run.returncode == 1, stderr
    [error] = [line for line in _error_lines(stderr) if "error:" in line]
    assert "node ghtt_pipeline failed to start" in error and "zeroed.pt is corrupt" in error


class Watcher:
    """Diagnostics and refined poses of a namespace, seen from another participant."""

    def __init__(self, namespace):
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node("ghtt_process_fault_probe", context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.namespace = namespace
        self.hands = self.node.create_publisher(TwoHandPose, f"/{namespace}/hands", QOS)
        self.refined = []
        self.node.create_subscription(TwoHandPoseArray, f"/{namespace}/refined_hands", self.refined.append, QOS)
        self.reports = []  # (monotonic time, node name, values)
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, 100)

    def _on_diagnostics(self, msg):
        for status in msg.status:
            if status.name.startswith(f"/{self.namespace}/"):
                self.reports.append((time.monotonic(), status.name.rsplit("/", 1)[1], status_values(status)))

    def spin_until(self, condition, timeout_s):
        return spin_until(self.node, condition, timeout_s, self.executor)

    def latest(self, name):
        return next((values for _, node, values in reversed(self.reports) if node == name), {})

    def close(self):
        self.executor.shutdown()
        self.node.destroy_node()
        self.context.try_shutdown()


def test_a_killed_node_process_is_restarted_while_the_others_keep_publishing(checkpoint):
    namespace = "respawn"
    graph = yaml.safe_load((CONFIG / "pose_input.yaml").read_text())
    graph["nodes"][0]["respawn_delay"] = 0.5
    for node in graph["nodes"]:
        node["parameters_file"] = str(CONFIG / node["parameters_file"])
    overrides = {"ghtt_pipeline": {"checkpoint": str(checkpoint), "device": "cpu", "num_samples": 4,
                                   "horizon_frames": 32, "diagnostics_period_s": 0.2},
                 "visualizer": {"diagnostics_period_s": 0.2}}
    runner = GraphRunner(graph, overrides=overrides, namespace=namespace, mode="process").start()
    watcher = Watcher(namespace)
    try:
        assert runner.wait_until_active(90), runner.lifecycle_states()
        pipeline = runner.processes["ghtt_pipeline"]
        visualizer_pid = runner.processes["visualizer"].pid
        assert watcher.spin_until(lambda: watcher.latest("ghtt_pipeline").get("state") == "active", 30)
        old_pid = pipeline.pid
        segments = shared_memory.held_segments(old_pid)
        assert segments, "the node process holds no Fast DDS shared-memory files?"
        assert watcher.spin_until(lambda: False, 2.5) is False  # the runner notes the files it holds

        killed_at = time.monotonic()
        os.kill(old_pid, signal.SIGKILL)

        replaced_at = []  # when the runner started the new process

        def restarted():
            if pipeline.pid == old_pid:
                return False
            replaced_at[:] = replaced_at or [time.monotonic()]
            return any(values.get("state") == "active" for at, node, values in watcher.reports
                       if node == "ghtt_pipeline" and at > replaced_at[0])

        assert watcher.spin_until(restarted, 30), [(n, v.get("state")) for _, n, v in watcher.reports[-6:]]
        respawn_s = time.monotonic() - killed_at
        print(f"killed ghtt_pipeline respawned and active again after {respawn_s:.1f} s")
        # the target is 10 s (measured and documented in docs/ros.md); the bound leaves room for a loaded machine
        assert respawn_s < 30.0 and pipeline.respawns == 1 and not runner.failed_nodes()
        # the visualizer process was untouched and kept reporting while its neighbour was down
        assert runner.processes["visualizer"].pid == visualizer_pid
        visualizer_times = [killed_at] + [at for at, node, _ in watcher.reports if node == "visualizer"
                                          and at > killed_at]
        gaps = [b - a for a, b in zip(visualizer_times, visualizer_times[1:])]
        assert len(gaps) > 5 and max(gaps) < 5.0, gaps  # it reports every 0.2 s
        # the dead process's own segment files are gone (port segments are shared with the other participants)
        own = [name for name in segments if "_port" not in name]
        assert own and not [name for name in own if (shared_memory.SHM_DIR / name).exists()]
        # and the new pipeline works (its reader may match the probe's writer a little after the node is active)
        assert watcher.spin_until(lambda: watcher.hands.get_subscription_count() >= 2, 20)  # + the visualizer
        watcher.refined.clear()
        deadline = time.monotonic() + 30
        while not watcher.refined and time.monotonic() < deadline:
            for msg in pose_messages(16, start_ns=time.time_ns()):
                watcher.hands.publish(msg)
                watcher.spin_until(lambda: False, 1 / 30)
            watcher.spin_until(lambda: watcher.refined, 5)
        assert watcher.refined
    finally:
        watcher.close()
        exit_codes = runner.stop()
    assert exit_codes == {"ghtt_pipeline": 0, "visualizer": 0}


def test_without_respawn_a_killed_node_ends_the_run(tmp_path, checkpoint):
    graph = {"nodes": [{"name": "visualizer", "executable": "visualizer",
                        "parameters_file": str(CONFIG / "visualizer.yaml")}]}
    path = tmp_path / "graph.yaml"
    path.write_text(yaml.safe_dump(graph))
    run = _cli("run", str(path), "--mode", "process", "--namespace", "no_respawn")
    try:
        assert "running 1 nodes" in run.stdout.readline() + run.stdout.readline()
        child = _child_pids(run.pid)
        assert len(child) == 1
        os.kill(child[0], signal.SIGKILL)
        _, stderr = run.communicate(timeout=30)
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode == 1
    assert "node visualizer died (killed by SIGKILL) and respawn is off" in stderr


def _child_pids(pid):
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(child) for child in children]


def test_the_same_graph_twice_in_one_namespace_is_warned_about(tmp_path):
    graph = {"nodes": [{"name": "visualizer", "executable": "visualizer",
                        "parameters_file": str(CONFIG / "visualizer.yaml")}]}
    path = tmp_path / "graph.yaml"
    path.write_text(yaml.safe_dump(graph))
    first = _cli("run", str(path), "--namespace", "twice")
    second = _cli("run", str(path), "--namespace", "twice")
    outputs = []
    try:
        for run in (first, second):
            assert "running 1 nodes" in run.stdout.readline() + run.stdout.readline()
        time.sleep(6)  # discovered each other; the runners check every 2 s
    finally:
        for run in (first, second):
            run.send_signal(signal.SIGINT)
        for run in (first, second):
            outputs.append(run.communicate(timeout=30))
    assert [run.returncode for run in (first, second)] == [0, 0]
    warnings = [line for _, stderr in outputs for line in stderr.splitlines() if "warning: other nodes named" in line]
    assert len(warnings) >= 1 and "/twice/visualizer" in warnings[0] and "--namespace" in warnings[0]


def test_a_signal_while_the_models_load_stops_the_run_promptly(checkpoint):
    run = _cli("run", str(CONFIG / "graph.yaml"), "--namespace", "loading",
               "--set", "hand_estimator.device=cpu", *_pipeline_settings(checkpoint))
    try:
        assert run.stdout.readline().startswith("ghtt-ros: starting 3 nodes")  # composed: loading in this process
        started = time.monotonic()
        run.send_signal(signal.SIGTERM)
        run.communicate(timeout=30)
        stopped_s = time.monotonic() - started
    finally:
        if run.poll() is None:
            run.kill()
    print(f"SIGTERM while the models load -> exit after {stopped_s:.2f} s")
    assert run.returncode == 0 and stopped_s < STOP_LIMIT_S


@pytest.mark.parametrize("mode", ["composed", "process"])
def test_signals_stop_the_graph_promptly_even_while_a_worker_is_busy(checkpoint, mode):
    """A result of 256 samples x 272 frames takes the tiny model a second or more: SIGTERM arrives meanwhile."""
    namespace = f"busy_{mode}"
    run = _cli("run", str(CONFIG / "pose_input.yaml"), "--mode", mode, "--namespace", namespace,
               *_pipeline_settings(checkpoint, num_samples=256, horizon_frames=272, diagnostics_period_s=0.2))
    watcher = Watcher(namespace)
    try:
        assert watcher.spin_until(lambda: watcher.latest("ghtt_pipeline").get("state") == "active", 90)
        assert watcher.spin_until(lambda: watcher.hands.get_subscription_count() > 0, 20)
        for msg in pose_messages(16, start_ns=time.time_ns()):
            watcher.hands.publish(msg)
        # the 16th pose has arrived: the worker is computing its result now
        assert watcher.spin_until(lambda: int(watcher.latest("ghtt_pipeline").get("frames_received", 0)) >= 16, 20)
        started = time.monotonic()
        run.send_signal(signal.SIGTERM)
        _, stderr = run.communicate(timeout=30)
        stopped_s = time.monotonic() - started
    finally:
        watcher.close()
        if run.poll() is None:
            run.kill()
    print(f"{mode}: SIGTERM with a busy worker -> exit after {stopped_s:.2f} s")
    assert run.returncode == 0, stderr
    assert stopped_s < STOP_LIMIT_S
