"""Evaluation bags: their format (topics, types, stamps) and writing one from a dataset sequence (`write_dataset_bag`).

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

ghtt_ros.bag.evaluation reads these bags and runs the pipeline over them in-process; ghtt_ros.bag.live replays them
into the live graph (docs/bag-evaluation.md).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
from rclpy.serialization import serialize_message
from rosbags.rosbag2 import Writer

from ghtt_core.data.sequence import HandSequence
from ghtt_core.estimator.camera import CameraIntrinsics
from ghtt_core.estimator.image_input import read_bgr_image
from ghtt_ros.bag.io import ROSBAG2_VERSION, STORAGES, BagError, make_typestore
from ghtt_ros.convert import TwoHandArrays, ns_to_stamp, two_hand_pose_to_msg
from ghtt_ros.transforms import DEFAULT_OPTICAL_FRAME
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
IMAGE_ENCODING = "bgr8"  # as OpenCV decodes the files (and as the demo publishes)
DEFAULT_START_NS = 1_000 * 10**9  # stamps of a converted sequence start here (any fixed value > 0)
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
    """An image file as decoded by OpenCV (BGR uint8, ghtt_core's read_bgr_image); ValueError naming the frame and the
    file when it cannot be read."""
    try:
        return read_bgr_image(path)
    except ValueError as error:
        raise ValueError(f"image file of frame {index} cannot be decoded (corrupt or not an image): {path}") from error


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
                      frame_id=DEFAULT_OPTICAL_FRAME, object_labels=True):
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
