"""RViz / Foxglove markers built from ghtt arrays: hand skeletons, fans of predicted trajectories, action text.

Every builder returns the same marker ids on every call (ADD when there is something to draw, DELETE otherwise), so
markers update in place instead of piling up or blinking.
"""

import numpy as np
from builtin_interfaces.msg import Duration
from geometry_msgs.msg import Point
from std_msgs.msg import ColorRGBA
from visualization_msgs.msg import Marker

from ghtt_core.skeleton import DRAW_BONES, HAND_NAMES

# Left hand blue, right hand orange; refined poses and predictions use the same hue so the eye links them.
HAND_COLOURS = ((0.2, 0.5, 1.0), (1.0, 0.5, 0.1))
TEXT_OFFSET_M = np.array([0.0, -0.12, 0.0])  # above the hands in an optical frame (y points down)


def _colour(side, alpha):
    red, green, blue = HAND_COLOURS[side]
    return ColorRGBA(r=red, g=green, b=blue, a=alpha)


def _points(array):
    return [Point(x=float(x), y=float(y), z=float(z)) for x, y, z in np.asarray(array, dtype=np.float64)]


def _marker(header, namespace, marker_id, marker_type, lifetime_s, scale, colour):
    marker = Marker(header=header, ns=namespace, id=marker_id, type=marker_type, action=Marker.ADD)
    marker.pose.orientation.w = 1.0
    marker.scale.x = marker.scale.y = marker.scale.z = float(scale)
    marker.color = colour
    marker.lifetime = Duration(sec=int(lifetime_s), nanosec=int((lifetime_s % 1) * 1e9))
    return marker


def _deleted(header, namespace, marker_id):
    return Marker(header=header, ns=namespace, id=marker_id, action=Marker.DELETE)


def hand_markers(header, joints, presence, namespace, lifetime_s, line_width_m, alpha=1.0):
    """Per hand: a SPHERE_LIST of its joints (id 2*side) and a LINE_LIST of its bones (id 2*side + 1).
    joints (2, 21, 3) metres in header.frame_id; presence (2,)."""
    markers = []
    for side, name in enumerate(HAND_NAMES):
        ids = (2 * side, 2 * side + 1)
        if not presence[side]:
            markers += [_deleted(header, namespace, marker_id) for marker_id in ids]
            continue
        spheres = _marker(header, namespace, ids[0], Marker.SPHERE_LIST, lifetime_s, 2.5 * line_width_m,
                          _colour(side, alpha))
        spheres.points = _points(joints[side])
        bones = _marker(header, namespace, ids[1], Marker.LINE_LIST, lifetime_s, line_width_m, _colour(side, alpha))
        bones.points = _points(joints[side][np.array(DRAW_BONES).reshape(-1)])
        markers += [spheres, bones]
    return markers


def prediction_markers(header, positions, mean, hand_present, joint, max_samples, lifetime_s, line_width_m):
    """Fans of predicted trajectories of one joint: per hand, LINE_STRIPs of the first max_samples samples
    (namespace prediction_samples, id side * max_samples + k, translucent) and of the sample mean (namespace
    prediction_mean, id side). positions (K, T, 2, J, 3), mean (T, 2, J, 3)."""
    if not 0 <= joint < positions.shape[3]:
        raise ValueError(f"joint {joint} is not among the {positions.shape[3]} joints of the prediction")
    markers = []
    for side in range(2):
        for k in range(max_samples):
            marker_id = side * max_samples + k
            if hand_present[side] and k < len(positions):
                strip = _marker(header, "prediction_samples", marker_id, Marker.LINE_STRIP, lifetime_s,
                                0.5 * line_width_m, _colour(side, 0.35))
                strip.points = _points(positions[k, :, side, joint])
                markers.append(strip)
            else:
                markers.append(_deleted(header, "prediction_samples", marker_id))
        if hand_present[side]:
            strip = _marker(header, "prediction_mean", side, Marker.LINE_STRIP, lifetime_s, 1.5 * line_width_m,
                            _colour(side, 1.0))
            strip.points = _points(mean[:, side, joint])
            markers.append(strip)
        else:
            markers.append(_deleted(header, "prediction_mean", side))
    return markers


def action_text_marker(header, hypotheses, anchor, lifetime_s, text_height_m=0.03):
    """TEXT_VIEW_FACING with the top hypotheses ("open jar 0.72") above `anchor` (3,) metres."""
    marker = _marker(header, "action", 0, Marker.TEXT_VIEW_FACING, lifetime_s, text_height_m,
                     ColorRGBA(r=1.0, g=1.0, b=1.0, a=1.0))
    marker.pose.position = _points([np.asarray(anchor) + TEXT_OFFSET_M])[0]
    marker.text = "\n".join(f"{h.label} {h.score:.2f}" for h in hypotheses) or "(no action)"
    return marker
