"""FPHA reader on fixture files written in the released FPHA layout."""

import numpy as np
import pytest
from released_formats import write_fpha

from ghtt_core.data.errors import DatasetFormatError
from ghtt_core.data.fpha import COLOR_FROM_DEPTH, FPHA_ACTIONS, fpha_taxonomy, load_fpha
from ghtt_core.skeleton import JOINT_NAMES, LEFT, RIGHT

# FPHA README joint order, in FPHA's own names.
FPHA_README_ORDER = ("Wrist TMCP IMCP MMCP RMCP PMCP TPIP TDIP TTIP IPIP IDIP ITIP MPIP MDIP MTIP RPIP RDIP RTIP "
                     "PPIP PDIP PTIP").split()
GHTT_FROM_FPHA_NAME = {"Wrist": "wrist", "TMCP": "thumb_cmc", "TPIP": "thumb_mcp", "TDIP": "thumb_ip",
                       "TTIP": "thumb_tip"}
for _letter, _finger in zip("IMRP", ("index", "middle", "ring", "pinky")):
    for _part in ("MCP", "PIP", "DIP", "TIP"):
        GHTT_FROM_FPHA_NAME[_letter + _part] = f"{_finger}_{_part.lower()}"

SEQUENCES = {"train": [("Subject_1/open_juice_bottle/1", 0, 4), ("Subject_1/high_five/2", 44, 3)],
             "test": [("Subject_2/open_juice_bottle/1", 0, 5)]}


def _skeleton_mm(num_frames, seed):
    """(T, 21, 3) mm in FPHA order: joint k's x coordinate encodes its ghtt index so the reordering is checkable."""
    rng = np.random.default_rng(seed)
    joints = rng.normal(0.0, 30.0, size=(num_frames, 21, 3)) + np.array([0.0, 0.0, 400.0])
    for fpha_index, fpha_name in enumerate(FPHA_README_ORDER):
        joints[:, fpha_index, 0] = 10.0 * JOINT_NAMES.index(GHTT_FROM_FPHA_NAME[fpha_name])
    return joints


@pytest.fixture
def fpha_root(tmp_path):
    splits = {split: [(sequence_path, label, _skeleton_mm(num_frames, seed))
                      for seed, (sequence_path, label, num_frames) in enumerate(entries)]
              for split, entries in SEQUENCES.items()}
    write_fpha(tmp_path, splits)
    return tmp_path, {sequence_path: joints for entries in splits.values() for sequence_path, _, joints in entries}


def test_taxonomy_has_45_actions_with_verb_and_noun():
    taxonomy = fpha_taxonomy()
    assert len(taxonomy) == 45 and len({label for label, _, _ in taxonomy}) == 45
    assert taxonomy[0] == ("open juice bottle", "open", "juice bottle")
    assert taxonomy[44] == ("high five", "high five", "hand")
    assert all(verb and noun for _, verb, noun in taxonomy)


def test_depth_view_is_the_skeleton_in_metres_in_ghtt_order_right_hand_only(fpha_root):
    root, skeletons = fpha_root
    sequences = load_fpha(root, split="train", view="depth")
    assert [s.name for s in sequences] == ["fpha/Subject_1/open_juice_bottle/1", "fpha/Subject_1/high_five/2"]
    seq = sequences[0]
    assert seq.joints.shape == (4, 2, 21, 3) and seq.subject == "Subject_1" and seq.split == "train"
    assert seq.presence[:, RIGHT].all() and not seq.presence[:, LEFT].any()
    # Each ghtt slot holds the joint whose encoded index is that slot.
    np.testing.assert_allclose(seq.joints[:, RIGHT, :, 0], np.tile(np.arange(21) * 0.01, (4, 1)), atol=1e-6)
    wrist_mm = skeletons["Subject_1/open_juice_bottle/1"][:, 0]
    np.testing.assert_allclose(seq.joints[:, RIGHT, 0], wrist_mm / 1000.0, atol=1e-6)
    assert [(a.start, a.end, a.label, a.verb, a.noun) for a in seq.actions] == [
        (0, 4, "open juice bottle", "open", "juice bottle")]
    assert sequences[1].actions[0].label == "high five"
    np.testing.assert_allclose(seq.intrinsics[0, 0], 475.065948)


