"""ImageStreamEstimator (ghtt_core.estimator.stream): the camera path's per-image rules, shared by the hand_estimator
node and the offline bag evaluation; and the determinism the live/offline comparison relies on (real photos)."""

from pathlib import Path

import cv2
import numpy as np
import pytest

from ghtt_core.estimator.camera import CameraIntrinsics
from ghtt_core.estimator.frame_hands import FrameHands
from ghtt_core.estimator.stream import ImageStreamEstimator, StreamSettings, build_hand_estimator

REAL_HANDS = Path(__file__).resolve().parents[2] / ".." / "shared" / "fixtures" / "real_hands" / "images"
IMAGE = np.zeros((48, 64, 3), np.uint8)


class FakeEstimator:
    def __init__(self):
        self.calls, self.resets, self.error = [], 0, None

    def estimate(self, image_rgb, intrinsics=None, depth=None, stamp=None):
        if self.error:
            raise ValueError(self.error)
        self.calls.append({"shape": image_rgb.shape, "intrinsics": intrinsics, "depth": depth, "stamp": stamp})
        return FrameHands.empty(intrinsics, stamp)

    def reset(self):
        self.resets += 1


def failing(message):
    def decode():
        raise ValueError(message)
    return decode


def test_stamps_images_and_estimation_failures():
    fake = FakeEstimator()
    stream = ImageStreamEstimator(fake)
    never = failing("must not be decoded")
    assert stream.process(0, never).dropped[0][0] == "zero_stamp"
    result = stream.process(5, failing("unsupported image encoding 'yuv'"))
    assert result.hands is None and result.dropped == [("bad_image", "unsupported image encoding 'yuv'")]
    assert stream.process(5, lambda: IMAGE).hands.stamp == 5 and fake.resets == 0  # a bad image sets no stamp
    repeated = stream.process(5, IMAGE)
    assert [reason for reason, _ in repeated.events] == ["stamp_backwards"] and fake.resets == 1
    assert repeated.hands is not None  # estimated after the tracking reset
    stream.process(3, IMAGE)
    assert fake.resets == 2
    fake.error = "image 10x10 is too small"
    failed = stream.process(9, IMAGE)
    assert failed.hands is None and failed.dropped == [("estimation_failed", "image 10x10 is too small")]


def test_intrinsics_from_the_calibration_scaled_or_the_default_field_of_view():
    fake = FakeEstimator()
    stream = ImageStreamEstimator(fake, StreamSettings(default_horizontal_fov_deg=90.0))
    stream.process(1, IMAGE)
    assert fake.calls[-1]["intrinsics"] == CameraIntrinsics.from_fov(64, 48, 90.0)
    calibration = CameraIntrinsics(100.0, 100.0, 64.0, 48.0, 128, 96)  # for the full-size image
    stream.process(2, IMAGE, calibration=calibration)
    assert fake.calls[-1]["intrinsics"] == calibration.scaled(64, 48)
    invalid = stream.process(3, IMAGE, calibration=failing("CameraInfo has no calibration"))
    assert invalid.events == [("camera_info_invalid", "CameraInfo has no calibration: using the default field of "
                                                      "view")]
    assert fake.calls[-1]["intrinsics"] == CameraIntrinsics.from_fov(64, 48, 90.0)
    ignoring = ImageStreamEstimator(fake, StreamSettings(use_camera_info=False))
    ignoring.process(4, IMAGE, calibration=failing("must not be decoded"))
    assert fake.calls[-1]["intrinsics"] == CameraIntrinsics.from_fov(64, 48)


def test_depth_is_used_only_when_enabled_matching_and_aligned():
    fake = FakeEstimator()
    depth = np.full((48, 64), 0.5, np.float32)
    ImageStreamEstimator(fake).process(1, IMAGE, depth=depth, depth_stamp_ns=1)
    assert fake.calls[-1]["depth"] is None  # use_depth off
    stream = ImageStreamEstimator(fake, StreamSettings(use_depth=True, depth_max_skew_s=0.01))
    stream.process(10**9, IMAGE, depth=lambda: depth, depth_stamp_ns=10**9 + 5_000_000)
    assert fake.calls[-1]["depth"] is depth
    late = stream.process(2 * 10**9, IMAGE, depth=depth, depth_stamp_ns=2 * 10**9 + 20_000_000)
    assert [r for r, _ in late.events] == ["depth_unmatched"] and fake.calls[-1]["depth"] is None
    misaligned = stream.process(3 * 10**9, IMAGE, depth=np.zeros((10, 10), np.float32), depth_stamp_ns=3 * 10**9)
    assert [r for r, _ in misaligned.dropped] == ["bad_depth"] and misaligned.hands is not None
    broken = stream.process(4 * 10**9, IMAGE, depth=failing("unsupported depth encoding"), depth_stamp_ns=4 * 10**9)
    assert broken.dropped == [("bad_depth", "unsupported depth encoding")] and broken.hands is not None


def test_backend_choice_is_checked():
    with pytest.raises(ValueError, match="backend must be one of"):
        build_hand_estimator("openpose")
    with pytest.raises(ValueError, match="estimator_checkpoint"):
        ImageStreamEstimator.from_parameters({"backend": "resnet", "estimator_checkpoint": ""})


def test_mediapipe_streams_are_deterministic_on_real_photos():
    """Two streams built from the same parameters give bit-identical hands for the same images in the same order: what
    makes the live and offline bag evaluations of an image bag agree."""
    names = ("thumb-up-mit.jpg", "pixabay/hand_landmarker_test_image.jpg", "pixabay/hand_thumb_up.jpg")
    photos = []
    for name in names:
        if not (REAL_HANDS / name).is_file():
            pytest.fail(f"real-hand fixture missing: {REAL_HANDS / name}")
        photos.append(cv2.cvtColor(cv2.resize(cv2.imread(str(REAL_HANDS / name)), (160, 120)), cv2.COLOR_BGR2RGB))
    frames = [photos[i // 4] for i in range(4 * len(photos))]
    calibration = CameraIntrinsics(150.0, 150.0, 80.0, 60.0, 160, 120)
    runs = []
    for _ in range(2):
        stream = ImageStreamEstimator.from_parameters({"model_complexity": 0})
        try:
            runs.append([stream.process(10**9 + i, frame, calibration).hands for i, frame in enumerate(frames)])
        finally:
            stream.close()
    first, second = runs
    assert sum(hands.presence.sum() for hands in first) >= len(frames)  # one hand per photo, found
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a.joints, b.joints)
        np.testing.assert_array_equal(a.presence, b.presence)
        np.testing.assert_array_equal(a.confidence, b.confidence)
