"""Articulated hand model: subject-scaled bone lengths, joint-angle limits and forward kinematics.

A hand is built in its own frame (the RIGHT-hand frame of ghtt_core.skeleton.PALM_TEMPLATES: +y wrist -> middle MCP,
+x towards the index side; for an anatomical right hand +z = x cross y then points out of the palm, and the template's
few-millimetre z offsets are too small to tell palm from back); a left hand is the mirror image (x -> -x). Each finger is
a planar chain: abduction turns the chain about the palm normal at its base, flexion bends every segment towards the
palm. Angles are radians; posture arrays are (..., 5 fingers, 4) = [abduction, flexion 1, flexion 2, flexion 3]
(for the thumb: CMC opposition, CMC flexion, MCP flexion, IP flexion).
"""

from dataclasses import dataclass

import numpy as np

from ghtt_core.skeleton import FINGERS, LEFT, PALM_TEMPLATES, RIGHT

FINGER_ORDER = ("thumb", "index", "middle", "ring", "pinky")
NUM_FINGERS = len(FINGER_ORDER)
ANGLES_PER_FINGER = 4

# Phalanx lengths (proximal, middle, distal) of an average adult hand in metres; thumb = (metacarpal, proximal, distal).
_ADULT_PHALANGES = np.array(
    [
        [0.046, 0.032, 0.027],  # thumb CMC->MCP, MCP->IP, IP->tip
        [0.043, 0.025, 0.021],
        [0.047, 0.029, 0.022],
        [0.044, 0.028, 0.022],
        [0.035, 0.020, 0.019],
    ]
)
# Thumb CMC in the right-hand frame: on the index side of the wrist, slightly towards the palm.
_THUMB_CMC = np.array([0.020, 0.022, 0.012])

# Joint-angle limits (radians), rows = fingers, columns = [abduction, flexion 1, flexion 2, flexion 3].
ANGLE_LOWER = np.radians(
    [
        [-15.0, -10.0, -10.0, -15.0],
        [-20.0, -20.0, 0.0, 0.0],
        [-12.0, -20.0, 0.0, 0.0],
        [-15.0, -20.0, 0.0, 0.0],
        [-25.0, -20.0, 0.0, 0.0],
    ]
)
ANGLE_UPPER = np.radians(
    [
        [60.0, 50.0, 60.0, 80.0],
        [20.0, 90.0, 110.0, 80.0],
        [12.0, 90.0, 110.0, 80.0],
        [15.0, 90.0, 110.0, 80.0],
        [25.0, 90.0, 110.0, 80.0],
    ]
)


def _unit(v):
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def _finger_base_frames():
    """Per finger: (rest direction, abduction direction, flexion direction), unit 3-vectors in the right-hand frame.

    With +x to the index side and +y to the middle finger, x cross y = +z points out of the PALM of an anatomical right
    hand, so fingers flex towards +z. The thumb rests forward, out to the index side and a little palmar; flexing
    brings it across the palm towards the little finger; positive abduction (opposition) lifts it out of that plane.
    """
    frames = []
    thumb_dir = _unit(np.array([0.75, 0.60, 0.28]))
    thumb_flex = np.array([-0.75, 0.35, 0.75])
    thumb_flex = _unit(thumb_flex - thumb_flex @ thumb_dir * thumb_dir)
    frames.append((thumb_dir, _unit(np.cross(thumb_dir, thumb_flex)), thumb_flex))
    for mcp in PALM_TEMPLATES[RIGHT][1:]:
        # Fingers fan out less than the MCPs do: keep a third of the sideways offset.
        direction = _unit(mcp * np.array([0.35, 1.0, 0.0]))
        flex = np.array([0.0, 0.0, 1.0])
        frames.append((direction, _unit(np.cross(direction, flex)), flex))
    return frames


_BASE_FRAMES = _finger_base_frames()


