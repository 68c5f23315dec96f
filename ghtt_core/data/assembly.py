"""Readers for AssemblyHands 3D joints and Assembly101 poses, labelled with Assembly101 fine-grained actions.

See docs/datasets.md. Layouts:
    AssemblyHands <root>/annotations/<split>/assemblyhands_<split>_joint_3d_v1-1.json   world joints, mm, 60 fps ids
                  <root>/annotations/<split>/assemblyhands_<split>_ego_calib_v1-1.json  ego cameras K and [R|t] (mm)
                  <root>/images/ego_images_rectified/<split>/<video>/<camera>/%06d.jpg
    Assembly101   <root>/poses@60fps/<video>.json                                      UmeTrack landmarks, mm, 60 fps
                  <root>/fine-grained-annotations/{train,validation,test}.csv, actions.csv   frames at 30 fps

Both datasets are recorded at 60 fps; ghtt sequences are at 30 fps, the rate of the action annotations: 30-fps
frame k covers the 60-fps frames 2k and 2k + 1.
"""

import csv
import json
from pathlib import Path

import numpy as np

from ghtt_core.data.errors import DatasetFormatError
from ghtt_core.data.joint_orders import ASSEMBLY101_TO_GHTT, ASSEMBLYHANDS_TO_GHTT
from ghtt_core.data.sequence import ActionSegment, HandSequence
from ghtt_core.skeleton import LEFT, RIGHT, USED_JOINTS

ASSEMBLY_FPS = 30.0
FRAMES_60_PER_30 = 2
ASSEMBLYHANDS_SPLITS = ("train", "val", "test")
ASSEMBLY101_SPLITS = ("train", "validation", "test")
ANNOTATION_VERSION = "v1-1"
WORLD_VIEW = "world"
FINE_GRAINED_COLUMNS = ("video", "start_frame", "end_frame", "action_cls", "verb_cls", "noun_cls")
TAXONOMY_COLUMNS = ("action_id", "action_cls", "verb_cls", "noun_cls")

_MM_TO_M = 1e-3


# ----------------------------------------------------------------------------------------------- action annotations
def _read_csv_rows(path, required_columns):
    """(line number, row dict) of a CSV with a header; the header must name every required column."""
    path = Path(path)
    if not path.is_file():
        raise DatasetFormatError(path, None, "file not found")
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames is None:
            raise DatasetFormatError(path, None, "file is empty")
        missing = [column for column in required_columns if column not in reader.fieldnames]
        if missing:
            raise DatasetFormatError(path, 1, f"header lacks columns {missing}")
        for row in reader:
            if None in row or any(row[column] is None for column in required_columns):
                raise DatasetFormatError(path, reader.line_num, f"expected {len(reader.fieldnames)} columns")
            yield reader.line_num, row


def _csv_int(row, column, path, line):
    try:
        return int(row[column])
    except ValueError:
        raise DatasetFormatError(path, line, f"{column} must be an integer, got {row[column]!r}") from None


def read_fine_grained_csv(path):
    """{sequence name: [ActionSegment]} at 30 fps, [start_frame, end_frame), duplicates removed, in file order.

    The official "video" column is "<sequence>/<view>.mp4"; the same segment appears once per view.
    """
    segments = {}
    for line, row in _read_csv_rows(path, FINE_GRAINED_COLUMNS):
        start = _csv_int(row, "start_frame", path, line)
        end = _csv_int(row, "end_frame", path, line)
        if not 0 <= start < end:
            raise DatasetFormatError(path, line, f"needs 0 <= start_frame < end_frame, got {start}, {end}")
        sequence = row["video"].split("/")[0]
        segment = ActionSegment(start, end, row["action_cls"], row["verb_cls"], row["noun_cls"])
        known = segments.setdefault(sequence, [])
        if segment not in known:
            known.append(segment)
    return segments


def read_fine_grained_dir(directory):
    """Segments of every split file (train/validation/test.csv) present in a fine-grained-annotations folder."""
    directory = Path(directory)
    files = [directory / f"{split}.csv" for split in ASSEMBLY101_SPLITS if (directory / f"{split}.csv").is_file()]
    if not files:
        raise DatasetFormatError(directory, None, "no train.csv, validation.csv or test.csv")
    merged = {}
    for file in files:
        for sequence, segments in read_fine_grained_csv(file).items():
            known = merged.setdefault(sequence, [])
            known.extend(segment for segment in segments if segment not in known)
    return merged


def assembly101_taxonomy(actions_csv):
    """(label, verb, noun) per fine-grained action, ordered by action_id (1380 in the official actions.csv)."""
    by_id = {}
    for line, row in _read_csv_rows(actions_csv, TAXONOMY_COLUMNS):
        action_id = _csv_int(row, "action_id", actions_csv, line)
        by_id[action_id] = (row["action_cls"], row["verb_cls"], row["noun_cls"])
    return tuple(by_id[action_id] for action_id in sorted(by_id))


