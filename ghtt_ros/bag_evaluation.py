"""Rosbag replay evaluation: dataset sequences -> evaluation bags, and bags -> scored pipeline outputs.

An evaluation bag (written by `write_dataset_bag`, or recorded on a robot and given ground truth later) holds an input
- poses: INPUT_TOPIC `/hands` (ghtt/TwoHandPose), what the pipeline sees, stamped with the source stamps; or
- images: IMAGE_TOPIC `/image` (sensor_msgs/Image) with CAMERA_INFO_TOPIC `/camera_info` (sensor_msgs/CameraInfo)
  per frame and optionally OBJECT_LABEL_TOPIC `/object_label` (std_msgs/String, whenever the object changes): what
  the camera path (hand_estimator -> ghtt_pipeline) sees;
and the ground truth
- GT_HANDS_TOPIC `/ground_truth/hands` (ghtt/TwoHandPose): ground-truth poses with the same stamps;
- GT_ACTION_TOPIC `/ground_truth/action` (ghtt/ActionRecognition): one message per labelled action, with
  observation_start / observation_end = the stamps of its first and last frame and one hypothesis of score 1.
Bag (receive) times equal the header stamps, so replaying with /clock gives the nodes the source time.

Two ways to run the pipeline over a bag, which give the same scores (docs/bag-evaluation.md):
- `run_live`: the graph of config/pose_input.yaml (ghtt_pipeline) or, for images, of config/graph.yaml
  (hand_estimator -> ghtt_pipeline), run by GraphRunner (composed, use_sim_time), is fed by a BagPlayer (with /clock)
  over DDS; a BagRecorder records its outputs. Lossless: reliable QoS, queues larger than the backlog, and the player
  pauses while the graph is behind (images: one image at a time through the estimator).
- `run_offline`: the same per-image step (ghtt_core.estimator.stream via ghtt_ros.hand_estimator.estimate_image) and
  the same StreamingPipeline in this process, no DDS.
"""

from __future__ import annotations

import dataclasses
import shutil
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
from ghtt_core.estimator.camera import CameraIntrinsics
from ghtt_core.pipeline import FrameInput, PipelineConfig, StreamingPipeline
from ghtt_ros.bag import (ROSBAG2_VERSION, STORAGES, BagError, BagRecorder, BagPlayer, bag_info, make_typestore,
                          read_messages)
from ghtt_ros.convert import (TwoHandArrays, action_recognition_from_msg, motion_prediction_from_msg, ns_to_stamp,
                              stamp_to_ns, two_hand_pose_array_from_msg, two_hand_pose_from_msg, two_hand_pose_to_msg)
from ghtt.msg import ActionHypothesis, ActionRecognition

INPUT_TOPIC = "/hands"
IMAGE_TOPIC = "/image"
CAMERA_INFO_TOPIC = "/camera_info"
OBJECT_LABEL_TOPIC = "/object_label"
GT_HANDS_TOPIC = "/ground_truth/hands"
GT_ACTION_TOPIC = "/ground_truth/action"
GROUND_TRUTH_TYPES = {GT_HANDS_TOPIC: "ghtt/msg/TwoHandPose", GT_ACTION_TOPIC: "ghtt/msg/ActionRecognition"}
POSE_INPUT_TYPES = {INPUT_TOPIC: "ghtt/msg/TwoHandPose"}
IMAGE_INPUT_TYPES = {IMAGE_TOPIC: "sensor_msgs/msg/Image", CAMERA_INFO_TOPIC: "sensor_msgs/msg/CameraInfo",
                     OBJECT_LABEL_TOPIC: "std_msgs/msg/String"}
TOPIC_TYPES = {**POSE_INPUT_TYPES, **GROUND_TRUTH_TYPES}  # a pose-input evaluation bag
INPUT_KINDS = ("auto", "estimated", "ground_truth", "images")
EVALUATED_INPUTS = ("auto", "poses", "images")  # what `evaluate` feeds the graph (auto: poses when the bag has them)
IMAGE_ENCODING = "bgr8"  # as OpenCV decodes the files (and as the demo publishes)
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


def _frame_nouns(sequence: HandSequence, object_labels):
    nouns = [""] * sequence.num_frames
    if object_labels:
        for segment in sequence.actions:
            nouns[segment.start:segment.end] = [segment.noun] * (segment.end - segment.start)
    return nouns


