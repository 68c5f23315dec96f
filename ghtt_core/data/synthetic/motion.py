"""Smooth wrist and finger trajectories: min-jerk point-to-point segments, optional detours, hand orientations.

Rotations are row-vector (hand -> world: x_world = x_hand @ R + p), rows = the hand's x, y, z axes in the world.
"""

import numpy as np
from scipy.spatial.transform import Rotation

from ghtt_core.skeleton import RIGHT


def min_jerk(u):
    """Min-jerk progress 10u^3 - 15u^4 + 6u^5: zero velocity and acceleration at both ends (Flash & Hogan 1985)."""
    u = np.clip(u, 0.0, 1.0)
    return u**3 * (10.0 - 15.0 * u + 6.0 * u**2)


def hand_rotation(side: int, palm_normal, thumb_side):
    """Hand -> world rotation from the direction the palm faces and the direction of the index/thumb side.

    Handles the mirrored left-hand frame: its index side is local -x (see ghtt_core.skeleton.PALM_TEMPLATES).
    """
    z = np.asarray(palm_normal, dtype=np.float64)
    z = z / np.linalg.norm(z)
    x = np.asarray(thumb_side, dtype=np.float64) * (1.0 if side == RIGHT else -1.0)
    x = x - (x @ z) * z
    if np.linalg.norm(x) < 1e-6:
        raise ValueError("hand_rotation: thumb direction is parallel to the palm normal")
    x /= np.linalg.norm(x)
    return np.stack([x, np.cross(z, x), z])


def interpolate_rotation(start, end, progress):
    """Geodesic interpolation start -> end at progress (n,) in [0, 1] -> (n, 3, 3)."""
    step = Rotation.from_matrix(start.T @ end).as_rotvec()
    return start @ Rotation.from_rotvec(progress[:, None] * step).as_matrix()


class HandTrack:
    """Frame-by-frame wrist position, wrist rotation and finger posture of one hand, built segment by segment."""

    def __init__(self, position, rotation, posture):
        self.positions = [np.asarray(position, dtype=np.float64)[None]]
        self.rotations = [np.asarray(rotation, dtype=np.float64)[None]]
        self.postures = [np.asarray(posture, dtype=np.float64)[None]]

    @property
    def num_frames(self):
        return sum(len(p) for p in self.positions)

    @property
    def position(self):
        return self.positions[-1][-1]

    @property
    def rotation(self):
        return self.rotations[-1][-1]

    @property
    def posture(self):
        return self.postures[-1][-1]

    def move(self, num_frames, position=None, rotation=None, posture=None, detour=None, finger_delay=0.0):
        """Append a min-jerk segment of `num_frames` frames ending at the given state (None keeps the current value).

        detour(s) -> (n, 3) is an offset added to the straight path; it must vanish at s = 0 and s = 1.
        finger_delay: fraction of the segment the fingers wait before moving (hands pre-shape late in a reach).
        """
        if num_frames < 1:
            raise ValueError(f"a motion segment needs at least one frame, got {num_frames}")
        u = np.arange(1, num_frames + 1) / num_frames
        s = min_jerk(u)
        start_p, start_r, start_f = self.position, self.rotation, self.posture
        end_p = start_p if position is None else np.asarray(position, dtype=np.float64)
        end_r = start_r if rotation is None else rotation
        end_f = start_f if posture is None else posture
        positions = start_p + s[:, None] * (end_p - start_p)
        if detour is not None:
            positions = positions + detour(s)
        finger_s = min_jerk((u - finger_delay) / (1.0 - finger_delay))
        self.positions.append(positions)
        self.rotations.append(interpolate_rotation(start_r, end_r, s))
        self.postures.append(start_f + finger_s[:, None, None] * (end_f - start_f))

    def hold(self, num_frames):
        """Stay still for `num_frames` frames."""
        if num_frames > 0:
            self.positions.append(np.repeat(self.positions[-1][-1:], num_frames, axis=0))
            self.rotations.append(np.repeat(self.rotations[-1][-1:], num_frames, axis=0))
            self.postures.append(np.repeat(self.postures[-1][-1:], num_frames, axis=0))

    def arrays(self):
        """(T, 3) positions, (T, 3, 3) rotations, (T, 5, 4) postures."""
        return np.concatenate(self.positions), np.concatenate(self.rotations), np.concatenate(self.postures)


def orbit_detour(radius, turns, start_angle, axis_u=(1.0, 0.0, 0.0), axis_v=(0.0, 1.0, 0.0)):
    """Detour that circles `turns` times in the plane (axis_u, axis_v) and comes back to where it started.

    The radius ramps up and down with min-jerk envelopes so the path leaves and rejoins the straight line smoothly.
    """
    axis_u, axis_v = np.asarray(axis_u), np.asarray(axis_v)

    def detour(s):
        envelope = min_jerk(np.minimum(s, 1.0 - s) / 0.2)
        angle = start_angle + 2.0 * np.pi * turns * s
        circle = (np.cos(angle) - np.cos(start_angle))[:, None] * axis_u + (np.sin(angle) - np.sin(start_angle))[
            :, None
        ] * axis_v
        return radius * envelope[:, None] * circle

    return detour


def lift_detour(height):
    """Detour that rises to `height` above the straight path halfway (carrying something over an obstacle)."""

    def detour(s):
        return np.stack([np.zeros_like(s), np.zeros_like(s), height * np.sin(np.pi * s) ** 2], axis=-1)

    return detour
