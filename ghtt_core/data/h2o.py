"""Reader for H2O (Kwon et al., ICCV 2021) in its released layout; see docs/datasets.md.

    <root>/action_labels/action_{train,val,test}.txt
    <root>/<subject>/<scene>/<sequence>/cam{0..4}/hand_pose/%06d.txt   left flag + 21x3, right flag + 21x3, metres
                                                 /cam_pose/%06d.txt    4x4 camera-to-world, row-major
                                                 /cam_intrinsics.txt   fx fy cx cy width height
                                                 /rgb/%06d.png
"""

import re
from pathlib import Path

import numpy as np

from ghtt_core.data.errors import DatasetFormatError, parse_floats, parse_int, read_nonempty_lines
from ghtt_core.data.sequence import ActionSegment, HandSequence

H2O_FPS = 30.0
H2O_SPLITS = ("train", "val", "test")
H2O_CAMERAS = ("cam0", "cam1", "cam2", "cam3", "cam4")
EGOCENTRIC_CAMERA = "cam4"
# Pseudo-view: joints in the H2O world frame (identical for all cameras), calibration of the egocentric camera.
WORLD_VIEW = "world"

# Class index i + 1 in the label files (0 is background). Object = last word, verb = the rest.
H2O_ACTION_NAMES = (
    "grab book", "grab espresso", "grab lotion", "grab spray", "grab milk", "grab cocoa", "grab chips",
    "grab cappuccino", "place book", "place espresso", "place lotion", "place spray", "place milk", "place cocoa",
    "place chips", "place cappuccino", "open lotion", "open milk", "open chips", "close lotion", "close milk",
    "close chips", "pour milk", "take out espresso", "take out cocoa", "take out chips", "take out cappuccino",
    "put in espresso", "put in cocoa", "put in cappuccino", "apply lotion", "apply spray", "read book",
    "read espresso", "spray spray", "squeeze lotion",
)

_VALUES_PER_HAND = 1 + 21 * 3
_FRAME_FILE = re.compile(r"^(\d{6})\.txt$")


def h2o_taxonomy():
    """(label, verb, noun) of the 36 H2O actions, in class order (file label k is entry k - 1)."""
    return tuple((name, name.rsplit(" ", 1)[0], name.rsplit(" ", 1)[1]) for name in H2O_ACTION_NAMES)


def load_h2o(root, split="train", view=EGOCENTRIC_CAMERA):
    """Every sequence listed in action_labels/action_<split>.txt, with its action segments, in one camera view.

    view: one of cam0..cam4 (joints in that camera's frame) or "world" (world frame; intrinsics and
    cam_from_world of cam4 so the egocentric images still project). The public test file has no labels: test
    sequences then come without action segments.
    """
    if split not in H2O_SPLITS:
        raise ValueError(f"H2O split must be one of {H2O_SPLITS}, got {split!r}")
    if view not in H2O_CAMERAS + (WORLD_VIEW,):
        raise ValueError(f"H2O view must be one of {H2O_CAMERAS + (WORLD_VIEW,)}, got {view!r}")
    root = Path(root)
    segments_by_path = read_action_file(root / "action_labels" / f"action_{split}.txt")
    return [
        _load_sequence(root, sequence_path, rows, split, view) for sequence_path, rows in segments_by_path.items()
    ]


def read_action_file(path):
    """{"subject/scene/sequence": [(line, start, end_inclusive, class index or None)]} in file order."""
    lines = read_nonempty_lines(path)
    header_line, header = lines[0]
    columns = header.split()
    for required in ("path", "start_act", "end_act"):
        if required not in columns:
            raise DatasetFormatError(path, header_line, f"header lacks column {required!r}: {header!r}")
    segments = {}
    for number, text in lines[1:]:
        fields = text.split()
        label_field = None
        if "action_label" in columns and len(fields) == len(columns):
            label_field = fields[columns.index("action_label")]
        elif "action_label" not in columns and len(fields) == len(columns) + 1:
            label_field = fields[-1]  # a labelled test file: the label is appended as the last column
        elif len(fields) != len(columns):
            raise DatasetFormatError(path, number, f"expected {len(columns)} columns, got {len(fields)}")
        sequence_path = fields[columns.index("path")]
        if len(sequence_path.split("/")) != 3:
            raise DatasetFormatError(path, number, f"path must be subject/scene/sequence, got {sequence_path!r}")
        start = parse_int(fields[columns.index("start_act")], path, number, "start_act")
        end = parse_int(fields[columns.index("end_act")], path, number, "end_act")
        if not 0 <= start <= end:
            raise DatasetFormatError(path, number, f"needs 0 <= start_act <= end_act, got {start}, {end}")
        label = None
        if label_field is not None:
            label = parse_int(label_field, path, number, "action_label")
            if not 1 <= label <= len(H2O_ACTION_NAMES):
                raise DatasetFormatError(path, number, f"action_label must be in 1..36, got {label}")
        segments.setdefault(sequence_path, []).append((number, start, end, label))
    return segments


