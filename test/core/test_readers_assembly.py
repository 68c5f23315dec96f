"""AssemblyHands and Assembly101 readers on fixture files written in the released formats."""

import json

import numpy as np
import pytest
from released_formats import FINE_GRAINED_HEADER, fine_grained_row, write_fine_grained

from ghtt_core.data.assembly import (
    assembly101_taxonomy,
    load_assembly101,
    load_assemblyhands,
    read_fine_grained_csv,
)
from ghtt_core.data.errors import DatasetFormatError
from ghtt_core.skeleton import JOINT_NAMES, LEFT, RIGHT

VIDEO = "nusar-2021_action_both_9081-c11b_9081_user_id_2021-02-12_161433"
CAMERA = "HMC_21179183_mono10bit"
# AssemblyHands toolkit README: per hand, each finger from tip to base, wrist last.
_TIP_TO_BASE = {"thumb": ("tip", "ip", "mcp", "cmc"), "index": ("tip", "dip", "pip", "mcp")}
ASSEMBLYHANDS_RAW = [f"{finger}_{part}" for finger in ("thumb", "index", "middle", "ring", "pinky")
                     for part in _TIP_TO_BASE.get(finger, _TIP_TO_BASE["index"])] + ["wrist"]
# 60-fps frame ids with annotations: a gap at 30-fps frame 53.
FRAME_IDS = (100, 102, 104, 108, 110)


def _raw_hand(offset_mm):
    """21 x 3 mm in AssemblyHands order; x encodes the ghtt index so the reordering is checkable."""
    hand = np.zeros((21, 3))
    hand[:, 0] = [10.0 * JOINT_NAMES.index(name) for name in ASSEMBLYHANDS_RAW]
    return hand + offset_mm


@pytest.fixture
def assemblyhands_root(tmp_path):
    annotations = {}
    extrinsics = {}
    for index, frame_id in enumerate(FRAME_IDS):
        right, left = _raw_hand([0.0, 100.0, 500.0 + index]), _raw_hand([0.0, -100.0, 500.0 + index])
        valid = np.ones(42)
        if index == 1:
            valid[21 + 5] = 0  # a left index joint: left hand absent
        if index == 2:
            valid[3] = 0  # right thumb CMC: slot 1 is never used, the hand stays present
        annotations[f"{frame_id:06d}"] = {"world_coord": np.concatenate([right, left]).tolist(),
                                          "joint_valid": valid.tolist()}
        if frame_id != 110:
            extrinsics[f"{frame_id:06d}"] = {CAMERA: [[0, -1, 0, 10.0], [1, 0, 0, 20.0], [0, 0, 1, 30.0 + index]]}
    folder = tmp_path / "annotations" / "val"
    folder.mkdir(parents=True)
    (folder / "assemblyhands_val_joint_3d_v1-1.json").write_text(json.dumps({"annotations": {VIDEO: annotations}}))
    calibration = {VIDEO: {"intrinsics": {CAMERA: [[300.0, 0, 320.0], [0, 300.0, 240.0], [0, 0, 1]]},
                           "extrinsics": extrinsics}}
    (folder / "assemblyhands_val_ego_calib_v1-1.json").write_text(json.dumps({"calibration": calibration}))
    write_fine_grained(tmp_path / "fine-grained-annotations", "validation.csv", [
        fine_grained_row(0, f"{VIDEO}/C10118_rgb.mp4", 48, 52, "pick up screw", "pick up", "screw"),
        fine_grained_row(1, f"{VIDEO}/HMC_21179183_mono10bit.mp4", 48, 52, "pick up screw",
                          "pick up", "screw"),
        fine_grained_row(2, f"{VIDEO}/C10118_rgb.mp4", 52, 60, "screw arm with hand", "screw", "arm"),
        fine_grained_row(3, f"{VIDEO}/C10118_rgb.mp4", 70, 80, "inspect diagram", "inspect", "diagram"),
        fine_grained_row(4, "other_video/C10118_rgb.mp4", 0, 5, "inspect diagram", "inspect", "diagram"),
    ])
    return tmp_path


def test_assemblyhands_world_view_timeline_order_units_and_presence(assemblyhands_root):
    (seq,) = load_assemblyhands(assemblyhands_root, split="val",
                                fine_grained_dir=assemblyhands_root / "fine-grained-annotations")
    assert seq.name == f"assemblyhands/{VIDEO}" and seq.subject == "9081" and seq.split == "val"
    # 60-fps ids 100..110 -> 30-fps frames 50..55; 53 was not annotated.
    assert seq.num_frames == 6 and seq.fps == 30.0
    np.testing.assert_array_equal(seq.presence[:, RIGHT], [True, True, True, False, True, True])
    np.testing.assert_array_equal(seq.presence[:, LEFT], [True, False, True, False, True, True])
    np.testing.assert_allclose(seq.joints[0, RIGHT, :, 0], np.arange(21) * 0.01, atol=1e-9)
    np.testing.assert_allclose(seq.joints[0, RIGHT, 0], [0.0, 0.1, 0.5])  # mm -> m, right hand from raw 0..20
    np.testing.assert_allclose(seq.joints[0, LEFT, 0], [0.0, -0.1, 0.5])
    assert seq.intrinsics is None and seq.cam_from_world is None
    # Segments move to the sequence start (frame 50), get clipped, and duplicates across views collapse.
    assert [(a.start, a.end, a.label, a.verb, a.noun) for a in seq.actions] == [
        (0, 2, "pick up screw", "pick up", "screw"), (2, 6, "screw arm with hand", "screw", "arm")]


