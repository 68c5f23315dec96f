"""Offline estimation over a whole video / image folder, and the .npz file `ghtt estimate` writes.

.npz layout (T frames): joints (T, 2, 21, 3) float32 metres, camera frame, hand 0 = left, 1 = right;
presence (T, 2) bool; confidence (T, 2) float32; keypoints_2d (T, 2, 21, 2) float32 px; intrinsics (3, 3) float64;
image_size (2,) int [width, height]; fps () float; frame_names (T,) str; seconds_per_frame (T,) float64 (wall time of
estimate(), for speed reports).
"""

from dataclasses import dataclass
import time

import numpy as np

from ghtt_core.data.sequence import HandSequence


@dataclass
class EstimatedPoses:
    joints: np.ndarray
    presence: np.ndarray
    confidence: np.ndarray
    keypoints_2d: np.ndarray
    intrinsics: np.ndarray
    image_size: np.ndarray
    fps: float
    frame_names: np.ndarray
    seconds_per_frame: np.ndarray

    @property
    def num_frames(self):
        return len(self.joints)

    def wrist_jitter(self, side):
        """(M,) metres: |w[t+1] - 2 w[t] + w[t-1]| of the wrist over frames where the hand is present three frames
        in a row. The second difference is zero for steady motion, so it measures shake rather than movement."""
        wrist = self.joints[:, side, 0].astype(np.float64)
        present = self.presence[:, side]
        runs = present[2:] & present[1:-1] & present[:-2]
        return np.linalg.norm(wrist[2:] - 2 * wrist[1:-1] + wrist[:-2], axis=-1)[runs]

    def save(self, path):
        np.savez_compressed(path, **{name: np.asarray(value) for name, value in vars(self).items()})

    @classmethod
    def load(cls, path):
        with np.load(path, allow_pickle=False) as data:
            fields = {name: data[name] for name in data.files}
        fields["fps"] = float(fields["fps"])
        return cls(**fields)

    def to_hand_sequence(self, name):
        """A HandSequence whose joints are these estimates (also set as its estimated_* fields)."""
        return HandSequence(
            name=name, joints=self.joints, presence=self.presence, fps=self.fps,
            estimated_joints=self.joints, estimated_presence=self.presence, intrinsics=self.intrinsics,
        )


def estimate_frames(estimator, frames, fps, intrinsics=None, on_frame=None):
    """Run estimator.estimate over (name, rgb) frames in order. on_frame(name, image, frame_hands) sees every result
    (overlays). All frames must have the same size (one camera)."""
    results, names, seconds = [], [], []
    image_size = None
    for name, image in frames:
        size = (image.shape[1], image.shape[0])
        if image_size is None:
            image_size = size
        elif size != image_size:
            raise ValueError(
                f"frame {name} is {size[0]}x{size[1]} but earlier frames are {image_size[0]}x{image_size[1]}: one "
                "run estimates one camera; put images of one size (one camera) in a folder, or resize them"
            )
        start = time.perf_counter()
        hands = estimator.estimate(image, intrinsics=intrinsics, stamp=len(results) / fps)
        seconds.append(time.perf_counter() - start)
        results.append(hands)
        names.append(name)
        if on_frame is not None:
            on_frame(name, image, hands)
    if not results:
        raise ValueError("no frames to estimate")
    return EstimatedPoses(
        joints=np.stack([r.joints for r in results]),
        presence=np.stack([r.presence for r in results]),
        confidence=np.stack([r.confidence for r in results]),
        keypoints_2d=np.stack([r.keypoints_2d for r in results]),
        intrinsics=results[0].intrinsics.matrix,
        image_size=np.array(image_size),
        fps=float(fps),
        frame_names=np.array(names),
        seconds_per_frame=np.array(seconds),
    )
