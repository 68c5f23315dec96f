"""Rosbag replay evaluation: reading an evaluation bag, running the pipeline over it in-process, reading run outputs.

`read_evaluation_bag` reads the inputs and the ground truth of a bag (its format: ghtt_ros.bag.dataset), salvaging
what it can of a damaged one. Two ways to run the pipeline over a bag, which give the same scores
(docs/bag-evaluation.md):
- `run_live` (ghtt_ros.bag.live): the graph of config/pose_input.yaml (ghtt_pipeline) or, for images, of
  config/graph.yaml (hand_estimator -> ghtt_pipeline), run by GraphRunner (composed, use_sim_time), is fed by a
  BagPlayer (with /clock) over DDS; a BagRecorder records its outputs (read back with `read_output_bag`,
  `read_estimated_poses`).
- `run_offline` (here): the same per-image step (ghtt_core.estimator.stream via ghtt_ros.nodes.hand_estimator.
  estimate_image) and the same StreamingPipeline in this process, no DDS.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from rclpy.serialization import serialize_message

from ghtt_core.evaluate.stream_scoring import ActionSpan, GroundTruth, PoseStream, RefinedClip, StreamOutputs
from ghtt_core.pipeline import FrameInput, PipelineConfig, StreamingPipeline
from ghtt_ros.bag.io import BagError, bag_info, read_messages
from ghtt_ros.bag.dataset import (_NS_PER_S, CAMERA_INFO_TOPIC, GROUND_TRUTH_TYPES, GT_ACTION_TOPIC, GT_HANDS_TOPIC,
                                  IMAGE_INPUT_TYPES, IMAGE_TOPIC, INPUT_TOPIC, OBJECT_LABEL_TOPIC, POSE_INPUT_TYPES)
from ghtt_ros.convert import (TwoHandArrays, action_recognition_from_msg, motion_prediction_from_msg, stamp_to_ns,
                              two_hand_pose_array_from_msg, two_hand_pose_from_msg)

EVALUATED_INPUTS = ("auto", "poses", "images")  # what `evaluate` feeds the graph (auto: poses when the bag has them)
EVAL_NAMESPACE = "ghtt_bag_eval"  # of the live graph: an output bag has topics /<EVAL_NAMESPACE>/<output name>
OUTPUT_NAMES = ("refined_hands", "action", "prediction")
SALVAGE_SLICE_S = 1.0  # a damaged bag is re-read in slices of this much bag time


# ---- reading an evaluation bag ----------------------------------------------------------------------------------

@dataclass
class ImageFrame:
    """One image input of a bag: its header stamp (the pixels stay in the bag until a run reads them)."""

    stamp_ns: int


@dataclass
class EvaluationBag:
    """What an evaluation needs from a bag. input_kind: "poses" (inputs: TwoHandArrays of /hands in bag order) or
    "images" (inputs: ImageFrame of /image in bag order; `image_inputs()` streams the messages); input_topics: the
    bag topics a run plays; truth None without ground truth; problems: what was wrong with the bag (a non-empty list
    makes the report partial)."""

    path: Path
    inputs: list
    truth: GroundTruth | None
    problems: list = field(default_factory=list)
    input_kind: str = "poses"
    input_topics: tuple = (INPUT_TOPIC,)

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

    def input_poses(self) -> PoseStream | None:
        """The poses the pipeline is fed (poses bags); None for image bags (the estimator computes them per run)."""
        if self.input_kind != "poses":
            return None
        return PoseStream.from_frames((h.stamp_ns, h.joints, h.presence) for h in self.inputs)

    def image_inputs(self):
        """(topic, rclpy message) of the image-input topics in bag order, read slice by slice so that the images are
        never all in memory (unreadable slices are skipped; read_evaluation_bag reported them)."""
        yield from _sliced_messages(self.path, list(self.input_topics), bag_info(self.path), [])


def _input_kind(path, topics, requested="auto"):
    """"poses" (/hands) or "images" (/image) as requested; auto: poses when the bag has /hands, else images."""
    if requested not in EVALUATED_INPUTS:
        raise ValueError(f"input must be one of {EVALUATED_INPUTS}, got {requested!r}")
    has_poses, has_images = INPUT_TOPIC in topics, IMAGE_TOPIC in topics
    if requested == "poses" or (requested == "auto" and (has_poses or not has_images)):
        if not has_poses:
            alternative = "" if requested == "poses" else f" or {IMAGE_TOPIC} (sensor_msgs/msg/Image)"
            raise BagError(f"bag {path} has no input topic {INPUT_TOPIC} (ghtt/msg/TwoHandPose){alternative}; it has "
                           f"{sorted(topics)}")
        return "poses"
    if not has_images:
        raise BagError(f"bag {path} has no input topic {IMAGE_TOPIC} (sensor_msgs/msg/Image); it has {sorted(topics)}")
    return "images"


def _check_topics(path, topics, input_kind="poses"):
    """BagError when the input topic has another type; -> (topics to read, problems). Optional image-input topics
    (/camera_info, /object_label) may be absent."""
    main_input = INPUT_TOPIC if input_kind == "poses" else IMAGE_TOPIC
    expected_types = {**(POSE_INPUT_TYPES if input_kind == "poses" else IMAGE_INPUT_TYPES), **GROUND_TRUTH_TYPES}
    readable, problems = [], []
    for topic, expected in expected_types.items():
        if topic not in topics:
            if topic in GROUND_TRUTH_TYPES:
                problems.append(f"no {topic} topic: the scores that need it are missing")
            continue
        msgtype = topics[topic][0]
        if msgtype != expected:
            message = f"topic {topic} has type {msgtype}, expected {expected}"
            if topic == main_input:
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
    return list(_sliced_messages(path, topics, info, problems))


def _sliced_messages(path, topics, info, problems):
    """(topic, message) in bag order, read in slices of SALVAGE_SLICE_S of bag time (a generator: one slice in
    memory at a time); slices that cannot be read are skipped and noted in problems."""
    damaged = []
    slice_ns = int(SALVAGE_SLICE_S * _NS_PER_S)
    for start_ns in range(info.start_ns, info.end_ns + 1, slice_ns):
        try:
            batch = [(topic, msg) for topic, _, msg in read_messages(path, topics, start_ns, start_ns + slice_ns)]
        except BagError:
            damaged.append((start_ns - info.start_ns) / _NS_PER_S)
            continue
        yield from batch
    if damaged:
        problems.append(f"skipped the unreadable parts of the bag: {len(damaged)} slice(s) of {SALVAGE_SLICE_S} s "
                        f"starting at {', '.join(f'{t:.1f}' for t in damaged)} s after its start")


def _ground_truth(messages, problems):
    if not messages.get(GT_HANDS_TOPIC):
        return None
    poses = messages[GT_HANDS_TOPIC]
    problem = _stamp_order_problem(GT_HANDS_TOPIC, [hands.stamp_ns for hands in poses])
    if problem:
        problems.append(problem + " (ground truth is matched by stamp; the last pose of a stamp counts)")
    spans = sorted((ActionSpan(r.observation_start_ns, r.observation_end_ns, r.hypotheses[0].label)
                    for r in messages.get(GT_ACTION_TOPIC, []) if r.hypotheses), key=lambda s: s.start_ns)
    return GroundTruth(PoseStream.from_frames((h.stamp_ns, h.joints, h.presence) for h in poses), spans)


def read_evaluation_bag(path, input_kind="auto") -> EvaluationBag:
    """Inputs and ground truth of a bag. input_kind: "poses", "images" or "auto" (poses when the bag has /hands,
    else images). BagError when nothing can be evaluated (no or unreadable bag, no input topic, input of another
    type); storage damaged in the middle, missing ground truth, malformed messages and unordered stamps become
    `problems` and what could be read is kept."""
    path = Path(path)
    info = bag_info(path)
    kind = _input_kind(path, info.topics, input_kind)
    topics, problems = _check_topics(path, info.topics, kind)
    main_input = INPUT_TOPIC if kind == "poses" else IMAGE_TOPIC
    if kind == "poses":
        read = _salvaged_messages(path, topics, info, problems)
    else:  # images: stream, keeping only the stamps of the images
        read = _sliced_messages(path, [t for t in topics if t in GROUND_TRUTH_TYPES or t == IMAGE_TOPIC], info,
                                problems)
    messages = {topic: [] for topic in topics}
    malformed = 0
    for topic, msg in read:
        try:
            if topic == IMAGE_TOPIC:
                messages[topic].append(ImageFrame(stamp_to_ns(msg.header.stamp)))
            elif topic == GT_ACTION_TOPIC:
                messages[topic].append(action_recognition_from_msg(msg))
            else:
                messages[topic].append(two_hand_pose_from_msg(msg))
        except ValueError:
            malformed += 1
    if malformed:
        problems.append(f"{malformed} malformed message(s) skipped")
    inputs = messages[main_input]
    if not inputs:
        raise BagError(f"bag {path}: no readable message on {main_input}" + (f" ({'; '.join(problems)})"
                                                                             if problems else ""))
    problem = _stamp_order_problem(main_input, [frame.stamp_ns for frame in inputs])
    if problem:
        problems.append(problem)
    input_topics = (INPUT_TOPIC,) if kind == "poses" else tuple(t for t in IMAGE_INPUT_TYPES if t in topics)
    return EvaluationBag(path, inputs, _ground_truth(messages, problems), problems, kind, input_topics)


# ---- running the pipeline ---------------------------------------------------------------------------------------

@dataclass
class RunResult:
    outputs: StreamOutputs
    wall_s: float  # feeding the inputs until the last output
    details: dict  # facts of the run for the report
    input_poses: PoseStream | None = None  # image bags: the estimator's poses of this run (poses bags: None)


def _frame_input(hands: TwoHandArrays, object_label="") -> FrameInput:
    """As the ghtt_pipeline node builds it: the pose's object label, else the latest /object_label message (its
    parameter fallback is empty here)."""
    return FrameInput(stamp_ns=hands.stamp_ns, joints=hands.joints, presence=hands.presence,
                      confidence=hands.confidence, frame_id=hands.frame_id,
                      object_label=hands.object_label or object_label)


def _push(pipeline, frame, outputs):
    result = pipeline.push(frame)
    if result is None:
        return
    outputs.refined.append(RefinedClip(result.stamps_ns, result.refined_joints, result.refined_presence))
    if result.recognition is not None:
        outputs.recognitions.append(result.recognition)
    if result.prediction is not None:
        outputs.predictions.append(result.prediction)
    outputs.latencies_ms.append(result.timings_ms["total"])


def estimator_parameters(**values):
    """Every hand_estimator parameter (its defaults, updated with values; depth off: evaluation bags have none). The
    same dict configures the live node and the offline ImageStreamEstimator, so the YAML cannot make them differ."""
    from ghtt_ros.nodes.hand_estimator import ESTIMATOR_PARAMETERS

    parameters = {spec.name: spec.default for spec in ESTIMATOR_PARAMETERS}
    unknown = sorted(set(values) - set(parameters))
    if unknown:
        raise ValueError(f"unknown hand_estimator parameters {unknown}; known: {sorted(parameters)}")
    parameters.update(values)
    if parameters["use_depth"]:
        raise ValueError("evaluation bags carry no depth images: use_depth must be false")
    for spec in ESTIMATOR_PARAMETERS:
        spec.check(parameters[spec.name])
    return parameters


def run_offline(bag: EvaluationBag, checkpoint, config: PipelineConfig, device="cpu",
                estimator_params=None) -> RunResult:
    """The StreamingPipeline over the bag's inputs in this process; latency = the pipeline's compute time. Image
    bags: every image goes through the hand_estimator node's per-image step first (ghtt_ros.nodes.hand_estimator.
    estimate_image with the latest /camera_info; /object_label as the pipeline node's object label topic)."""
    from ghtt_core.estimator.stream import ImageStreamEstimator

    pipeline = StreamingPipeline.from_checkpoint(checkpoint, device, config)
    outputs = StreamOutputs()
    details = {"latency": "offline result latency: the model's compute time per result (wall clock; no transport)"}
    input_poses = None
    if bag.input_kind == "poses":
        started = time.monotonic()
        for hands in bag.inputs:
            if hands.stamp_ns == 0:
                continue  # the node drops stamp-0 poses too
            _push(pipeline, _frame_input(hands), outputs)
        wall_s = time.monotonic() - started
    else:
        params = estimator_parameters(**(estimator_params or {}))
        stream = ImageStreamEstimator.from_parameters(params, device)  # as the node builds it on activation
        try:
            started = time.monotonic()
            estimated, details["estimator_stats"], problems = _estimate_offline(
                bag, stream, params, lambda hands, label: _push(pipeline, _frame_input(hands, label), outputs))
            wall_s = time.monotonic() - started
        finally:
            stream.close()
        details["problems"] = problems
        input_poses = PoseStream.from_frames((h.stamp_ns, h.joints, h.presence) for h in estimated)
    details["pipeline_stats"] = dataclasses.asdict(pipeline.stats)
    return RunResult(outputs, wall_s, details, input_poses)


