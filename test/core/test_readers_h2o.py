"""H2O reader on fixture files written in the released H2O layout."""

import numpy as np
import pytest

from ghtt_core.data.errors import DatasetFormatError
from ghtt_core.data.h2o import h2o_taxonomy, load_h2o

HEADER = "id path action_label start_act end_act start_frame end_frame"


def _rotation_z(angle):
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def _write_camera(camera_dir, world_joints, left_flags, world_from_cam):
    """Write one camera's hand_pose / cam_pose / cam_intrinsics.txt for world joints (T, 2, 21, 3)."""
    (camera_dir / "hand_pose").mkdir(parents=True)
    (camera_dir / "cam_pose").mkdir()
    (camera_dir / "cam_intrinsics.txt").write_text("636.6 636.2 635.3 366.9 1280 720\n")
    rotation, translation = world_from_cam[:3, :3], world_from_cam[:3, 3]
    camera_joints = (world_joints - translation) @ rotation  # x_cam = R^T (x_world - t), as rows
    for frame, hands in enumerate(camera_joints):
        left = [float(left_flags[frame])] + hands[0].ravel().tolist()
        right = [1.0] + hands[1].ravel().tolist()
        (camera_dir / "hand_pose" / f"{frame:06d}.txt").write_text(" ".join(f"{v:.8f}" for v in left + right) + "\n")
        (camera_dir / "cam_pose" / f"{frame:06d}.txt").write_text(" ".join(f"{v:.10f}" for v in world_from_cam.ravel()))


def _pose(angle, translation):
    matrix = np.eye(4)
    matrix[:3, :3] = _rotation_z(angle)
    matrix[:3, 3] = translation
    return matrix


@pytest.fixture
def h2o_root(tmp_path):
    rng = np.random.default_rng(0)
    world = {}
    for sequence, num_frames in (("subject1/h1/0", 6), ("subject1/h1/1", 5)):
        joints = rng.normal(0.0, 0.1, size=(num_frames, 2, 21, 3)) + np.array([0.0, 0.0, 0.6])
        left_flags = np.ones(num_frames)
        left_flags[2] = 0
        world[sequence] = (joints, left_flags)
        _write_camera(tmp_path / sequence / "cam4", joints, left_flags, _pose(0.3, [0.1, -0.2, 0.05]))
        _write_camera(tmp_path / sequence / "cam0", joints, left_flags, _pose(-1.1, [1.0, 0.5, 0.2]))
    (tmp_path / "subject1/h1/0/cam4/rgb").mkdir()
    labels = tmp_path / "action_labels"
    labels.mkdir()
    (labels / "action_train.txt").write_text(
        f"{HEADER}\n1 subject1/h1/0 17 0 2 0 5\n2 subject1/h1/0 23 3 5 0 5\n3 subject1/h1/1 36 1 4 0 4\n"
    )
    (labels / "action_test.txt").write_text(
        "id path start_act end_act start_frame end_frame\n1 subject1/h1/1 0 3 0 4\n")
    return tmp_path, world


def test_taxonomy_has_36_actions_split_into_verb_and_object():
    taxonomy = h2o_taxonomy()
    assert len(taxonomy) == 36
    assert taxonomy[23] == ("take out espresso", "take out", "espresso")
    assert {noun for _, _, noun in taxonomy} == {"book", "espresso", "lotion", "spray", "milk", "cocoa", "chips",
                                                 "cappuccino"}
    assert len({verb for _, verb, _ in taxonomy}) == 11


def test_camera_view_joints_presence_actions_and_calibration(h2o_root):
    root, world = h2o_root
    sequences = load_h2o(root, split="train", view="cam4")
    assert [s.name for s in sequences] == ["h2o/subject1/h1/0", "h2o/subject1/h1/1"]
    seq = sequences[0]
    world_joints, left_flags = world["subject1/h1/0"]
    assert seq.joints.shape == (6, 2, 21, 3) and seq.fps == 30.0
    assert seq.subject == "subject1" and seq.view == "cam4" and seq.split == "train"
    np.testing.assert_array_equal(seq.presence[:, 0], left_flags == 1)
    assert seq.presence[:, 1].all()
    assert np.all(seq.joints[2, 0] == 0.0)
    # cam_from_world maps the (known) world joints onto the camera-frame joints that were read.
    homogeneous = np.concatenate([world_joints, np.ones(world_joints.shape[:-1] + (1,))], axis=-1)
    projected = np.einsum("tij,thkj->thki", seq.cam_from_world, homogeneous)[..., :3]
    np.testing.assert_allclose(seq.joints[seq.presence], projected[seq.presence], atol=1e-5)
    np.testing.assert_allclose(seq.intrinsics, [[636.6, 0, 635.3], [0, 636.2, 366.9], [0, 0, 1]])
    assert seq.image_paths[3].endswith("subject1/h1/0/cam4/rgb/000003.png")
    # end_act is inclusive; an end at the last frame index covers the sequence end.
    assert [(a.start, a.end, a.label, a.verb, a.noun) for a in seq.actions] == [
        (0, 3, "open lotion", "open", "lotion"), (3, 6, "pour milk", "pour", "milk")]
    assert sequences[1].actions[0].label == "squeeze lotion" and sequences[1].image_paths is None


