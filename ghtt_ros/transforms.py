"""Rigid transforms between coordinate frames and the tree of static transforms a robot publishes on /tf_static.

tf2_ros is not installable from PyPI, so ghtt resolves static transforms itself (numpy only here; the /tf_static
subscription is ghtt_ros.nodes.target_frame). Conventions are tf2's: a TransformStamped with header.frame_id P and
child_frame_id C maps coordinates in C to coordinates in P (it is C's pose in P).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# The camera optical frame name ghtt uses wherever it names one itself (synthetic bags, the demo, the video_source
# node, config/ghtt.rviz): a RealSense's colour optical frame, so the common case needs no change.
DEFAULT_OPTICAL_FRAME = "camera_color_optical_frame"


@dataclass(frozen=True)
class RigidTransform:
    rotation: np.ndarray  # (3, 3)
    translation: np.ndarray  # (3,) metres

    @classmethod
    def identity(cls):
        return cls(np.eye(3), np.zeros(3))

    @classmethod
    def from_translation_quaternion(cls, translation, quaternion):
        """translation (x, y, z) metres, quaternion (x, y, z, w) as in geometry_msgs; ValueError if not finite or
        the quaternion has no length."""
        translation = np.asarray(translation, np.float64).reshape(-1)
        quaternion = np.asarray(quaternion, np.float64).reshape(-1)
        if translation.shape != (3,) or quaternion.shape != (4,):
            raise ValueError(f"expected 3 translation and 4 quaternion values, got {translation.size} and "
                             f"{quaternion.size}")
        norm = np.linalg.norm(quaternion)
        if not (np.isfinite(translation).all() and np.isfinite(quaternion).all() and norm > 1e-9):
            raise ValueError(f"transform must be finite with a non-zero quaternion, got {translation.tolist()} "
                             f"{quaternion.tolist()}")
        x, y, z, w = quaternion / norm
        rotation = np.array([
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ])
        return cls(rotation, translation)

    @classmethod
    def from_msg(cls, transform):
        """geometry_msgs/Transform -> RigidTransform."""
        t, q = transform.translation, transform.rotation
        return cls.from_translation_quaternion((t.x, t.y, t.z), (q.x, q.y, q.z, q.w))

    def apply(self, points):
        """points (..., 3) -> the same points in the parent frame, float32; NaN (absent hands) stays NaN."""
        points = np.asarray(points, np.float64)
        return (points @ self.rotation.T + self.translation).astype(np.float32)

    def then(self, outer: "RigidTransform") -> "RigidTransform":
        """This transform followed by `outer` (child -> self's parent -> outer's parent)."""
        return RigidTransform(outer.rotation @ self.rotation, outer.rotation @ self.translation + outer.translation)

    def inverse(self) -> "RigidTransform":
        return RigidTransform(self.rotation.T, -self.rotation.T @ self.translation)


class StaticFrameTree:
    """Static transforms by child frame; lookups chain them through a common ancestor, as tf2 does."""

    def __init__(self):
        self._parents = {}  # child -> (parent, RigidTransform child -> parent)

    def add(self, parent, child, transform: RigidTransform):
        self._parents[child] = (parent, transform)

    def _to_root(self, frame):
        """(root frame, transform frame -> root)."""
        transform, seen = RigidTransform.identity(), {frame}
        while frame in self._parents:
            frame, step = self._parents[frame]
            if frame in seen:
                raise ValueError(f"/tf_static has a cycle through frame {frame!r}")
            seen.add(frame)
            transform = transform.then(step)
        return frame, transform

    def lookup(self, target, source) -> RigidTransform | None:
        """The transform mapping coordinates in `source` to `target`; None while the two frames are not connected."""
        if target == source:
            return RigidTransform.identity()
        source_root, source_to_root = self._to_root(source)
        target_root, target_to_root = self._to_root(target)
        if source_root != target_root:
            return None
        return source_to_root.then(target_to_root.inverse())