def read_hand_pose_file(path):
    """One frame: joints (2, 21, 3) metres and presence (2,) from the per-hand annotation flags."""
    lines = read_nonempty_lines(path)
    if len(lines) != 1:
        raise DatasetFormatError(path, lines[1][0], "expected one line of 128 numbers")
    number, text = lines[0]
    values = np.array(parse_floats(text.split(), path, number, 2 * _VALUES_PER_HAND)).reshape(2, _VALUES_PER_HAND)
    flags = values[:, 0]
    if not np.isin(flags, (0.0, 1.0)).all():
        raise DatasetFormatError(path, number, f"hand flags must be 0 or 1, got {flags.tolist()}")
    return values[:, 1:].reshape(2, 21, 3), flags == 1.0


def read_camera_pose_file(path):
    """4x4 camera-to-world matrix (column-vector convention: x_world = M @ [x_cam, 1])."""
    lines = read_nonempty_lines(path)
    values = parse_floats(" ".join(text for _, text in lines).split(), path, lines[0][0], 16)
    matrix = np.array(values).reshape(4, 4)
    if not np.allclose(matrix[3], (0.0, 0.0, 0.0, 1.0), atol=1e-6):
        raise DatasetFormatError(path, lines[0][0], f"last row of the 4x4 pose must be 0 0 0 1, got {matrix[3]}")
    return matrix


def read_intrinsics_file(path):
    """3x3 pinhole K from "fx fy cx cy [width height]"."""
    lines = read_nonempty_lines(path)
    number, text = lines[0]
    fields = text.split()
    if len(fields) not in (4, 6):
        raise DatasetFormatError(path, number, f"expected fx fy cx cy [width height], got {len(fields)} numbers")
    fx, fy, cx, cy = parse_floats(fields[:4], path, number)
    return np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])


def _frame_files(folder):
    """Per-frame files %06d.txt of a folder, checked to be numbered 0..N-1 without gaps."""
    if not folder.is_dir():
        raise DatasetFormatError(folder, None, "folder not found")
    numbered = {}
    for file in folder.iterdir():
        match = _FRAME_FILE.match(file.name)
        if match:
            numbered[int(match.group(1))] = file
    if not numbered:
        raise DatasetFormatError(folder, None, "no %06d.txt frame files")
    missing = sorted(set(range(max(numbered) + 1)) - set(numbered))
    if missing:
        raise DatasetFormatError(folder / f"{missing[0]:06d}.txt", None, "frame file missing (frames must be 0..N-1)")
    return [numbered[index] for index in range(len(numbered))]


def _load_sequence(root, sequence_path, rows, split, view):
    camera = EGOCENTRIC_CAMERA if view == WORLD_VIEW else view
    camera_dir = root / sequence_path / camera
    frames = [read_hand_pose_file(file) for file in _frame_files(camera_dir / "hand_pose")]
    joints = np.stack([frame[0] for frame in frames])
    presence = np.stack([frame[1] for frame in frames])
    num_frames = len(frames)

    cam_from_world = None
    if (camera_dir / "cam_pose").is_dir():
        pose_files = _frame_files(camera_dir / "cam_pose")
        if len(pose_files) != num_frames:
            raise DatasetFormatError(camera_dir / "cam_pose", None,
                                     f"{len(pose_files)} camera poses for {num_frames} hand pose frames")
        world_from_cam = np.stack([read_camera_pose_file(file) for file in pose_files])
        cam_from_world = np.linalg.inv(world_from_cam)
        if view == WORLD_VIEW:
            joints = joints @ world_from_cam[:, None, :3, :3].swapaxes(-1, -2) + world_from_cam[:, None, None, :3, 3]
    elif view == WORLD_VIEW:
        raise DatasetFormatError(camera_dir / "cam_pose", None, "folder not found (needed for the world view)")
    # Absent hands carry arbitrary values; zero them so nothing downstream mistakes them for data.
    joints = np.where(presence[:, :, None, None], joints, 0.0)

    intrinsics_file = camera_dir / "cam_intrinsics.txt"
    intrinsics = read_intrinsics_file(intrinsics_file) if intrinsics_file.exists() else None
    rgb_dir = camera_dir / "rgb"
    image_paths = [str(rgb_dir / f"{index:06d}.png") for index in range(num_frames)] if rgb_dir.is_dir() else None

    label_path = root / "action_labels" / f"action_{split}.txt"
    taxonomy = h2o_taxonomy()
    actions = []
    for line, start, end_inclusive, label in rows:
        if start >= num_frames:
            raise DatasetFormatError(label_path, line,
                                     f"segment starts at frame {start} but {sequence_path} has {num_frames} frames")
        if label is None:
            continue
        name, verb, noun = taxonomy[label - 1]
        # end_act is inclusive; the label files sometimes name the last frame + 1, so clip to the sequence.
        actions.append(ActionSegment(start, min(end_inclusive + 1, num_frames), name, verb, noun))

    return HandSequence(
        name=f"h2o/{sequence_path}",
        joints=joints,
        presence=presence,
        fps=H2O_FPS,
        actions=actions,
        subject=sequence_path.split("/")[0],
        view=view,
        split=split,
        intrinsics=intrinsics,
        cam_from_world=cam_from_world,
        image_paths=image_paths,
    )
