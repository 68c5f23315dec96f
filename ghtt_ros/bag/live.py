"""Rosbag replay evaluation, live: `run_live` replays an evaluation bag (ghtt_ros.bag.dataset) into the ROS graph.

The graph of config/pose_input.yaml (ghtt_pipeline) or, for images, of config/graph.yaml (hand_estimator ->
ghtt_pipeline), run by GraphRunner (composed, use_sim_time), is fed by a BagPlayer (with /clock) over DDS; a
BagRecorder records its outputs. Lossless: reliable QoS, queues larger than the backlog, and the player pauses while
the graph is behind (images: one image at a time through the estimator). It gives the same scores as `run_offline`
(ghtt_ros.bag.evaluation, which also reads the bag and the recorded outputs; docs/bag-evaluation.md).
"""

from __future__ import annotations

import dataclasses
import threading
import time

import yaml

from ghtt_core.pipeline import PipelineConfig
from ghtt_ros.bag.io import BagError, BagPlayer, BagRecorder, bag_info
from ghtt_ros.bag.dataset import CAMERA_INFO_TOPIC, IMAGE_TOPIC, INPUT_TOPIC, OBJECT_LABEL_TOPIC
from ghtt_ros.bag.evaluation import (EVAL_NAMESPACE, OUTPUT_NAMES, EvaluationBag, RunResult, _estimator_drop_problems,
                                     _sliced_messages, estimator_parameters, read_estimated_poses, read_output_bag)
from ghtt_ros.convert import stamp_to_ns
from ghtt.msg import ActionRecognition

def max_frames_ahead(pipeline_node) -> int:
    """Poses published but not yet processed by the live pipeline, at most: fewer than the node's clip_stride, so
    the poses of the next result never wait behind a due one and its overload policy (skip the due result) never
    applies."""
    return pipeline_node.pipeline_config.clip_stride


def pipeline_node_parameters(config: PipelineConfig, checkpoint, device):
    """Every PipelineConfig value as a ghtt_pipeline parameter (so the graph's YAML cannot make live differ from
    offline), plus sim time and a pose queue that never discards."""
    parameters = {key: value for key, value in dataclasses.asdict(config).items() if key != "clip_len"}
    parameters.update(checkpoint=str(checkpoint), device=device, object_label="", use_sim_time=True,
                      pose_queue_size=4096, autostart=True, input_reliability="reliable")
    return parameters


def estimator_node_parameters(params, device):
    """Every hand_estimator parameter (estimator_parameters()), plus sim time and reliable image / camera_info
    subscriptions (the player paces on the node, so nothing waits in them)."""
    parameters = dict(params, device=device, num_threads=1, use_sim_time=True, autostart=True)
    for topic in ("image", "camera_info"):
        parameters[f"qos_overrides./{EVAL_NAMESPACE}/{topic}.subscription.reliability"] = "reliable"
    return parameters


def _evaluation_graph(input_kind):
    """The graph of the input kind without the visualizer (it only costs CPU here): config/pose_input.yaml
    (ghtt_pipeline) for poses, config/graph.yaml (hand_estimator -> ghtt_pipeline) for images."""
    from ghtt_ros.graph.spec import config_dir

    graph_file, executables = (("pose_input.yaml", ("ghtt_pipeline",)) if input_kind == "poses"
                               else ("graph.yaml", ("hand_estimator", "ghtt_pipeline")))
    graph = yaml.safe_load((config_dir() / graph_file).read_text())
    graph["nodes"] = [node for node in graph["nodes"] if node["executable"] in executables]
    graph["namespace"] = EVAL_NAMESPACE
    return graph


class _OutputMonitor:
    """Counts the graph's outputs and notes when each refined clip arrived (wall clock)."""

    def __init__(self, node, qos, names=OUTPUT_NAMES):
        from ghtt.msg import MotionPrediction, TwoHandPose, TwoHandPoseArray

        self.counts = dict.fromkeys(names, 0)
        self.arrivals = {}  # last frame stamp of a result -> monotonic receive time
        self._lock = threading.Lock()
        types = {"refined_hands": TwoHandPoseArray, "action": ActionRecognition, "prediction": MotionPrediction,
                 "hands": TwoHandPose}
        for name in names:
            node.create_subscription(types[name], f"/{EVAL_NAMESPACE}/{name}",
                                     lambda msg, n=name: self._on_output(n, msg), qos)

    def _on_output(self, name, msg):
        with self._lock:
            self.counts[name] += 1
            if name == "refined_hands":
                self.arrivals[stamp_to_ns(msg.frames[-1].header.stamp)] = time.monotonic()