def check_sequence_images(sequence: HandSequence):
    """The sequence's image files, one per frame; ValueError (naming the sequence or the file) when it has none, when
    its ground truth is not in the images' camera frame, or when a file is missing."""
    if not sequence.image_paths:
        raise ValueError(f"sequence {sequence.name!r} has no images (the dataset folder has none for this view: H2O "
                         "needs <sequence>/<camera>/rgb/, AssemblyHands images/ego_images_rectified/ and an ego "
                         "camera --view); evaluate its poses instead (--input auto or ground_truth)")
    if sequence.view == "world":
        raise ValueError(f"sequence {sequence.name!r} is in the 'world' view: its ground truth is not in the camera "
                         "frame of its images; choose a camera view (--view)")
    if len(sequence.image_paths) != sequence.num_frames:
        raise ValueError(f"sequence {sequence.name!r} has {len(sequence.image_paths)} image paths for "
                         f"{sequence.num_frames} frames")
    paths = [Path(path) for path in sequence.image_paths]
    missing = [(index, path) for index, path in enumerate(paths) if not path.is_file()]
    if missing:
        index, path = missing[0]
        raise ValueError(f"image file of frame {index} not found: {path}"
                         + (f" (and {len(missing) - 1} more missing)" if len(missing) > 1 else ""))
    return paths


def read_image_file(path, index):
    """An image file as decoded by OpenCV (BGR uint8); ValueError naming the file when it cannot be decoded."""
    import cv2

    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None or bgr.size == 0:
        raise ValueError(f"image file of frame {index} cannot be decoded (corrupt or not an image): {path}")
    return bgr


def _image_records(sequence: HandSequence, stamps, frame_id, nouns, object_labels):
    """Records of the image input: Image + CameraInfo per frame (decoded when written), /object_label when the
    object changes (and at the first frame)."""
    from std_msgs.msg import String

    from ghtt_ros.images import array_to_image, intrinsics_to_camera_info

    paths = check_sequence_images(sequence)
    records = []
    if object_labels:
        for i, noun in enumerate(nouns):
            if i == 0 or noun != nouns[i - 1]:
                records.append((int(stamps[i]), 2, OBJECT_LABEL_TOPIC, String(data=noun)))
    decoded = {}  # frame -> BGR image of the CameraInfo record, reused by its Image record (written next)

    def camera_info(i):
        bgr = decoded[i] = read_image_file(paths[i], i)
        intrinsics = CameraIntrinsics.from_matrix(sequence.intrinsics, bgr.shape[1], bgr.shape[0])
        return intrinsics_to_camera_info(intrinsics, int(stamps[i]), frame_id)

    def image(i):
        bgr = decoded.pop(i) if i in decoded else read_image_file(paths[i], i)
        return array_to_image(bgr, IMAGE_ENCODING, int(stamps[i]), frame_id)

    for i in range(sequence.num_frames):
        if sequence.intrinsics is not None:
            records.append((int(stamps[i]), 3, CAMERA_INFO_TOPIC, lambda i=i: camera_info(i)))
        records.append((int(stamps[i]), 4, IMAGE_TOPIC, lambda i=i: image(i)))
    return records


def write_dataset_bag(sequence: HandSequence, path, input_kind="auto", storage="mcap", start_ns=DEFAULT_START_NS,
                      frame_id="camera_optical_frame", object_labels=True):
    """Writes an evaluation bag of one sequence; returns {topic: message count}.

    input_kind: "estimated" (the sequence's estimated poses), "ground_truth", "auto" (estimated when the sequence has
    them) on /hands; or "images": the sequence's image files (decoded with OpenCV) as Image (bgr8) on /image, with a
    CameraInfo from the sequence's intrinsics on /camera_info per frame (none when it has no intrinsics: the estimator
    then assumes its default field of view), same stamps and frame_id as the ground truth. object_labels: inside a
    labelled action the input carries the action's object (poses: object_label; images: /object_label messages
    whenever it changes), what a robot's task knowledge or object detector would supply; outside actions and with
    False none. A sequence without images, a missing or undecodable image file: ValueError naming it (and no bag)."""
    if input_kind not in INPUT_KINDS:
        raise ValueError(f"input_kind must be one of {INPUT_KINDS}, got {input_kind!r}")
    if storage not in STORAGES:
        raise ValueError(f"unknown bag storage {storage!r} (known: {sorted(STORAGES)})")
    stamps = _frame_stamps(sequence, start_ns)
    nouns = _frame_nouns(sequence, object_labels)
    records = [(int(stamps[s.start]), 0, GT_ACTION_TOPIC, _action_msg(s, stamps, frame_id)) for s in sequence.actions]
    for i, stamp in enumerate(stamps):
        records.append((int(stamp), 1, GT_HANDS_TOPIC,
                        _pose_msg(stamp, sequence.joints[i], sequence.presence[i], frame_id)))
    if input_kind == "images":
        records += _image_records(sequence, stamps, frame_id, nouns, object_labels)
        topic_types = {**GROUND_TRUTH_TYPES, **IMAGE_INPUT_TYPES}
    else:
        has_estimates = sequence.estimated_joints is not None
        if input_kind == "estimated" and not has_estimates:
            raise ValueError(f"sequence {sequence.name!r} has no estimated poses; use input_kind 'ground_truth'")
        estimated = input_kind == "estimated" or (input_kind == "auto" and has_estimates)
        input_joints = sequence.estimated_joints if estimated else sequence.joints
        input_presence = sequence.estimated_presence if estimated else sequence.presence
        for i, stamp in enumerate(stamps):
            records.append((int(stamp), 2, INPUT_TOPIC,
                            _pose_msg(stamp, input_joints[i], input_presence[i], frame_id, nouns[i])))
        topic_types = TOPIC_TYPES
    records.sort(key=lambda record: record[:2])
    used = {topic for _, _, topic, _ in records}
    path = Path(path)
    if path.exists():
        raise BagError(f"bag path {path} already exists; rosbag2 writes a new directory")
    path.parent.mkdir(parents=True, exist_ok=True)
    typestore = make_typestore()
    writer = Writer(path, version=ROSBAG2_VERSION, storage_plugin=STORAGES[storage])
    writer.open()
    counts = {}
    complete = False
    try:
        connections = {topic: writer.add_connection(topic, msgtype, typestore=typestore)
                       for topic, msgtype in topic_types.items() if topic in used or topic in GROUND_TRUTH_TYPES}
        for stamp, _, topic, msg in records:
            writer.write(connections[topic], stamp, serialize_message(msg() if callable(msg) else msg))
            counts[topic] = counts.get(topic, 0) + 1
        complete = True
    finally:
        writer.close()
        if not complete:
            shutil.rmtree(path, ignore_errors=True)  # no half-written bag behind an error
    return counts


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
    from ghtt_ros.hand_estimator import ESTIMATOR_PARAMETERS

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
    bags: every image goes through the hand_estimator node's per-image step first (ghtt_ros.hand_estimator.
    estimate_image with the latest /camera_info; /object_label as the pipeline node's object label topic)."""
    from ghtt_core.estimator.stream import ImageStreamEstimator

    pipeline = StreamingPipeline.from_checkpoint(checkpoint, device, config)
    outputs = StreamOutputs()
    details = {"latency": "offline: model compute time per result"}
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
    from ghtt_ros.hand_estimator import estimate_image, estimate_to_msg

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


