"""`ghtt estimate` on the real fixture media: the .npz layout and the overlay files."""

import shutil
from pathlib import Path

import numpy as np
import pytest

from ghtt_core.cli import main
from ghtt_core.estimator.offline import EstimatedPoses

REAL_HANDS = Path(__file__).resolve().parents[2] / ".." / "shared" / "fixtures" / "real_hands"


def fixture_path(relative):
    path = REAL_HANDS / relative
    if not path.exists():
        pytest.fail(f"real-hand fixture missing: {path} (expected the shared fixtures next to the repository)")
    return path


def test_estimate_a_video_writes_poses_and_an_overlay(tmp_path):
    video = fixture_path("videos/hand_landmarker_test_video.mp4")
    assert main([
        "estimate", str(video), "-o", str(tmp_path / "poses.npz"), "--overlay", str(tmp_path / "overlay.png"),
        "--max-frames", "12", "--intrinsics", "500", "500", "320", "180",
    ]) == 0
    poses = EstimatedPoses.load(tmp_path / "poses.npz")
    assert poses.joints.shape == (12, 2, 21, 3) and poses.joints.dtype == np.float32
    assert poses.presence.shape == (12, 2) and poses.confidence.shape == (12, 2)
    assert poses.fps == pytest.approx(25.0)
    np.testing.assert_allclose(poses.intrinsics, [[500, 0, 320], [0, 500, 180], [0, 0, 1]])
    assert poses.image_size.tolist() == [640, 360]
    assert poses.presence.any(axis=1).all()
    assert np.isfinite(poses.joints).all()
    import cv2

    overlay = cv2.imread(str(tmp_path / "overlay.png"))
    assert overlay is not None and overlay.shape[1] == 1280  # 2 x 2 sheet of 640-wide tiles
    sequence = poses.to_hand_sequence("landmarker")
    assert sequence.num_frames == 12


def test_estimate_an_image_folder_as_photos(tmp_path, error_line):
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("hand_landmarker_test_image.jpg", "hand_thumb_up.jpg"):
        shutil.copy(fixture_path(f"images/pixabay/{name}"), folder / name)
    # Photos of different sizes are not one camera: the estimator refuses rather than mixing intrinsics.
    assert main(["estimate", str(folder), "-o", str(tmp_path / "p.npz"), "--static"]) == 2
    message = error_line("ghtt")
    assert "earlier frames" in message and "images of one size" in message
    (folder / "hand_thumb_up.jpg").unlink()
    assert main(["estimate", str(folder), "-o", str(tmp_path / "p.npz"), "--static", "--fps", "5",
                 "--overlay", str(tmp_path / "o.gif")]) == 0
    poses = EstimatedPoses.load(tmp_path / "p.npz")
    assert poses.num_frames == 1 and poses.fps == 5.0 and poses.presence.sum() == 1
    assert (tmp_path / "o.gif").stat().st_size > 0


def test_bad_inputs_are_reported_on_one_line(tmp_path, error_line):
    assert main(["estimate", str(tmp_path / "missing.mp4"), "-o", str(tmp_path / "p.npz")]) == 2
    assert "input not found" in error_line("ghtt")
    (tmp_path / "notes.txt").write_text("hello")
    assert main(["estimate", str(tmp_path / "notes.txt"), "-o", str(tmp_path / "p.npz")]) == 2
    assert "unsupported input" in error_line("ghtt")
    assert main(["estimate", str(fixture_path("images/thumb-up-mit.jpg")), "-o", str(tmp_path / "p.npz"),
                 "--overlay", str(tmp_path / "o.jpg")]) == 2
    assert "overlay must end" in error_line("ghtt")
