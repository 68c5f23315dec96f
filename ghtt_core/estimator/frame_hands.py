"""The per-frame result every hand estimator returns, and the estimator protocol the ROS node and CLI call."""

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from ghtt_core.skeleton import NUM_HANDS, NUM_JOINTS


@dataclass
class FrameHands:
    """Two hands in one image; index 0 = left, 1 = right (the person's sides).

    joints:        (2, 21, 3) float32, metres, camera optical frame. Absent hands hold zeros (finite, masked).
    presence:      (2,) bool.
    confidence:    (2,) float32 in [0, 1]; 0 for absent hands.
    keypoints_2d:  (2, 21, 2) float32 pixels in the input image.
    intrinsics:    the CameraIntrinsics used to place the hands (given or the documented default).
    stamp:         the caller's timestamp, passed through unchanged.
    depth_rejected: hands placed without the given depth image because it disagreed with the monocular estimate.
    """

    joints: np.ndarray
    presence: np.ndarray
    confidence: np.ndarray
    keypoints_2d: np.ndarray
    intrinsics: object
    stamp: object = None
    depth_rejected: int = 0

    def __post_init__(self):
        self.joints = np.asarray(self.joints, dtype=np.float32)
        self.presence = np.asarray(self.presence, dtype=bool)
        self.confidence = np.asarray(self.confidence, dtype=np.float32)
        self.keypoints_2d = np.asarray(self.keypoints_2d, dtype=np.float32)
        expected = {
            "joints": (NUM_HANDS, NUM_JOINTS, 3),
            "presence": (NUM_HANDS,),
            "confidence": (NUM_HANDS,),
            "keypoints_2d": (NUM_HANDS, NUM_JOINTS, 2),
        }
        for name, shape in expected.items():
            if getattr(self, name).shape != shape:
                raise ValueError(f"FrameHands.{name} must have shape {shape}, got {getattr(self, name).shape}")
        if not np.isfinite(self.joints).all():
            raise ValueError("FrameHands.joints must be finite (absent hands hold zeros)")

    @classmethod
    def empty(cls, intrinsics, stamp=None):
        return cls(
            joints=np.zeros((NUM_HANDS, NUM_JOINTS, 3)),
            presence=np.zeros(NUM_HANDS, dtype=bool),
            confidence=np.zeros(NUM_HANDS),
            keypoints_2d=np.zeros((NUM_HANDS, NUM_JOINTS, 2)),
            intrinsics=intrinsics,
            stamp=stamp,
        )


class HandEstimator(Protocol):
    """Image -> two hands. One instance per camera stream (backends may track across calls)."""

    def estimate(self, image_rgb, intrinsics=None, depth=None, stamp=None) -> FrameHands:
        """image_rgb: uint8 (H, W, 3) RGB. intrinsics: CameraIntrinsics or None (default FOV). depth: float32 metres
        (H, W) with NaN invalid, aligned to the image (see camera.depth_image_to_metres), or None."""

    def reset(self) -> None:
        """Forget tracking state (call when the stream restarts or jumps)."""
