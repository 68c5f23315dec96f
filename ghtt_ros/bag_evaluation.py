"""Rosbag replay evaluation: dataset sequences -> evaluation bags, and bags -> scored pipeline outputs.

An evaluation bag (written by `write_dataset_bag`, or recorded on a robot and given ground truth later) holds
- INPUT_TOPIC `/hands` (ghtt/TwoHandPose): what the pipeline sees, stamped with the source stamps;
- GT_HANDS_TOPIC `/ground_truth/hands` (ghtt/TwoHandPose): ground-truth poses with the same stamps;
- GT_ACTION_TOPIC `/ground_truth/action` (ghtt/ActionRecognition): one message per labelled action, with
  observation_start / observation_end = the stamps of its first and last frame and one hypothesis of score 1.
Bag (receive) times equal the header stamps, so replaying with /clock gives the nodes the source time.

Two ways to run the pipeline over a bag, which give the same scores (docs/bag-evaluation.md):
- `run_live`: the ghtt_pipeline node of config/pose_input.yaml (GraphRunner, composed, use_sim_time) is fed by a
  BagPlayer (with /clock) over DDS; a BagRecorder records its outputs. Lossless: reliable QoS, a pose queue larger than
  the bag's backlog, and the player pauses while more than MAX_FRAMES_AHEAD poses wait for the model.
- `run_offline`: the same StreamingPipeline in this process, no DDS.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml
from rclpy.serialization import serialize_message
from rosbags.rosbag2 import Writer

from ghtt_core.data.sequence import HandSequence
from ghtt_core.evaluate.stream_scoring import ActionSpan, GroundTruth, PoseStream, RefinedClip, StreamOutputs
from ghtt_core.pipeline import FrameInput, PipelineConfig, StreamingPipeline
from ghtt_ros.bag import (ROSBAG2_VERSION, STORAGES, BagError, BagRecorder, BagPlayer, bag_info, make_typestore,
                          read_messages)
from ghtt_ros.convert import (TwoHandArrays, action_recognition_from_msg, motion_prediction_from_msg, ns_to_stamp,
                              stamp_to_ns, two_hand_pose_array_from_msg, two_hand_pose_from_msg, two_hand_pose_to_msg)
from ghtt.msg import ActionHypothesis, ActionRecognition

INPUT_TOPIC = "/hands"
GT_HANDS_TOPIC = "/ground_truth/hands"
GT_ACTION_TOPIC = "/ground_truth/action"
TOPIC_TYPES = {INPUT_TOPIC: "ghtt/msg/TwoHandPose", GT_HANDS_TOPIC: "ghtt/msg/TwoHandPose",
               GT_ACTION_TOPIC: "ghtt/msg/ActionRecognition"}
INPUT_KINDS = ("auto", "estimated", "ground_truth")
DEFAULT_START_NS = 1_000 * 10**9  # stamps of a converted sequence start here (any fixed value > 0)
EVAL_NAMESPACE = "ghtt_bag_eval"
OUTPUT_NAMES = ("refined_hands", "action", "prediction")
SALVAGE_SLICE_S = 1.0  # a damaged bag is re-read in slices of this much bag time
MAX_FRAMES_AHEAD = 32  # poses published but not yet processed by the live pipeline, at most
_NS_PER_S = 1_000_000_000


# ---- dataset -> bag ---------------------------------------------------------------------------------------------

def _frame_stamps(sequence: HandSequence, start_ns):
    return start_ns + np.round(np.arange(sequence.num_frames) * _NS_PER_S / sequence.fps).astype(np.int64)


def _pose_msg(stamp_ns, joints, presence, frame_id, object_label=""):
    presence = np.asarray(presence, bool)
    joints = np.where(presence[:, None, None], joints, np.nan).astype(np.float32)
    return two_hand_pose_to_msg(TwoHandArrays(stamp_ns=int(stamp_ns), frame_id=frame_id, joints=joints,
                                              presence=presence, confidence=presence.astype(np.float32),
                                              object_label=object_label))


def _action_msg(segment, stamps, frame_id):
    msg = ActionRecognition()
    msg.header.stamp = ns_to_stamp(stamps[segment.start])
    msg.header.frame_id = frame_id
    msg.observation_start = ns_to_stamp(stamps[segment.start])
    msg.observation_end = ns_to_stamp(stamps[segment.end - 1])
    msg.hypotheses = [ActionHypothesis(label=segment.label, verb=segment.verb, noun=segment.noun, score=1.0)]
    return msg


def write_dataset_bag(sequence: HandSequence, path, input_kind="auto", storage="mcap", start_ns=DEFAULT_START_NS,
                      frame_id="camera_optical_frame", object_labels=True):
    """Writes an evaluation bag of one sequence; returns {topic: message count}.

    input_kind: "estimated" (the sequence's estimated poses), "ground_truth", or "auto" (estimated when the sequence has
    them). object_labels: inside a labelled action the input poses carry the action's object (what a robot's task
    knowledge or object detector would supply); outside actions and with False they carry none."""
    if input_kind not in INPUT_KINDS:
        raise ValueError(f"input_kind must be one of {INPUT_KINDS}, got {input_kind!r}")
    if storage not in STORAGES:
        raise ValueError(f"unknown bag storage {storage!r} (known: {sorted(STORAGES)})")
    has_estimates = sequence.estimated_joints is not None
    if input_kind == "estimated" and not has_estimates:
        raise ValueError(f"sequence {sequence.name!r} has no estimated poses; use input_kind 'ground_truth'")
    estimated = input_kind == "estimated" or (input_kind == "auto" and has_estimates)
    input_joints = sequence.estimated_joints if estimated else sequence.joints
    input_presence = sequence.estimated_presence if estimated else sequence.presence
    stamps = _frame_stamps(sequence, start_ns)
    nouns = [""] * sequence.num_frames
    if object_labels:
        for segment in sequence.actions:
            nouns[segment.start:segment.end] = [segment.noun] * (segment.end - segment.start)
    records = [(int(stamps[s.start]), 0, GT_ACTION_TOPIC, _action_msg(s, stamps, frame_id)) for s in sequence.actions]
    for i, stamp in enumerate(stamps):
        records.append((int(stamp), 1, GT_HANDS_TOPIC,
                        _pose_msg(stamp, sequence.joints[i], sequence.presence[i], frame_id)))
        records.append((int(stamp), 2, INPUT_TOPIC,
                        _pose_msg(stamp, input_joints[i], input_presence[i], frame_id, nouns[i])))
    records.sort(key=lambda record: record[:2])
    path = Path(path)
    if path.exists():
        raise BagError(f"bag path {path} already exists; rosbag2 writes a new directory")
    path.parent.mkdir(parents=True, exist_ok=True)
    typestore = make_typestore()
    writer = Writer(path, version=ROSBAG2_VERSION, storage_plugin=STORAGES[storage])
    writer.open()
    counts = {}
    try:
        connections = {topic: writer.add_connection(topic, msgtype, typestore=typestore)
                       for topic, msgtype in TOPIC_TYPES.items()}
        for stamp, _, topic, msg in records:
            writer.write(connections[topic], stamp, serialize_message(msg))
            counts[topic] = counts.get(topic, 0) + 1
    finally:
        writer.close()
    return counts


# ---- reading an evaluation bag ----------------------------------------------------------------------------------

@dataclass
class EvaluationBag:
    """What an evaluation needs from a bag. inputs: TwoHandArrays in bag order; truth None without ground truth;
    problems: what was wrong with the bag (a non-empty list makes the report partial)."""

    path: Path
    inputs: list
    truth: GroundTruth | None
    problems: list = field(default_factory=list)

    @property
    def duration_s(self):
        """Time from the first to the last input stamp."""
        stamps = [hands.stamp_ns for hands in self.inputs]
        return (max(stamps) - min(stamps)) / _NS_PER_S

    @property
    def longest_gap_s(self):
        """The longest time between two consecutive inputs (in bag order)."""
        stamps = np.array([hands.stamp_ns for hands in self.inputs], np.int64)
        return float(np.abs(np.diff(stamps)).max()) / _NS_PER_S if len(stamps) > 1 else 0.0

    def input_poses(self) -> PoseStream:
        return PoseStream.from_frames((h.stamp_ns, h.joints, h.presence) for h in self.inputs)


def _check_topics(path, topics):
    """BagError when the input topic is missing or has another type; -> (topics to read, problems)."""
    if INPUT_TOPIC not in topics:
        raise BagError(f"bag {path} has no input topic {INPUT_TOPIC} (ghtt/msg/TwoHandPose); it has {sorted(topics)}")
    readable, problems = [], []
    for topic, expected in TOPIC_TYPES.items():
        if topic not in topics:
            problems.append(f"no {topic} topic: the scores that need it are missing")
            continue
        msgtype = topics[topic][0]
        if msgtype != expected:
            message = f"topic {topic} has type {msgtype}, expected {expected}"
            if topic == INPUT_TOPIC:
                raise BagError(f"bag {path}: {message}")
            problems.append(message + ": not used")
            continue
        readable.append(topic)
    return readable, problems


def _stamp_order_problem(topic, stamps):
    backwards = int((np.diff(np.asarray(stamps, np.int64)) <= 0).sum()) if len(stamps) > 1 else 0
    if not backwards:
        return None
    return (f"{topic}: header stamps do not increase at {backwards} message(s) (out of order or repeated); the "
            f"pipeline ignores repeated stamps and resets its history where a stamp goes backwards")


def _salvaged_messages(path, topics, info, problems):
    """(topic, message) of the whole bag; when its storage is damaged, again slice by slice (SALVAGE_SLICE_S of bag
    time each), skipping the slices that cannot be read (noted in problems)."""
    try:
        return [(topic, msg) for topic, _, msg in read_messages(path, topics)]
    except BagError as error:
        problems.append(str(error))
    salvaged, damaged = [], []
    slice_ns = int(SALVAGE_SLICE_S * _NS_PER_S)
    for start_ns in range(info.start_ns, info.end_ns + 1, slice_ns):
        try:
            salvaged += [(topic, msg) for topic, _, msg in read_messages(path, topics, start_ns, start_ns + slice_ns)]
        except BagError:
            damaged.append((start_ns - info.start_ns) / _NS_PER_S)
    if damaged:
        problems.append(f"skipped the unreadable parts of the bag: {len(damaged)} slice(s) of {SALVAGE_SLICE_S} s "
                        f"starting at {', '.join(f'{t:.1f}' for t in damaged)} s after its start")
    return salvaged


def read_evaluation_bag(path) -> EvaluationBag:
    """Inputs and ground truth of a bag. BagError when nothing can be evaluated (no or unreadable bag, no input topic,
    input of another type); storage damaged in the middle, missing ground truth, malformed messages and unordered
    stamps become `problems` and what could be read is kept."""
    path = Path(path)
    info = bag_info(path)
    topics, problems = _check_topics(path, info.topics)
    messages = {topic: [] for topic in topics}
    malformed = 0
    for topic, msg in _salvaged_messages(path, topics, info, problems):
        try:
            messages[topic].append(action_recognition_from_msg(msg) if topic == GT_ACTION_TOPIC
                                   else two_hand_pose_from_msg(msg))
        except ValueError:
            malformed += 1
    if malformed:
        problems.append(f"{malformed} malformed message(s) skipped")
    inputs = messages[INPUT_TOPIC]
    if not inputs:
        raise BagError(f"bag {path}: no readable message on {INPUT_TOPIC}" + (f" ({'; '.join(problems)})"
                                                                              if problems else ""))
    problem = _stamp_order_problem(INPUT_TOPIC, [hands.stamp_ns for hands in inputs])
    if problem:
        problems.append(problem)
    truth = None
    if messages.get(GT_HANDS_TOPIC):
        poses = messages[GT_HANDS_TOPIC]
        problem = _stamp_order_problem(GT_HANDS_TOPIC, [hands.stamp_ns for hands in poses])
        if problem:
            problems.append(problem + " (ground truth is matched by stamp; the last pose of a stamp counts)")
        spans = sorted((ActionSpan(r.observation_start_ns, r.observation_end_ns, r.hypotheses[0].label)
                        for r in messages.get(GT_ACTION_TOPIC, []) if r.hypotheses), key=lambda s: s.start_ns)
        truth = GroundTruth(PoseStream.from_frames((h.stamp_ns, h.joints, h.presence) for h in poses), spans)
    return EvaluationBag(path, inputs, truth, problems)


# ---- running the pipeline ---------------------------------------------------------------------------------------

@dataclass
class RunResult:
    outputs: StreamOutputs
    wall_s: float  # feeding the inputs until the last output
    details: dict  # facts of the run for the report


def _frame_input(hands: TwoHandArrays) -> FrameInput:
    """As the ghtt_pipeline node builds it (its topic / parameter object label fallbacks are empty here)."""
    return FrameInput(stamp_ns=hands.stamp_ns, joints=hands.joints, presence=hands.presence,
                      confidence=hands.confidence, frame_id=hands.frame_id, object_label=hands.object_label)


def run_offline(bag: EvaluationBag, checkpoint, config: PipelineConfig, device="cpu") -> RunResult:
    """The StreamingPipeline over the bag's inputs in this process; latency = the pipeline's compute time."""
    pipeline = StreamingPipeline.from_checkpoint(checkpoint, device, config)
    outputs = StreamOutputs()
    started = time.monotonic()
    for hands in bag.inputs:
        if hands.stamp_ns == 0:
            continue  # the node drops stamp-0 poses too
        result = pipeline.push(_frame_input(hands))
        if result is None:
            continue
        outputs.refined.append(RefinedClip(result.stamps_ns, result.refined_joints, result.refined_presence))
        if result.recognition is not None:
            outputs.recognitions.append(result.recognition)
        if result.prediction is not None:
            outputs.predictions.append(result.prediction)
        outputs.latencies_ms.append(result.timings_ms["total"])
    wall_s = time.monotonic() - started
    return RunResult(outputs, wall_s, {"latency": "offline: model compute time per result",
                                       "pipeline_stats": dataclasses.asdict(pipeline.stats)})


def read_output_bag(path, namespace=EVAL_NAMESPACE) -> StreamOutputs:
    """The pipeline outputs recorded in a bag (topics /<namespace>/refined_hands, action, prediction)."""
    outputs = StreamOutputs()
    topics = {f"/{namespace}/{name}": name for name in OUTPUT_NAMES}
    present = [topic for topic in topics if topic in bag_info(path).topics]
    for topic, _, msg in read_messages(path, present):
        if topics[topic] == "refined_hands":
            frames, _ = two_hand_pose_array_from_msg(msg)
            outputs.refined.append(RefinedClip(np.array([f.stamp_ns for f in frames], np.int64),
                                               np.stack([f.joints for f in frames]),
                                               np.stack([f.presence for f in frames])))
        elif topics[topic] == "action":
            outputs.recognitions.append(action_recognition_from_msg(msg))
        else:
            outputs.predictions.append(motion_prediction_from_msg(msg)[0])
    return outputs


def pipeline_node_parameters(config: PipelineConfig, checkpoint, device):
    """Every PipelineConfig value as a ghtt_pipeline parameter (so the graph's YAML cannot make live differ from
    offline), plus sim time and a pose queue that never discards."""
    parameters = {key: value for key, value in dataclasses.asdict(config).items() if key != "clip_len"}
    parameters.update(checkpoint=str(checkpoint), device=device, object_label="", use_sim_time=True,
                      pose_queue_size=4096, autostart=True)
    return parameters


def _pipeline_only_graph():
    """config/pose_input.yaml without the visualizer (it only costs CPU here)."""
    from ghtt_ros.graph import config_dir

    graph = yaml.safe_load((config_dir() / "pose_input.yaml").read_text())
    graph["nodes"] = [node for node in graph["nodes"] if node["executable"] == "ghtt_pipeline"]
    graph["namespace"] = EVAL_NAMESPACE
    return graph


class _OutputMonitor:
    """Counts the graph's outputs and notes when each refined clip arrived (wall clock)."""

    def __init__(self, node, qos):
        from ghtt.msg import MotionPrediction, TwoHandPoseArray

        self.counts = dict.fromkeys(OUTPUT_NAMES, 0)
        self.arrivals = {}  # last frame stamp of a result -> monotonic receive time
        self._lock = threading.Lock()
        for name, msg_type in (("refined_hands", TwoHandPoseArray), ("action", ActionRecognition),
                               ("prediction", MotionPrediction)):
            node.create_subscription(msg_type, f"/{EVAL_NAMESPACE}/{name}",
                                     lambda msg, n=name: self._on_output(n, msg), qos)

    def _on_output(self, name, msg):
        with self._lock:
            self.counts[name] += 1
            if name == "refined_hands":
                self.arrivals[stamp_to_ns(msg.frames[-1].header.stamp)] = time.monotonic()