def _segments_in_window(segments, first_frame, num_frames):
    """Segments moved from video frames to a sequence that starts at video frame `first_frame`, clipped to it."""
    moved = []
    for segment in segments:
        start = max(segment.start - first_frame, 0)
        end = min(segment.end - first_frame, num_frames)
        if start < end:
            moved.append(ActionSegment(start, end, segment.label, segment.verb, segment.noun))
    return moved


# ------------------------------------------------------------------------------------------------------ JSON access
def _load_json(path):
    path = Path(path)
    if not path.is_file():
        raise DatasetFormatError(path, None, "file not found")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise DatasetFormatError(path, error.lineno, f"invalid JSON: {error.msg}") from None


def _array(value, shape, path, where):
    try:
        array = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise DatasetFormatError(path, None, f"{where}: not a numeric array") from None
    if array.shape != shape:
        raise DatasetFormatError(path, None, f"{where}: expected shape {shape}, got {array.shape}")
    if not np.isfinite(array).all():
        raise DatasetFormatError(path, None, f"{where}: non-finite values")
    return array


def _mapping(value, path, where):
    if not isinstance(value, dict):
        raise DatasetFormatError(path, None, f"{where}: expected a JSON object, got {type(value).__name__}")
    return value


def _frame_id(key, path, where):
    if not key.isdigit():
        raise DatasetFormatError(path, None, f"{where}: frame key must be a 60-fps frame number, got {key!r}")
    return int(key)


# ---------------------------------------------------------------------------------------------------- AssemblyHands
def assemblyhands_file(root, split, kind):
    """Path of an AssemblyHands annotation file; kind is "joint_3d" or "ego_calib"."""
    return Path(root) / "annotations" / split / f"assemblyhands_{split}_{kind}_{ANNOTATION_VERSION}.json"


def load_assemblyhands(root, split="val", view=WORLD_VIEW, fine_grained_dir=None):
    """One sequence per video of an AssemblyHands split, at 30 fps, over the span of its annotated frames.

    view: "world" (joints in the world frame, no calibration) or an ego camera name of the calibration file, e.g.
    "HMC_21179183_mono10bit" (joints in that camera; frames it has no extrinsics for count as hands absent and get
    an all-zero cam_from_world). A hand is present when all 20 used joints are valid. fine_grained_dir: Assembly101
    fine-grained-annotations folder for the action segments; without it sequences have no actions.
    """
    if split not in ASSEMBLYHANDS_SPLITS:
        raise ValueError(f"AssemblyHands split must be one of {ASSEMBLYHANDS_SPLITS}, got {split!r}")
    joints_path = assemblyhands_file(root, split, "joint_3d")
    annotations = _mapping(_load_json(joints_path).get("annotations"), joints_path, "annotations")
    calibration = None
    if view != WORLD_VIEW:
        calib_path = assemblyhands_file(root, split, "ego_calib")
        calibration = (calib_path, _mapping(_load_json(calib_path).get("calibration"), calib_path, "calibration"))
    segments = read_fine_grained_dir(fine_grained_dir) if fine_grained_dir is not None else {}
    return [
        _assemblyhands_sequence(Path(root), split, view, video,
                                _mapping(frames, joints_path, f"annotations[{video!r}]"),
                                joints_path, calibration, segments.get(video, []))
        for video, frames in annotations.items()
    ]