def _wait_or_raise(condition, timeout_s, message):
    """Polls condition until it holds; TimeoutError(message()) after timeout_s."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(message())
        time.sleep(0.002)


class _LivePacer:
    """BagPlayer.before_publish: holds the playback while max_frames_ahead poses wait for the model (in DDS or in
    the node's queue), and notes when each stamp was published."""

    def __init__(self, pipeline_node, timeout_s):
        self.node = pipeline_node
        self.timeout_s = timeout_s
        self.published = 0
        self.publish_times = {}  # stamp -> monotonic time

    def waiting(self):
        """Published poses the pipeline has not finished: in transit, in the callback, queued or in hand. (Counting
        received minus queued instead missed a pose between its arrival and its queueing, and the one in hand; then
        a due result could see clip_stride poses waiting and be skipped.)"""
        worker = self.node.worker
        finished = (worker.processed + worker.skipped) if worker is not None else 0
        return self.published - finished - sum(self.node.stats.dropped.values())

    def __call__(self, topic, stamp_ns):
        _wait_or_raise(lambda: self.waiting() < max_frames_ahead(self.node), self.timeout_s,
                       lambda: f"the pipeline did not catch up in {self.timeout_s} s ({self.waiting()} poses still "
                               f"waiting)")
        self.publish_times[stamp_ns] = time.monotonic()
        self.published += 1


class _ImagePacer:
    """BagPlayer.before_publish for image bags: makes the live camera path see exactly what the offline mode sees.
    - an Image is published once the estimator has processed every earlier image (its worker keeps only the newest
      one), has received every published CameraInfo, the pipeline has taken the latest /object_label, and fewer than
      max_frames_ahead estimated poses wait for the model;
    - a CameraInfo once the estimator has processed every earlier image (it reads the latest one per image);
    - an /object_label once the pipeline has processed every earlier pose (it reads the latest one per pose)."""

    def __init__(self, estimator_node, pipeline_node, timeout_s, labels):
        self.estimator, self.pipeline = estimator_node, pipeline_node
        self.timeout_s = timeout_s
        self.labels = list(labels)  # the bag's /object_label values, in bag order
        self.published = 0  # images
        self.camera_infos = 0
        self.labels_published = 0
        self.publish_times = {}  # image stamp -> monotonic time

    def images_estimated(self):
        worker = self.estimator.worker
        return worker is not None and worker.processed + worker.skipped >= self.published

    def poses_waiting(self):
        worker = self.pipeline.worker
        return self.estimator.stats.published - (worker.processed if worker is not None else 0)

    def label_taken(self):
        if not self.labels_published:
            return True
        return self.pipeline.topic_object_label == self.labels[self.labels_published - 1]

    def __call__(self, topic, stamp_ns):
        if topic == IMAGE_TOPIC:
            _wait_or_raise(lambda: (self.images_estimated() and self.label_taken()
                                    and self.estimator.camera_infos_received >= self.camera_infos
                                    and self.poses_waiting() < max_frames_ahead(self.pipeline)), self.timeout_s,
                           lambda: f"the camera path did not catch up in {self.timeout_s} s (before image "
                                   f"{self.published}: estimator processed "
                                   f"{getattr(self.estimator.worker, 'processed', None)} images, received "
                                   f"{self.estimator.camera_infos_received} of {self.camera_infos} camera infos; "
                                   f"{self.poses_waiting()} poses waiting for the pipeline)")
            self.publish_times[stamp_ns] = time.monotonic()
            self.published += 1
        elif topic == CAMERA_INFO_TOPIC:
            _wait_or_raise(self.images_estimated, self.timeout_s,
                           lambda: f"the hand estimator did not catch up in {self.timeout_s} s")
            self.camera_infos += 1
        elif topic == OBJECT_LABEL_TOPIC:
            _wait_or_raise(lambda: self.images_estimated() and self.poses_waiting() <= 0, self.timeout_s,
                           lambda: f"the pipeline did not catch up in {self.timeout_s} s")
            self.labels_published += 1


def _wait(condition, timeout_s, period_s=0.02):
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(period_s)
    return True


def _worker_idle(node):
    worker = node.worker
    return worker is not None and worker.pending == 0 and worker.wait_idle(0)


def run_live(bag: EvaluationBag, checkpoint, config: PipelineConfig, output_bag, device="cpu", rate=float("inf"),
             timeout_s=60.0, startup_timeout_s=60.0, estimator_params=None) -> RunResult:
    """Plays the bag's input topics (with /clock) into the live graph on sim time and records its outputs into
    `output_bag`: poses into a ghtt_pipeline node; images (+ camera_info, object_label) into hand_estimator ->
    ghtt_pipeline (estimator_params: hand_estimator parameter values, see estimator_parameters). Latency = from
    publishing a clip's last input to receiving its refined clip (wall clock). timeout_s bounds every wait for the
    graph (a stalled graph gives a partial result, never a hang)."""
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.parameter import Parameter
    from rclpy.qos import QoSProfile, ReliabilityPolicy

    from ghtt_ros.graph.runner import GraphRunner

    images = bag.input_kind == "images"
    overrides = {"ghtt_pipeline": pipeline_node_parameters(config, checkpoint, device)}
    if images:
        overrides["hand_estimator"] = estimator_node_parameters(estimator_parameters(**(estimator_params or {})),
                                                                device)
    graph = GraphRunner(_evaluation_graph(bag.input_kind), overrides=overrides).start()
    context = rclpy.Context()
    problems = []
    try:
        pipeline_node = graph.nodes["ghtt_pipeline"]
        estimator_node = graph.nodes.get("hand_estimator")
        graph_nodes = list(graph.nodes.items())
        _wait(lambda: all(n.state_label == "active" or n.error for _, n in graph_nodes), startup_timeout_s)
        for name, graph_node in graph_nodes:
            if graph_node.state_label != "active":
                raise BagError(f"the {name} node did not become active in {startup_timeout_s} s: "
                                   f"{graph_node.error or graph_node.state_label}")
        rclpy.init(args=[], context=context)
        node = rclpy.create_node("ghtt_bag_evaluator", context=context)
        output_names = OUTPUT_NAMES + (("hands",) if images else ())
        output_topics = [f"/{EVAL_NAMESPACE}/{name}" for name in output_names]
        recorder = BagRecorder(output_bag, topics=output_topics, context=context,
                               parameter_overrides=[Parameter("use_sim_time", value=True)])
        monitor = _OutputMonitor(node, QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE), output_names)
        if images:
            labels = ([msg.data for _, msg in _sliced_messages(bag.path, [OBJECT_LABEL_TOPIC], bag_info(bag.path), [])]
                      if OBJECT_LABEL_TOPIC in bag.input_topics else [])
            pacer = _ImagePacer(estimator_node, pipeline_node, timeout_s, labels)
        else:
            pacer = _LivePacer(pipeline_node, timeout_s)
        targets = {topic: f"/{EVAL_NAMESPACE}{topic}" for topic in bag.input_topics}
        subscribers = {INPUT_TOPIC: pipeline_node, OBJECT_LABEL_TOPIC: pipeline_node, IMAGE_TOPIC: estimator_node,
                       CAMERA_INFO_TOPIC: estimator_node}
        player = BagPlayer(node, bag.path, rate=rate, topics=list(bag.input_topics), remap=targets,
                           before_publish=pacer)
        executor = SingleThreadedExecutor(context=context)
        executor.add_node(node)
        executor.add_node(recorder)
        threading.Thread(target=executor.spin, name="ghtt-bag-eval-executor", daemon=True).start()
        try:
            def connected():
                inputs = all(node.count_subscribers(target) >= 1
                             and subscribers[topic].count_publishers(target) >= 1 for topic, target in targets.items())
                estimated = not images or pipeline_node.count_publishers(f"/{EVAL_NAMESPACE}/hands") >= 1
                return inputs and estimated and set(output_topics) <= set(recorder.recorded_topics)

            if not _wait(connected, startup_timeout_s):
                raise BagError(f"the player and the graph did not connect in {startup_timeout_s} s "
                                   f"(recording {recorder.recorded_topics})")
            time.sleep(0.3)  # discovery is seen before the endpoints have matched
            started = time.monotonic()
            play_errors = []
            playing = threading.Thread(target=_play, args=(player, play_errors), name="ghtt-bag-eval-player")
            playing.start()
            if not _join_while_progressing(playing, pacer, timeout_s + bag.longest_gap_s / rate):
                player.stop()
                playing.join(timeout_s)
                problems.append(f"playback stalled (no input published for {timeout_s} s); stopped after "
                                f"{pacer.published} inputs")
            problems += [f"playback failed: {error}" for error in play_errors]

            def drained():
                if images:
                    inputs_done = pacer.images_estimated() and _worker_idle(estimator_node)
                    poses_expected = estimator_node.stats.published
                    recorded_hands = (monitor.counts["hands"] == poses_expected
                                      and recorder.stats.messages.get(f"/{EVAL_NAMESPACE}/hands", 0) == poses_expected)
                else:
                    inputs_done, poses_expected, recorded_hands = True, pacer.published, True
                # every message the node published has arrived here and in the recorder (a result's messages go
                # out one after the other, so the last result's prediction may still travel after its refined poses)
                published = pipeline_node.messages_published
                arrived = all(monitor.counts[name] == published[name] for name in OUTPUT_NAMES)
                recorded = all(recorder.stats.messages.get(f"/{EVAL_NAMESPACE}/{name}", 0) == monitor.counts[name]
                               for name in OUTPUT_NAMES)
                return (inputs_done and pipeline_node.stats.received >= poses_expected and _worker_idle(pipeline_node)
                        and arrived and recorded and recorded_hands)

            if not _wait(drained, timeout_s):
                problems.append(f"timed out after {timeout_s} s waiting for the outputs: node received "
                                f"{pipeline_node.stats.received} of {pacer.published} inputs, published "
                                f"{pipeline_node.stats.published} results, {monitor.counts} arrived")
            wall_s = time.monotonic() - started
            stats = _counters(pipeline_node.stats.snapshot(time.monotonic()))
            skipped_results = pipeline_node.pipeline.stats.results_skipped
            if skipped_results:  # the overload policy must never apply under the pacing above
                problems.append(f"not lossless: {skipped_results} results skipped by the pipeline node as stale")
            estimator_stats = _counters(estimator_node.stats.snapshot(time.monotonic())) if images else None
        finally:
            recorder.close()
            executor.shutdown()
            recorder.destroy_node()
            node.destroy_node()
    finally:
        context.try_shutdown()
        graph.stop()
    details = {"latency": "live result latency: the last input of a clip published -> its refined clip received "
                          "(wall clock, incl. DDS and queueing)",
               "inputs_published": pacer.published, "node_stats": stats, "output_bag": str(output_bag)}
    if images:
        details["estimator_stats"] = estimator_stats
        lost_images = pacer.published - estimator_stats["frames_received"]
        lost_poses = estimator_stats["outputs_published"] - stats["frames_received"]
        if lost_images or estimator_stats["frames_skipped"]:
            problems.append(f"not lossless: {lost_images} images lost in transport, "
                            f"{estimator_stats['frames_skipped']} skipped by the hand_estimator node")
        problems += _estimator_drop_problems(estimator_stats["dropped_by_reason"])
    else:
        lost_poses = pacer.published - stats["frames_received"]
    if lost_poses or stats["frames_skipped"] or stats["frames_dropped"]:
        problems.append(f"not lossless: {lost_poses} poses lost in transport, {stats['frames_skipped']} skipped, "
                        f"{stats['frames_dropped']} dropped by the node ({stats['dropped_by_reason']})")
    details["problems"] = problems
    outputs = read_output_bag(output_bag)
    outputs.latencies_ms = [(arrival - pacer.publish_times[stamp]) * 1e3 for stamp, arrival in
                            sorted(monitor.arrivals.items()) if stamp in pacer.publish_times]
    return RunResult(outputs, wall_s, details, read_estimated_poses(output_bag) if images else None)


def _counters(snapshot):
    """A node's diagnostics snapshot without its latency figures: in a replay the node measures latency on the
    sim-time clock, which is not what a user waits; the report's one latency is the wall-clock result latency."""
    return {key: value for key, value in snapshot.items() if not key.startswith("latency_ms")}


def _join_while_progressing(thread, pacer, stall_s):
    """Waits for the player thread as long as it keeps publishing; False when it published nothing for stall_s."""
    published, progress_at = pacer.published, time.monotonic()
    while thread.is_alive():
        thread.join(0.2)
        if pacer.published != published:
            published, progress_at = pacer.published, time.monotonic()
        elif time.monotonic() - progress_at > stall_s:
            return False
    return True


def _play(player, errors):
    try:
        player.play()
    except (TimeoutError, BagError) as error:
        errors.append(str(error))
