"""Drawing estimated hands over their images: the detected 2D skeleton as lines and the metric 3D joints projected
back as dots, so a wrongly placed hand (dots off the lines) or a swapped side (wrong colour) is visible at a glance."""

import numpy as np

from ghtt_core.estimator.camera import project
from ghtt_core.skeleton import DRAW_BONES, HAND_NAMES, LEFT, RIGHT

# RGB: left hand orange, right hand blue.
SIDE_COLOURS = {LEFT: (255, 140, 0), RIGHT: (30, 144, 255)}


def draw_hands(image_rgb, frame_hands):
    """A copy of the image with both hands drawn; line width scales with the image."""
    import cv2

    canvas = np.ascontiguousarray(image_rgb).copy()
    thickness = max(1, round(max(canvas.shape[:2]) / 400))
    for side in (LEFT, RIGHT):
        if not frame_hands.presence[side]:
            continue
        colour = SIDE_COLOURS[side]
        keypoints = frame_hands.keypoints_2d[side]
        for a, b in DRAW_BONES:
            cv2.line(canvas, _point(keypoints[a]), _point(keypoints[b]), colour, thickness, cv2.LINE_AA)
        for pixel in project(frame_hands.joints[side], frame_hands.intrinsics):
            cv2.circle(canvas, _point(pixel), thickness + 1, (255, 255, 255), -1, cv2.LINE_AA)
        wrist_depth = frame_hands.joints[side, 0, 2]
        label = f"{HAND_NAMES[side]} {frame_hands.confidence[side]:.2f} z={wrist_depth:.2f}m"
        origin = _point(keypoints.min(axis=0) - np.array([0.0, 6.0 * thickness]))
        cv2.putText(canvas, label, origin, cv2.FONT_HERSHEY_SIMPLEX, 0.4 * thickness, colour, thickness, cv2.LINE_AA)
    return canvas


def contact_sheet(images, columns=2, width=640):
    """Tile RGB images (resized to `width` each) into one image, row-major."""
    import cv2

    if not images:
        raise ValueError("contact_sheet needs at least one image")
    tiles = [cv2.resize(img, (width, round(img.shape[0] * width / img.shape[1])), interpolation=cv2.INTER_AREA)
             for img in images]
    height = max(t.shape[0] for t in tiles)
    tiles = [np.pad(t, ((0, height - t.shape[0]), (0, 0), (0, 0))) for t in tiles]
    tiles += [np.zeros_like(tiles[0])] * (-len(tiles) % columns)
    rows = [np.concatenate(tiles[i:i + columns], axis=1) for i in range(0, len(tiles), columns)]
    return np.concatenate(rows, axis=0)


def _point(xy):
    return int(round(float(xy[0]))), int(round(float(xy[1])))