def test_assemblyhands_ego_view_uses_per_frame_extrinsics(assemblyhands_root):
    world = load_assemblyhands(assemblyhands_root, split="val")[0]
    ego = load_assemblyhands(assemblyhands_root, split="val", view=CAMERA)[0]
    assert ego.actions == [] and ego.view == CAMERA
    np.testing.assert_allclose(ego.intrinsics, [[300, 0, 320], [0, 300, 240], [0, 0, 1]])
    # Frame 5 (60-fps id 110) has no extrinsics for this camera: hands absent, zero matrix.
    assert not ego.presence[5].any() and np.all(ego.cam_from_world[5] == 0)
    rotation = np.array([[0.0, -1, 0], [1, 0, 0], [0, 0, 1]])
    for frame, id_index in ((0, 0), (4, 3)):
        expected = world.joints[frame] @ rotation.T + np.array([0.010, 0.020, 0.030 + 0.001 * id_index])
        np.testing.assert_allclose(ego.joints[frame][ego.presence[frame]], expected[ego.presence[frame]], atol=1e-9)
    assert ego.image_paths[4].endswith(f"ego_images_rectified/val/{VIDEO}/{CAMERA}/000108.jpg")
    assert ego.image_paths[3].endswith("000106.jpg")


def test_assemblyhands_bad_files_name_file_and_location(assemblyhands_root):
    joints_file = assemblyhands_root / "annotations/val/assemblyhands_val_joint_3d_v1-1.json"
    content = json.loads(joints_file.read_text())
    content["annotations"][VIDEO]["000104"]["world_coord"] = [[1.0, 2.0, 3.0]] * 41
    joints_file.write_text(json.dumps(content))
    with pytest.raises(DatasetFormatError, match=r"annotations\['.*'\]\['000104'\]\.world_coord: expected shape"):
        load_assemblyhands(assemblyhands_root)
    joints_file.write_text('{"annotations": {\n"a": [1, 2,\n')
    with pytest.raises(DatasetFormatError, match="invalid JSON") as info:
        load_assemblyhands(assemblyhands_root)
    assert info.value.path == joints_file and info.value.line == 3
    joints_file.write_text(json.dumps({"annotations": {VIDEO: {"000100": content["annotations"][VIDEO]["000100"]}}}))
    with pytest.raises(DatasetFormatError, match="no camera 'HMC_0'"):
        load_assemblyhands(assemblyhands_root, view="HMC_0")
    with pytest.raises(DatasetFormatError, match="file not found"):
        load_assemblyhands(assemblyhands_root, split="test")
    with pytest.raises(ValueError, match="split"):
        load_assemblyhands(assemblyhands_root, split="validation")


def test_fine_grained_csv_errors_name_the_line(tmp_path):
    folder = tmp_path / "fine-grained-annotations"
    write_fine_grained(folder, "train.csv", [fine_grained_row(0, f"{VIDEO}/C10118_rgb.mp4", 10, 5, "a b", "a", "b")])
    with pytest.raises(DatasetFormatError, match=r"train\.csv:2: needs 0 <= start_frame < end_frame"):
        read_fine_grained_csv(folder / "train.csv")
    write_fine_grained(folder, "train.csv", [fine_grained_row(0, VIDEO, 1, 5, "a b", "a", "b"),
                                              fine_grained_row(1, VIDEO, "x", 5, "a b", "a", "b")])
    with pytest.raises(DatasetFormatError, match=r"train\.csv:3: start_frame must be an integer"):
        read_fine_grained_csv(folder / "train.csv")
    (folder / "train.csv").write_text("id,video,start_frame\n0,v,1\n")
    with pytest.raises(DatasetFormatError, match=r"train\.csv:1: header lacks columns \['end_frame'"):
        read_fine_grained_csv(folder / "train.csv")
    (folder / "train.csv").write_text(FINE_GRAINED_HEADER + "\n0,v,1,2\n")
    with pytest.raises(DatasetFormatError, match=r"train\.csv:2: expected 14 columns"):
        read_fine_grained_csv(folder / "train.csv")
    (folder / "train.csv").write_text("")
    with pytest.raises(DatasetFormatError, match="file is empty"):
        read_fine_grained_csv(folder / "train.csv")