def _assemblyhands_sequence(root, split, view, video, frames, joints_path, calibration, segments):
    if not frames:
        raise DatasetFormatError(joints_path, None, f"annotations[{video!r}]: no frames")
    # 30-fps frame k <- the first annotated 60-fps frame of {2k, 2k + 1}.
    frame_ids = {}
    for key in sorted(frames, key=lambda key: _frame_id(key, joints_path, f"annotations[{video!r}]")):
        frame_ids.setdefault(int(key) // FRAMES_60_PER_30, key)
    first, last = min(frame_ids), max(frame_ids)
    num_frames = last - first + 1
    joints = np.zeros((num_frames, 2, 21, 3))
    presence = np.zeros((num_frames, 2), dtype=bool)
    for frame_30, key in frame_ids.items():
        where = f"annotations[{video!r}][{key!r}]"
        entry = _mapping(frames[key], joints_path, where)
        world = _array(entry.get("world_coord"), (42, 3), joints_path, f"{where}.world_coord") * _MM_TO_M
        valid = _array(entry.get("joint_valid"), (42,), joints_path, f"{where}.joint_valid") > 0
        index = frame_30 - first
        # Raw order: right hand first, then left.
        for hand, raw in ((RIGHT, slice(0, 21)), (LEFT, slice(21, 42))):
            joints[index, hand] = world[raw][ASSEMBLYHANDS_TO_GHTT]
            presence[index, hand] = valid[raw][ASSEMBLYHANDS_TO_GHTT][list(USED_JOINTS)].all()

    intrinsics = cam_from_world = image_paths = None
    if calibration is not None:
        calib_path, by_video = calibration
        intrinsics, cam_from_world = _ego_camera(calib_path, by_video, video, view, frame_ids, first, num_frames)
        calibrated = cam_from_world[:, 3, 3] == 1.0
        presence &= calibrated[:, None]
        joints = joints @ cam_from_world[:, None, :3, :3].swapaxes(-1, -2) + cam_from_world[:, None, None, :3, 3]
        parity = int(frame_ids[first]) % FRAMES_60_PER_30
        image_dir = root / "images" / "ego_images_rectified" / split / video / view
        image_paths = [
            str(image_dir / f"{int(frame_ids.get(first + i, (first + i) * FRAMES_60_PER_30 + parity)):06d}.jpg")
            for i in range(num_frames)
        ]
    joints = np.where(presence[:, :, None, None], joints, 0.0)
    return HandSequence(
        name=f"assemblyhands/{video}",
        joints=joints,
        presence=presence,
        fps=ASSEMBLY_FPS,
        actions=_segments_in_window(segments, first, num_frames),
        subject=_assembly_subject(video),
        view=view,
        split=split,
        intrinsics=intrinsics,
        cam_from_world=cam_from_world,
        image_paths=image_paths,
    )


def _ego_camera(calib_path, by_video, video, camera, frame_ids, first, num_frames):
    """K (3, 3) and per-frame cam_from_world (T, 4, 4) in metres; all-zero matrices where a frame has no extrinsics."""
    where = f"calibration[{video!r}]"
    calib = _mapping(by_video.get(video), calib_path, where)
    intrinsics_by_camera = _mapping(calib.get("intrinsics"), calib_path, f"{where}.intrinsics")
    if camera not in intrinsics_by_camera:
        raise DatasetFormatError(calib_path, None,
                                 f"{where}: no camera {camera!r}; cameras are {sorted(intrinsics_by_camera)}")
    intrinsics = _array(intrinsics_by_camera[camera], (3, 3), calib_path, f"{where}.intrinsics[{camera!r}]")
    extrinsics = _mapping(calib.get("extrinsics"), calib_path, f"{where}.extrinsics")
    cam_from_world = np.zeros((num_frames, 4, 4))
    for frame_30, key in frame_ids.items():
        per_camera = extrinsics.get(key, {})
        if camera in per_camera:
            rt = _array(per_camera[camera], (3, 4), calib_path, f"{where}.extrinsics[{key!r}][{camera!r}]")
            cam_from_world[frame_30 - first, :3, :3] = rt[:, :3]
            cam_from_world[frame_30 - first, :3, 3] = rt[:, 3] * _MM_TO_M
            cam_from_world[frame_30 - first, 3, 3] = 1.0
    return intrinsics, cam_from_world


def _assembly_subject(video):
    """Participant id from an Assembly101 video name: "nusar-2021_action_both_9081-c11b_9081_user_..." -> "9081"."""
    parts = video.split("_")
    return parts[3].split("-")[0] if len(parts) > 3 else ""


# ------------------------------------------------------------------------------------------------------ Assembly101
def load_assembly101(root, split="train", min_tracking_confidence=0.0):
    """UmeTrack pose sequences of the videos of one Assembly101 split (those with a pose file), every 2nd 60-fps frame.

    A hand is present where its landmarks exist and its tracking_confidence (when given) exceeds
    min_tracking_confidence. Actions come from fine-grained-annotations/<split>.csv.
    """
    if split not in ASSEMBLY101_SPLITS:
        raise ValueError(f"Assembly101 split must be one of {ASSEMBLY101_SPLITS}, got {split!r}")
    root = Path(root)
    segments = read_fine_grained_csv(root / "fine-grained-annotations" / f"{split}.csv")
    sequences = []
    for video, video_segments in segments.items():
        pose_path = root / "poses@60fps" / f"{video}.json"
        if pose_path.is_file():
            sequences.append(_assembly101_sequence(pose_path, video, split, video_segments, min_tracking_confidence))
    return sequences


def _assembly101_sequence(pose_path, video, split, segments, min_tracking_confidence):
    frames_60 = _load_json(pose_path)
    if not isinstance(frames_60, list) or not frames_60:
        raise DatasetFormatError(pose_path, None, "expected a non-empty JSON list of frames")
    frames = frames_60[::FRAMES_60_PER_30]
    joints = np.zeros((len(frames), 2, 21, 3))
    presence = np.zeros((len(frames), 2), dtype=bool)
    for index, frame in enumerate(frames):
        where = f"frame {index * FRAMES_60_PER_30}"
        landmarks = _mapping(_mapping(frame, pose_path, where).get("landmarks"), pose_path, f"{where}.landmarks")
        confidence = frame.get("tracking_confidence", {})
        for hand, key in ((LEFT, "0"), (RIGHT, "1")):
            if landmarks.get(key) is None:
                continue
            raw = _array(landmarks[key], (21, 3), pose_path, f"{where}.landmarks[{key!r}]")
            joints[index, hand] = raw[ASSEMBLY101_TO_GHTT] * _MM_TO_M
            presence[index, hand] = float(confidence.get(key, np.inf)) > min_tracking_confidence
    joints = np.where(presence[:, :, None, None], joints, 0.0)
    return HandSequence(
        name=f"assembly101/{video}",
        joints=joints,
        presence=presence,
        fps=ASSEMBLY_FPS,
        actions=_segments_in_window(segments, 0, len(frames)),
        subject=_assembly_subject(video),
        view=WORLD_VIEW,
        split=split,
    )
