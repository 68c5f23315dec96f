"""Two-hand skeleton: joint order, kinematic links, palm joints and the canonical palm template.

Joint order is the H2O / MediaPipe order (see docs/conventions.md). Joint 1 (thumb CMC) keeps its slot but is never
used, because Assembly101 does not annotate it.
"""

import numpy as np

NUM_JOINTS = 21
NUM_HANDS = 2
LEFT, RIGHT = 0, 1
HAND_NAMES = ("left", "right")

# Network-internal unit for trajectory translations: metres x HAND_SCALE (decimetres), as in the authors' code.
HAND_SCALE = 10.0

JOINT_NAMES = (
    "wrist",
    "thumb_cmc", "thumb_mcp", "thumb_ip", "thumb_tip",
    "index_mcp", "index_pip", "index_dip", "index_tip",
    "middle_mcp", "middle_pip", "middle_dip", "middle_tip",
    "ring_mcp", "ring_pip", "ring_dip", "ring_tip",
    "pinky_mcp", "pinky_pip", "pinky_dip", "pinky_tip",
)
UNUSED_JOINT = 1
USED_JOINTS = tuple(j for j in range(NUM_JOINTS) if j != UNUSED_JOINT)
# Joints scored by MPJPE-RA: the wrist is excluded because root alignment makes it zero.
RA_JOINTS = tuple(range(2, NUM_JOINTS))
PALM_JOINTS = (0, 5, 9, 13, 17)
MCP_JOINTS = (5, 9, 13, 17)

FINGERS = {
    "thumb": (1, 2, 3, 4),
    "index": (5, 6, 7, 8),
    "middle": (9, 10, 11, 12),
    "ring": (13, 14, 15, 16),
    "pinky": (17, 18, 19, 20),
}

# Parent of each joint in the kinematic tree (wrist is the root).
PARENTS = (-1, 0, 1, 2, 3, 0, 5, 6, 7, 0, 9, 10, 11, 0, 13, 14, 15, 0, 17, 18, 19)
# Bones used for drawing; the thumb is drawn wrist -> MCP because the CMC slot is unused.
DRAW_BONES = tuple(
    [(0, 2), (2, 3), (3, 4)]
    + [(a, b) for finger in ("index", "middle", "ring", "pinky")
       for a, b in zip((0,) + FINGERS[finger][:-1], FINGERS[finger])]
)

# Canonical palm template of an average adult RIGHT hand (metres), wrist at the origin, rows = PALM_JOINTS.
# Local axes: +y from the wrist towards the middle-finger MCP, +x towards the index side, +z = x cross y (out of the
# palm of an anatomical right hand). Mean wrist->MCP length is 0.080 m. The left template mirrors x. Our own values:
# MANO files are not available here.
_RIGHT_PALM_TEMPLATE = np.array(
    [
        [0.000, 0.000, 0.000],
        [0.025, 0.080, 0.003],
        [0.003, 0.083, 0.000],
        [-0.016, 0.077, -0.002],
        [-0.032, 0.068, -0.005],
    ]
)
_MIRROR_X = np.array([-1.0, 1.0, 1.0])
PALM_TEMPLATES = np.stack([_RIGHT_PALM_TEMPLATE * _MIRROR_X, _RIGHT_PALM_TEMPLATE])  # (2, 5, 3), [left, right]


def palm_size(joints):
    """Mean wrist->MCP distance for the index, middle, ring and pinky fingers. joints: (..., 21, 3) -> (...)."""
    mcps = joints[..., list(MCP_JOINTS), :]
    wrist = joints[..., :1, :]
    diff = mcps - wrist
    if isinstance(joints, np.ndarray):
        return np.linalg.norm(diff, axis=-1).mean(axis=-1)
    return diff.norm(dim=-1).mean(dim=-1)