def test_color_view_applies_the_published_extrinsics(fpha_root):
    root, _ = fpha_root
    depth = load_fpha(root, split="test", view="depth")[0]
    color = load_fpha(root, split="test", view="color")[0]
    assert depth.split == "test" and depth.subject == "Subject_2"
    expected = depth.joints[:, RIGHT] @ COLOR_FROM_DEPTH[:3, :3].T + COLOR_FROM_DEPTH[:3, 3]
    np.testing.assert_allclose(color.joints[:, RIGHT], expected, atol=1e-6)
    # The 25.7 mm baseline shows up as a ~2.6 cm shift.
    shift = np.linalg.norm(color.joints[:, RIGHT] - depth.joints[:, RIGHT], axis=-1)
    assert np.all((shift > 0.025) & (shift < 0.027))
    np.testing.assert_allclose(color.cam_from_world, COLOR_FROM_DEPTH)


def _expect_error(root, match, split="train"):
    with pytest.raises(DatasetFormatError, match=match) as info:
        load_fpha(root, split=split)
    return info.value


def test_malformed_skeleton_lines_name_file_and_line(fpha_root):
    root, skeletons = fpha_root
    path = root / "Hand_pose_annotation_v1/Subject_1/high_five/2/skeleton.txt"
    lines = path.read_text().splitlines()
    lines[1] = lines[1].rsplit(" ", 1)[0]
    path.write_text("\n".join(lines))
    error = _expect_error(root, "expected 64 numbers, got 63")
    assert error.path == path and error.line == 2
    lines = path.read_text().splitlines()
    lines[1] = "5 " + " ".join(["1.0"] * 63)
    path.write_text("\n".join(lines))
    _expect_error(root, r"skeleton\.txt:2: frame number 5 where 1 was expected")
    path.write_text("")
    _expect_error(root, r"skeleton\.txt: file is empty")
    path.unlink()
    _expect_error(root, r"skeleton\.txt: file not found")


def test_bad_split_files_name_the_line(fpha_root):
    root, _ = fpha_root
    split_file = root / "data_split_action_recognition.txt"
    split_file.write_text("Training 2\nSubject_1/open_juice_bottle/1 0\nSubject_1/high_five/2 43\n")
    _expect_error(root, r"action_recognition\.txt:3: class 43 is 'handshake' but the folder is 'high_five'")
    split_file.write_text("Training 3\nSubject_1/open_juice_bottle/1 0\nSubject_1/high_five/2 44\n")
    _expect_error(root, r"action_recognition\.txt:1: header announces 3 sequences, found 2")
    split_file.write_text("Subject_1/open_juice_bottle/1 0\n")
    _expect_error(root, r"action_recognition\.txt:1: entry before the 'Training' header")
    split_file.write_text("Training 1\nSubject_1/open_juice_bottle/1 zero\n")
    _expect_error(root, r"action_recognition\.txt:2: action class must be an integer")
    split_file.write_text("Training 1\nSubject_1/open_juice_bottle/1 99\n")
    _expect_error(root, r"must be in 0\.\.44")


def test_class_table_matches_folder_names():
    folders = [folder for folder, _, _ in FPHA_ACTIONS]
    assert len(set(folders)) == 45 and folders.index("charge_cell_phone") == 34


def test_bad_arguments_are_value_errors(fpha_root):
    root, _ = fpha_root
    with pytest.raises(ValueError, match="split"):
        load_fpha(root, split="val")
    with pytest.raises(ValueError, match="view"):
        load_fpha(root, view="ir")


def test_cli_converts_fpha_to_the_ghtt_format(fpha_root, tmp_path):
    from ghtt_core.cli import main
    from ghtt_core.data.storage import StoredDataset

    root, skeletons = fpha_root
    out = tmp_path / "converted"
    assert main(["data", "convert", "fpha", str(root), "--out", str(out), "--view", "depth"]) == 0
    sequences = StoredDataset(out).sequences()
    assert len(sequences) == sum(len(v) for v in SEQUENCES.values())
    by_name = {seq.name.split("/")[0]: seq for seq in sequences}
    for sequence_path, skeleton_mm in skeletons.items():
        converted = by_name[f"fpha__{sequence_path.replace('/', '__')}"]
        assert converted.presence[:, 1].all() and not converted.presence[:, 0].any()
        assert len(converted.actions) == 1
        np.testing.assert_allclose(converted.joints[:, 1, 0], skeleton_mm[:, 0] / 1000.0, atol=1e-6)