class _LivePacer:
    """BagPlayer.before_publish: holds the playback while MAX_FRAMES_AHEAD poses wait for the model (in DDS or in
    the node's queue), and notes when each stamp was published."""

    def __init__(self, pipeline_node, timeout_s):
        self.node = pipeline_node
        self.timeout_s = timeout_s
        self.published = 0
        self.publish_times = {}  # stamp -> monotonic time

    def waiting(self):
        worker = self.node.worker
        return self.published - self.node.stats.received + (worker.pending if worker is not None else 0)

    def __call__(self, topic, stamp_ns):
        deadline = time.monotonic() + self.timeout_s
        while self.waiting() >= MAX_FRAMES_AHEAD:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the pipeline did not catch up in {self.timeout_s} s "
                                   f"({self.waiting()} poses still waiting)")
            time.sleep(0.002)
        self.publish_times[stamp_ns] = time.monotonic()
        self.published += 1


def _wait(condition, timeout_s, period_s=0.02):
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(period_s)
    return True


def run_live(bag: EvaluationBag, checkpoint, config: PipelineConfig, output_bag, device="cpu", rate=float("inf"),
             timeout_s=60.0, startup_timeout_s=60.0) -> RunResult:
    """Plays the bag's input topic (with /clock) into a live ghtt_pipeline node on sim time and records its outputs
    into `output_bag`; latency = from publishing a clip's last pose to receiving its refined clip (wall clock).
    timeout_s bounds every wait for the graph (a stalled graph gives a partial result, never a hang)."""
    import rclpy
    from rclpy.executors import MultiThreadedExecutor
    from rclpy.parameter import Parameter
    from rclpy.qos import QoSProfile, ReliabilityPolicy

    from ghtt_ros.runner import GraphRunner

    graph = GraphRunner(_pipeline_only_graph(),
                        overrides={"ghtt_pipeline": pipeline_node_parameters(config, checkpoint, device)}).start()
    context = rclpy.Context()
    problems = []
    try:
        pipeline_node = graph.nodes["ghtt_pipeline"]
        _wait(lambda: pipeline_node.state_label == "active" or pipeline_node.error, startup_timeout_s)
        if pipeline_node.state_label != "active":
            raise RuntimeError(f"the ghtt_pipeline node did not become active in {startup_timeout_s} s: "
                               f"{pipeline_node.error or pipeline_node.state_label}")
        rclpy.init(args=[], context=context)
        node = rclpy.create_node("ghtt_bag_evaluator", context=context)
        output_topics = [f"/{EVAL_NAMESPACE}/{name}" for name in OUTPUT_NAMES]
        recorder = BagRecorder(output_bag, topics=output_topics, context=context,
                               parameter_overrides=[Parameter("use_sim_time", value=True)])
        monitor = _OutputMonitor(node, QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE))
        pacer = _LivePacer(pipeline_node, timeout_s)
        input_target = f"/{EVAL_NAMESPACE}/hands"
        player = BagPlayer(node, bag.path, rate=rate, topics=[INPUT_TOPIC], remap={INPUT_TOPIC: input_target},
                           before_publish=pacer)
        executor = MultiThreadedExecutor(num_threads=2, context=context)
        executor.add_node(node)
        executor.add_node(recorder)
        threading.Thread(target=executor.spin, name="ghtt-bag-eval-executor", daemon=True).start()
        try:
            connected = _wait(lambda: node.count_subscribers(input_target) >= 1
                              and pipeline_node.count_publishers(input_target) >= 1
                              and set(output_topics) <= set(recorder.recorded_topics), startup_timeout_s)
            if not connected:
                raise RuntimeError(f"the player and the graph did not connect in {startup_timeout_s} s "
                                   f"(recording {recorder.recorded_topics})")
            time.sleep(0.3)  # discovery is seen before the endpoints have matched
            started = time.monotonic()
            play_errors = []
            playing = threading.Thread(target=_play, args=(player, play_errors), name="ghtt-bag-eval-player")
            playing.start()
            if not _join_while_progressing(playing, pacer, timeout_s + bag.longest_gap_s / rate):
                player.stop()
                playing.join(timeout_s)
                problems.append(f"playback stalled (no pose published for {timeout_s} s); stopped after "
                                f"{pacer.published} poses")
            problems += [f"playback failed: {error}" for error in play_errors]

            def drained():
                worker = pipeline_node.worker
                idle = worker is not None and worker.pending == 0 and worker.wait_idle(0)
                results = pipeline_node.stats.published
                recorded = all(recorder.stats.messages.get(f"/{EVAL_NAMESPACE}/{name}", 0) == monitor.counts[name]
                               for name in OUTPUT_NAMES)
                return (pipeline_node.stats.received >= pacer.published and idle
                        and monitor.counts["refined_hands"] == results and recorded)

            if not _wait(drained, timeout_s):
                problems.append(f"timed out after {timeout_s} s waiting for the outputs: node received "
                                f"{pipeline_node.stats.received} of {pacer.published} poses, published "
                                f"{pipeline_node.stats.published} results, {monitor.counts} arrived")
            wall_s = time.monotonic() - started
            stats = pipeline_node.stats.snapshot(time.monotonic())
        finally:
            recorder.close()
            executor.shutdown()
            recorder.destroy_node()
            node.destroy_node()
    finally:
        context.try_shutdown()
        graph.stop()
    lost = pacer.published - stats["frames_received"]
    if lost or stats["frames_skipped"] or stats["frames_dropped"]:
        problems.append(f"not lossless: {lost} poses lost in transport, {stats['frames_skipped']} skipped, "
                        f"{stats['frames_dropped']} dropped by the node ({stats['dropped_by_reason']})")
    outputs = read_output_bag(output_bag)
    outputs.latencies_ms = [(arrival - pacer.publish_times[stamp]) * 1e3 for stamp, arrival in
                            sorted(monitor.arrivals.items()) if stamp in pacer.publish_times]
    details = {"latency": "live: last pose of a clip published -> its refined clip received (wall clock, incl. DDS "
                          "and queueing)",
               "inputs_published": pacer.published, "node_stats": stats, "output_bag": str(output_bag),
               "problems": problems}
    return RunResult(outputs, wall_s, details)


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
