"""Each dataset's joint order, written as the ghtt joint each of its slots holds, and the reordering into ghtt order.

`<DATASET>_TO_GHTT[j]` is the dataset slot that ghtt joint j comes from: `ghtt = joints[..., TO_GHTT, :]`.
H2O needs no table: ghtt adopted the H2O order.
"""

import numpy as np

from ghtt_core.skeleton import JOINT_NAMES


def _finger(name):
    return tuple(f"{name}_{part}" for part in ("mcp", "pip", "dip", "tip"))


# FPHA README: wrist, the five MCPs (the thumb's "MCP" is its CMC), then PIP, DIP, TIP per finger.
FPHA_JOINTS = (
    "wrist", "thumb_cmc", "index_mcp", "middle_mcp", "ring_mcp", "pinky_mcp",
    "thumb_mcp", "thumb_ip", "thumb_tip",
    *_finger("index")[1:], *_finger("middle")[1:], *_finger("ring")[1:], *_finger("pinky")[1:],
)

# AssemblyHands (InterHand2.6M layout) per hand: each finger from tip to base (thumb base = CMC), wrist last.
ASSEMBLYHANDS_JOINTS = (
    "thumb_tip", "thumb_ip", "thumb_mcp", "thumb_cmc",
    *reversed(_finger("index")), *reversed(_finger("middle")), *reversed(_finger("ring")),
    *reversed(_finger("pinky")),
    "wrist",
)

# Assembly101 UmeTrack landmarks: five fingertips, wrist, thumb MCP and IP, MCP/PIP/DIP of the four fingers, and a
# last point that is not a thumb CMC; it fills ghtt's unused slot 1.
ASSEMBLY101_JOINTS = (
    "thumb_tip", "index_tip", "middle_tip", "ring_tip", "pinky_tip",
    "wrist", "thumb_mcp", "thumb_ip",
    *_finger("index")[:3], *_finger("middle")[:3], *_finger("ring")[:3], *_finger("pinky")[:3],
    "thumb_cmc",
)


def order_to_ghtt(source_joint_names):
    """Index array that takes joints in the given source order to ghtt order."""
    missing = set(JOINT_NAMES) - set(source_joint_names)
    if missing or len(source_joint_names) != len(JOINT_NAMES):
        raise ValueError(f"source order must name each of the 21 ghtt joints once; missing {sorted(missing)}")
    return np.array([source_joint_names.index(name) for name in JOINT_NAMES])


FPHA_TO_GHTT = order_to_ghtt(FPHA_JOINTS)
ASSEMBLYHANDS_TO_GHTT = order_to_ghtt(ASSEMBLYHANDS_JOINTS)
ASSEMBLY101_TO_GHTT = order_to_ghtt(ASSEMBLY101_JOINTS)