def test_world_view_is_the_same_from_every_camera(h2o_root):
    root, world = h2o_root
    from_ego = load_h2o(root, split="train", view="world")[0]
    from_static = load_h2o(root, split="train", view="cam0")[0]
    world_joints = world["subject1/h1/0"][0]
    present = from_ego.presence
    np.testing.assert_allclose(from_ego.joints[present], world_joints[present], atol=1e-5)
    # A static camera's cam_from_world brings its own joints back to the same world.
    world_from_cam0 = np.linalg.inv(from_static.cam_from_world)
    rotation, translation = world_from_cam0[:, None, :3, :3], world_from_cam0[:, None, None, :3, 3]
    back = from_static.joints @ rotation.swapaxes(-1, -2) + translation
    np.testing.assert_allclose(back[present], from_ego.joints[present], atol=1e-5)


def test_unlabelled_public_test_file_gives_sequences_without_actions(h2o_root):
    root, _ = h2o_root
    sequences = load_h2o(root, split="test")
    assert len(sequences) == 1 and sequences[0].actions == [] and sequences[0].num_frames == 5


def _expect_error(root, match, **kwargs):
    with pytest.raises(DatasetFormatError, match=match) as info:
        load_h2o(root, **kwargs)
    return info.value


def test_malformed_hand_pose_line_names_file_and_line(h2o_root):
    root, _ = h2o_root
    bad = root / "subject1/h1/0/cam4/hand_pose/000004.txt"
    bad.write_text(" ".join(["0.1"] * 127) + "\n")
    error = _expect_error(root, "expected 128 numbers, got 127")
    assert error.path == bad and error.line == 1 and "000004.txt:1" in str(error)
    bad.write_text("1 " + " ".join(["x"] * 127))
    _expect_error(root, r"000004\.txt:1: not a number")
    bad.write_text(" ".join(["2"] + ["0.1"] * 127))
    _expect_error(root, "hand flags must be 0 or 1")


def test_empty_and_missing_frame_files_are_reported(h2o_root):
    root, _ = h2o_root
    (root / "subject1/h1/1/cam4/hand_pose/000001.txt").write_text("\n")
    _expect_error(root, r"000001\.txt: file is empty")
    (root / "subject1/h1/1/cam4/hand_pose/000001.txt").unlink()
    _expect_error(root, r"000001\.txt: frame file missing")


def test_bad_label_files_name_the_line(h2o_root):
    root, _ = h2o_root
    labels = root / "action_labels" / "action_train.txt"
    labels.write_text(f"{HEADER}\n1 subject1/h1/0 17 0 2 0 5\n2 subject1/h1/0 40 3 5 0 5\n")
    _expect_error(root, r"action_train\.txt:3: action_label must be in 1..36")
    labels.write_text(f"{HEADER}\n1 subject1/h1/0 17 0 2 0\n")
    _expect_error(root, r"action_train\.txt:2: expected 7 columns, got 6")
    labels.write_text(f"{HEADER}\n1 subject1/h1/0 17 9 20 0 30\n")
    _expect_error(root, r"action_train\.txt:2: segment starts at frame 9")
    labels.write_text("id sequence label\n")
    _expect_error(root, r"action_train\.txt:1: header lacks column 'path'")
    labels.write_text("")
    _expect_error(root, r"action_train\.txt: file is empty")


def test_bad_arguments_are_value_errors(h2o_root):
    root, _ = h2o_root
    with pytest.raises(ValueError, match="split"):
        load_h2o(root, split="training")
    with pytest.raises(ValueError, match="view"):
        load_h2o(root, view="cam7")
