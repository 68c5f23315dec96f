"""Grasp synergies: whole-hand postures that fingers move between together, as people do.

Postures are (5, 4) angle arrays in degrees here for readability ([abduction, flexion 1..3] per finger, thumb first)
and radians everywhere else. A grasp is reached from its pre-shape: the hand opens to an aperture that fits the
object, then all joints close along the same synergy.
"""

import numpy as np

from ghtt_core.data.synthetic.kinematics import clip_to_limits

_POSTURES_DEG = {
    # relaxed hand at rest: slight flexion, fingers together
    "relaxed": [[15, 15, 15, 15], [3, 20, 30, 15], [0, 22, 32, 16], [-3, 25, 35, 18], [-6, 28, 38, 20]],
    # flat open hand, used as the pre-shape of every grasp and for pushing or supporting
    "open": [[10, 0, 0, 5], [8, 0, 5, 0], [0, 0, 5, 0], [-8, 0, 5, 0], [-15, 0, 5, 0]],
    "flat": [[5, 0, 0, 0], [2, 0, 0, 0], [0, 0, 0, 0], [-2, 0, 0, 0], [-4, 0, 0, 0]],
    # cylindrical power grasp around a bottle or can
    "power": [[45, 35, 25, 20], [2, 55, 65, 35], [0, 58, 68, 38], [-2, 60, 70, 40], [-4, 62, 72, 42]],
    # spherical grasp of a lid or a jar top: fingers spread around the rim
    "spherical": [[50, 25, 20, 15], [12, 40, 35, 20], [2, 42, 38, 20], [-8, 45, 40, 22], [-18, 48, 42, 25]],
    # fingertip precision grasp (thumb against index and middle)
    "precision": [[55, 25, 20, 15], [5, 45, 40, 20], [0, 45, 42, 22], [-5, 55, 65, 35], [-8, 60, 75, 40]],
    # thumb-index tip pinch of a small part; the other fingers tucked in
    "pinch": [[45, 30, 25, 25], [8, 50, 50, 25], [0, 65, 85, 50], [-3, 70, 90, 55], [-6, 75, 95, 60]],
    # lateral (key) grip: thumb pad against the side of the flexed index
    "lateral": [[5, 10, 25, 15], [0, 55, 70, 40], [0, 65, 85, 50], [-3, 70, 90, 55], [-6, 75, 95, 60]],
    # tripod grip of a spoon or sponge handle
    "tripod": [[40, 25, 20, 15], [5, 40, 35, 15], [0, 45, 40, 20], [-5, 65, 85, 50], [-8, 70, 90, 55]],
    # index finger pointing to press a button, the others curled
    "point": [[20, 30, 30, 20], [0, 5, 5, 5], [0, 70, 90, 55], [-3, 75, 95, 60], [-6, 80, 100, 60]],
    # hook grip on a box lid or a bowl rim
    "hook": [[20, 10, 10, 10], [2, 25, 75, 45], [0, 25, 78, 48], [-2, 28, 80, 50], [-4, 30, 82, 52]],
}

def posture(name: str):
    """(5, 4) radians for a named posture."""
    if name not in _POSTURES_DEG:
        raise ValueError(f"unknown hand posture {name!r}; known: {sorted(_POSTURES_DEG)}")
    return np.radians(np.array(_POSTURES_DEG[name], dtype=np.float64))


def grasp_posture(name: str, closure: float, style):
    """Posture on the synergy from `open` (closure 0) to the full grasp (closure 1), plus a subject's style offset.

    Larger objects stop the fingers earlier, so the caller passes closure < 1 for wide objects.
    """
    if not 0.0 <= closure <= 1.2:
        raise ValueError(f"grasp closure must be in [0, 1.2], got {closure}")
    opened = posture("open")
    return clip_to_limits(opened + closure * (posture(name) - opened) + style)

