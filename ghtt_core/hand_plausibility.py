"""Is a tracked hand a hand? Rejects the poses a tracker or a broken publisher produces that no human hand can take,
before they enter the pipeline's history.

A degenerate hand (all joints at one point, all zeros) has no palm frame: its features divide by a zero palm size, and
the NaN then spreads through every clip the transformer attends to, so one such frame used to spoil about 16 results.
Rejected hands are treated as absent for that frame only (the pipeline masks them, as it masks a missing hand).

Rules, per hand and frame, with margins far outside anything measured on the synthetic benchmark's ground truth and
estimator-like poses (palm size 0.03-0.17 m, palm spread >= 0.17, longest bone <= 0.18 m, wrist speed <= 21 m/s
including simulated estimator glitches):
- palm size (mean wrist -> index..pinky MCP distance) within [MIN_PALM_SIZE_M, MAX_PALM_SIZE_M];
- the palm is not collapsed onto a line or a point: the spread |(index MCP - wrist) x (pinky MCP - wrist)| / palm
  size^2 (0.67 for the template palm) >= MIN_PALM_SPREAD;
- no bone longer than MAX_BONE_M;
- the wrist did not move faster than MAX_WRIST_SPEED_M_S since the hand's last accepted position (within
  MAX_JUMP_MEMORY_S; stamps closer than a 30 Hz frame count as one frame apart), unless it agrees with the previous
  frame's position: one outlier frame costs that frame, a hand that really moved (or a tracker that re-acquired it
  elsewhere) is accepted from its second frame on.
"""

from __future__ import annotations

import numpy as np

from ghtt_core.skeleton import MCP_JOINTS, NUM_HANDS, PARENTS, UNUSED_JOINT

MIN_PALM_SIZE_M = 0.02
MAX_PALM_SIZE_M = 0.25
MIN_PALM_SPREAD = 0.05
MAX_BONE_M = 0.3
MAX_WRIST_SPEED_M_S = 25.0
MAX_JUMP_MEMORY_S = 0.5
# Stamps closer than one 30 Hz frame are timed as one frame apart: a tracker that stamps on delivery (bursts after a
# stall) must not turn ordinary motion into an impossible speed.
MIN_JUMP_INTERVAL_S = 1.0 / 30.0
# Bones checked: the kinematic links without the unused thumb-CMC slot, plus wrist -> thumb MCP in its place.
_BONES = np.array([(PARENTS[j], j) for j in range(len(PARENTS))
                   if PARENTS[j] >= 0 and UNUSED_JOINT not in (PARENTS[j], j)] + [(0, 2)])
_INDEX_MCP, _PINKY_MCP = 5, 17


def implausible_shape(joints: np.ndarray) -> np.ndarray:
    """(..., 21, 3) finite joints in metres -> (...) bool: True where the pose is no human hand."""
    joints = np.asarray(joints, dtype=np.float64)
    wrist = joints[..., 0, :]
    palm = np.linalg.norm(joints[..., list(MCP_JOINTS), :] - wrist[..., None, :], axis=-1).mean(axis=-1)
    spread = np.linalg.norm(np.cross(joints[..., _INDEX_MCP, :] - wrist, joints[..., _PINKY_MCP, :] - wrist), axis=-1)
    bones = np.linalg.norm(joints[..., _BONES[:, 1], :] - joints[..., _BONES[:, 0], :], axis=-1)
    return ((palm < MIN_PALM_SIZE_M) | (palm > MAX_PALM_SIZE_M) | (spread < MIN_PALM_SPREAD * palm**2)
            | (bones.max(axis=-1) > MAX_BONE_M))


class PlausibilityFilter:
    """Per stream: which present hands of each frame are plausible (frames in stamp order)."""

    def __init__(self):
        self.reset()

    def reset(self):
        self._accepted = [None] * NUM_HANDS  # (stamp_ns, wrist) of each hand's last accepted pose
        self._previous = [None] * NUM_HANDS  # (stamp_ns, wrist) of each hand's previous present pose

    def check(self, stamp_ns: int, joints: np.ndarray, presence: np.ndarray) -> np.ndarray:
        """joints (2, 21, 3) finite where presence (2,) is True -> (2,) bool: present and plausible."""
        plausible = np.asarray(presence, bool).copy()
        if not plausible.any():
            return plausible
        plausible[plausible] = ~implausible_shape(joints[plausible])
        for side in np.flatnonzero(plausible):
            wrist = np.asarray(joints[side, 0], np.float64)
            if self._jumped(self._accepted[side], stamp_ns, wrist) and self._jumped(self._previous[side], stamp_ns,
                                                                                    wrist):
                plausible[side] = False
            else:
                self._accepted[side] = (stamp_ns, wrist)
            self._previous[side] = (stamp_ns, wrist)
        return plausible

    @staticmethod
    def _jumped(reference, stamp_ns, wrist):
        """True when the wrist moved faster than a hand can since the reference pose (a recent, earlier one)."""
        if reference is None:
            return False
        elapsed_s = (stamp_ns - reference[0]) / 1e9
        if not 0 < elapsed_s <= MAX_JUMP_MEMORY_S:
            return False
        return float(np.linalg.norm(wrist - reference[1])) > MAX_WRIST_SPEED_M_S * max(elapsed_s, MIN_JUMP_INTERVAL_S)