def _estimate_offline(bag, stream, params, on_pose):
    """Runs the per-image step (stream: the ImageStreamEstimator of params) over the bag's images; on_pose(
    TwoHandArrays, object label) gets each pose as the pipeline node would receive it. -> (poses, estimator stats,
    problems)."""
    from rclpy.serialization import deserialize_message

    from ghtt.msg import TwoHandPose
    from ghtt_ros.nodes.hand_estimator import estimate_image, estimate_to_msg

    camera_info, label, poses = None, "", []
    images, dropped, events = 0, {}, {}
    for topic, msg in bag.image_inputs():
        if topic == CAMERA_INFO_TOPIC:
            camera_info = msg
            continue
        if topic == OBJECT_LABEL_TOPIC:
            label = msg.data
            continue
        images += 1
        estimate = estimate_image(stream, msg, camera_info if params["use_camera_info"] else None)
        for reason, _ in estimate.events:
            events[reason] = events.get(reason, 0) + 1
        for reason, _ in estimate.dropped:
            dropped[reason] = dropped.get(reason, 0) + 1
        if estimate.hands is None:
            continue
        # Exactly what the ghtt_pipeline node gets: the published message after (de)serialization.
        wire = serialize_message(estimate_to_msg(estimate, msg.header.frame_id))
        hands = two_hand_pose_from_msg(deserialize_message(wire, TwoHandPose))
        poses.append(hands)
        on_pose(hands, label)
    stats = {"frames_received": images, "outputs_published": len(poses), "frames_dropped": sum(dropped.values()),
             "dropped_by_reason": dropped, "events": events}
    return poses, stats, _estimator_drop_problems(dropped)


def _estimator_drop_problems(dropped):
    count = sum(dropped.values())
    return [f"the hand estimator dropped {count} image(s): {dict(sorted(dropped.items()))}"] if count else []


# ---- reading the outputs of a run -------------------------------------------------------------------------------

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


def read_estimated_poses(path, namespace=EVAL_NAMESPACE) -> PoseStream:
    """The hand_estimator's poses recorded in a bag (topic /<namespace>/hands)."""
    topic = f"/{namespace}/hands"
    if topic not in bag_info(path).topics:
        return PoseStream.from_frames([])
    return PoseStream.from_frames((h.stamp_ns, h.joints, h.presence) for h in
                                  (two_hand_pose_from_msg(msg) for _, _, msg in read_messages(path, [topic])))
