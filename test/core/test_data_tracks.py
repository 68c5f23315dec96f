"""`ghtt data from-tracks`: tracked poses (the .npz of `ghtt estimate`) as a dataset that training-report can score."""

import numpy as np
import pytest

from ghtt_core.cli import main
from ghtt_core.data.storage import StoredDataset
from ghtt_core.data.tracks import sequence_from_tracks


def _write_tracks(path, frames=40, fps=25.0):
    joints = np.random.default_rng(0).normal(size=(frames, 2, 21, 3)).astype(np.float32)
    presence = np.zeros((frames, 2), dtype=bool)
    presence[5:35, 1] = True  # the right hand only, from frame 5 to 34
    joints[~presence] = np.nan  # the estimator writes NaN for hands it did not find
    np.savez(path, joints=joints, presence=presence, fps=np.float64(fps), intrinsics=np.eye(3))
    return joints, presence


def test_tracks_become_one_unlabelled_segment_over_the_frames_with_a_hand(tmp_path):
    joints, presence = _write_tracks(tmp_path / "walk.npz")
    sequence = sequence_from_tracks(tmp_path / "walk.npz")
    assert (sequence.actions[0].start, sequence.actions[0].end, sequence.actions[0].label) == (5, 35, "unlabelled")
    assert sequence.fps == 25.0 and np.isfinite(sequence.joints).all()
    np.testing.assert_array_equal(sequence.joints[presence], joints[presence])

    assert main(["data", "from-tracks", str(tmp_path / "walk.npz"), "--out", str(tmp_path / "data")]) == 0
    stored = StoredDataset(tmp_path / "data").sequences("test")
    assert len(stored) == 1 and stored[0].num_frames == 40
    np.testing.assert_array_equal(stored[0].presence, presence)


def test_bad_track_files_are_one_clear_error(tmp_path, capsys):
    np.savez(tmp_path / "empty.npz", joints=np.zeros((3, 2, 21, 3)), presence=np.zeros((3, 2), dtype=bool))
    with pytest.raises(ValueError, match="no frame with a hand"):
        sequence_from_tracks(tmp_path / "empty.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    assert main(["data", "from-tracks", str(tmp_path / "junk.npz"), "--out", str(tmp_path / "d")]) != 0
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "junk.npz" in error[0]