def pipeline_node_parameters(config: PipelineConfig, checkpoint, device):
    """Every PipelineConfig value as a ghtt_pipeline parameter (so the graph's YAML cannot make live differ from
    offline), plus sim time and a pose queue that never discards."""
    parameters = {key: value for key, value in dataclasses.asdict(config).items() if key != "clip_len"}
    parameters.update(checkpoint=str(checkpoint), device=device, object_label="", use_sim_time=True,
                      pose_queue_size=4096, autostart=True)
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
    from ghtt_ros.graph import config_dir

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
        _wait_or_raise(lambda: self.waiting() < MAX_FRAMES_AHEAD, self.timeout_s,
                       lambda: f"the pipeline did not catch up in {self.timeout_s} s ({self.waiting()} poses still "
                               f"waiting)")
        self.publish_times[stamp_ns] = time.monotonic()
        self.published += 1


class _ImagePacer:
    """BagPlayer.before_publish for image bags: makes the live camera path see exactly what the offline mode sees.
    - an Image is published once the estimator has processed every earlier image (its worker keeps only the newest
      one), has received every published CameraInfo, the pipeline has taken the latest /object_label, and fewer than
      MAX_FRAMES_AHEAD estimated poses wait for the model;
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
                                    and self.poses_waiting() < MAX_FRAMES_AHEAD), self.timeout_s,
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

    from ghtt_ros.runner import GraphRunner

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
                raise RuntimeError(f"the {name} node did not become active in {startup_timeout_s} s: "
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
                results = pipeline_node.stats.published
                recorded = all(recorder.stats.messages.get(f"/{EVAL_NAMESPACE}/{name}", 0) == monitor.counts[name]
                               for name in OUTPUT_NAMES)
                return (inputs_done and pipeline_node.stats.received >= poses_expected and _worker_idle(pipeline_node)
                        and monitor.counts["refined_hands"] == results and recorded and recorded_hands)

            if not _wait(drained, timeout_s):
                problems.append(f"timed out after {timeout_s} s waiting for the outputs: node received "
                                f"{pipeline_node.stats.received} of {pacer.published} inputs, published "
                                f"{pipeline_node.stats.published} results, {monitor.counts} arrived")
            wall_s = time.monotonic() - started
            stats = pipeline_node.stats.snapshot(time.monotonic())
            estimator_stats = estimator_node.stats.snapshot(time.monotonic()) if images else None
        finally:
            recorder.close()
            executor.shutdown()
            recorder.destroy_node()
            node.destroy_node()
    finally:
        context.try_shutdown()
        graph.stop()
    details = {"latency": "live: last input of a clip published -> its refined clip received (wall clock, incl. DDS "
                          "and queueing)",
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