def test_taxonomy_is_ordered_by_action_id(tmp_path):
    actions = tmp_path / "actions.csv"
    actions.write_text("id,action_id,verb_id,noun_id,action_cls,verb_cls,noun_cls\n"
                       "0,10,18,27,clap hand,clap,hand\n1,3,0,2,pick up screwdriver,pick up,screwdriver\n")
    assert assembly101_taxonomy(actions) == (("pick up screwdriver", "pick up", "screwdriver"),
                                             ("clap hand", "clap", "hand"))


@pytest.fixture
def assembly101_root(tmp_path):
    # Assembly101 landmark order: five tips, wrist, thumb MCP/IP, MCP/PIP/DIP per finger, then the unused point.
    raw_names = [f"{f}_tip" for f in ("thumb", "index", "middle", "ring", "pinky")] + ["wrist", "thumb_mcp", "thumb_ip"]
    raw_names += [f"{f}_{p}" for f in ("index", "middle", "ring", "pinky") for p in ("mcp", "pip", "dip")]
    raw_names += ["thumb_cmc"]
    hand = np.zeros((21, 3))
    hand[:, 0] = [10.0 * JOINT_NAMES.index(name) for name in raw_names]
    frames = []
    for index in range(7):
        frame = {"landmarks": {"0": (hand + [0, 0, index]).tolist(), "1": (hand + [0, 50, index]).tolist()},
                 "tracking_confidence": {"0": 0.0 if index == 2 else 0.9, "1": 0.8}}
        if index == 4:
            del frame["landmarks"]["1"]
        frames.append(frame)
    (tmp_path / "poses@60fps").mkdir()
    (tmp_path / "poses@60fps" / f"{VIDEO}.json").write_text(json.dumps(frames))
    write_fine_grained(tmp_path / "fine-grained-annotations", "train.csv", [
        fine_grained_row(0, f"{VIDEO}/C10118_rgb.mp4", 1, 3, "pick up screw", "pick up", "screw"),
        fine_grained_row(1, "video_without_poses/C10118_rgb.mp4", 0, 2, "pick up screw", "pick up", "screw"),
    ])
    return tmp_path


def test_assembly101_poses_every_second_frame_with_confidence_presence(assembly101_root):
    (seq,) = load_assembly101(assembly101_root, split="train")
    assert seq.name == f"assembly101/{VIDEO}" and seq.num_frames == 4 and seq.split == "train"
    # 60-fps frames 0, 2, 4, 6; frame 2's left hand has confidence 0 and is zeroed as absent.
    np.testing.assert_allclose(seq.joints[:, LEFT, 0, 2], [0.0, 0.0, 0.004, 0.006], atol=1e-7)
    np.testing.assert_array_equal(seq.presence[:, LEFT], [True, False, True, True])
    np.testing.assert_array_equal(seq.presence[:, RIGHT], [True, True, False, True])
    np.testing.assert_allclose(seq.joints[0, RIGHT, :, 0], np.arange(21) * 0.01, atol=1e-9)
    np.testing.assert_allclose(seq.joints[0, RIGHT, 0, 1], 0.05)
    assert [(a.start, a.end, a.label) for a in seq.actions] == [(1, 3, "pick up screw")]


def test_assembly101_bad_pose_file(assembly101_root):
    pose_file = assembly101_root / "poses@60fps" / f"{VIDEO}.json"
    pose_file.write_text(json.dumps([{"landmarks": {"0": [[1, 2]] * 21}}]))
    with pytest.raises(DatasetFormatError, match=r"frame 0\.landmarks\['0'\]: expected shape \(21, 3\)"):
        load_assembly101(assembly101_root, split="train")
    pose_file.write_text("[]")
    with pytest.raises(DatasetFormatError, match="non-empty JSON list"):
        load_assembly101(assembly101_root, split="train")


def test_cli_converts_assemblyhands_with_its_fine_grained_actions(assemblyhands_root, tmp_path, error_line):
    from ghtt_core.cli import main
    from ghtt_core.data.storage import StoredDataset

    out = tmp_path / "converted"
    assert main(["data", "convert", "assemblyhands", str(assemblyhands_root), "--out", str(out), "--splits", "val",
                 "--fine-grained-dir", str(assemblyhands_root / "fine-grained-annotations")]) == 0
    (converted,) = StoredDataset(out).sequences("val")
    (loaded,) = load_assemblyhands(assemblyhands_root, split="val",
                                   fine_grained_dir=assemblyhands_root / "fine-grained-annotations")
    np.testing.assert_array_equal(converted.presence, loaded.presence)
    np.testing.assert_allclose(converted.joints[converted.presence], loaded.joints[loaded.presence], atol=1e-6)
    assert [(a.start, a.end, a.label) for a in converted.actions] == [(0, 2, "pick up screw"),
                                                                       (2, 6, "screw arm with hand")]
    assert main(["data", "convert", "fpha", str(assemblyhands_root), "--out", str(tmp_path / "x"),
                 "--fine-grained-dir", str(assemblyhands_root)]) == 2
    assert "for source assemblyhands" in error_line("ghtt")