@dataclass(frozen=True)
class HandShape:
    """Bone geometry of one subject's hands (both sides share it). Lengths in metres."""

    palm: np.ndarray  # (5, 3) right-hand palm points [wrist, index, middle, ring, pinky MCP]
    thumb_cmc: np.ndarray  # (3,)
    phalanges: np.ndarray  # (5, 3)

    @classmethod
    def for_subject(cls, scale: float, rng: np.random.Generator, bone_jitter: float = 0.04):
        """Adult template scaled by `scale` (0.85-1.15 for our subjects) with small per-bone individual variation."""
        if not 0.5 < scale < 2.0:
            raise ValueError(f"hand scale must be a plausible multiple of an adult hand, got {scale}")
        palm = PALM_TEMPLATES[RIGHT] * scale * (1.0 + bone_jitter * rng.uniform(-1, 1, size=(5, 1)))
        palm[0] = 0.0
        phalanges = _ADULT_PHALANGES * scale * (1.0 + bone_jitter * rng.uniform(-1, 1, size=(5, 3)))
        return cls(palm=palm, thumb_cmc=_THUMB_CMC * scale, phalanges=phalanges)

    def bone_lengths(self):
        """(20,) lengths of the kinematic-tree bones, parent order of ghtt_core.skeleton.PARENTS (joints 1..20)."""
        thumb = np.concatenate([[np.linalg.norm(self.thumb_cmc)], self.phalanges[0]])
        fingers = [np.concatenate([[np.linalg.norm(mcp)], self.phalanges[f]]) for f, mcp in enumerate(self.palm[1:], 1)]
        return np.concatenate([thumb] + fingers)


def clip_to_limits(angles):
    """Clamp posture angles (..., 5, 4) to the per-joint limits."""
    return np.clip(angles, ANGLE_LOWER, ANGLE_UPPER)


def local_joints(shape: HandShape, angles, side: int):
    """Joints of one hand in its own frame. angles: (..., 5, 4) radians -> (..., 21, 3) metres, ghtt joint order."""
    angles = clip_to_limits(np.asarray(angles, dtype=np.float64))
    batch = angles.shape[:-2]
    joints = np.zeros(batch + (21, 3))
    bases = [shape.thumb_cmc] + list(shape.palm[1:])
    for f, name in enumerate(FINGER_ORDER):
        direction, abduction_dir, flex_dir = _BASE_FRAMES[f]
        abduction = angles[..., f, 0:1]
        turned = np.cos(abduction) * direction + np.sin(abduction) * abduction_dir
        cumulative_flexion = np.cumsum(angles[..., f, 1:], axis=-1)
        point = np.broadcast_to(bases[f], batch + (3,)).copy()
        ids = FINGERS[name]
        joints[..., ids[0], :] = point
        for s, joint_id in enumerate(ids[1:]):
            phi = cumulative_flexion[..., s : s + 1]
            point = point + shape.phalanges[f, s] * (np.cos(phi) * turned + np.sin(phi) * flex_dir)
            joints[..., joint_id, :] = point
    if side == LEFT:
        joints[..., 0] *= -1.0
    elif side != RIGHT:
        raise ValueError(f"side must be LEFT (0) or RIGHT (1), got {side}")
    return joints


def world_joints(shape: HandShape, angles, side: int, wrist_rotation, wrist_position):
    """Place a hand in the world. wrist_rotation: (..., 3, 3) row-vector hand->world; wrist_position: (..., 3)."""
    local = local_joints(shape, angles, side)
    return local @ wrist_rotation + wrist_position[..., None, :]


def flexion_angles(joints):
    """Unsigned bend angle at each finger's 2nd and 3rd joints (PIP/DIP, thumb MCP/IP): (..., 21, 3) -> (..., 5, 2).

    Measured from positions only, so it checks the generated skeleton independently of the generator's angle arrays.
    """
    out = []
    for name in FINGER_ORDER:
        ids = FINGERS[name]
        bones = np.stack([joints[..., ids[k + 1], :] - joints[..., ids[k], :] for k in range(3)], axis=-2)
        bones = _unit(bones)
        cos = np.clip((bones[..., :-1, :] * bones[..., 1:, :]).sum(-1), -1.0, 1.0)
        out.append(np.arccos(cos))
    return np.stack(out, axis=-2)
