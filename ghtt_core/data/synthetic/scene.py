"""Cameras looking at the table: named fixed views, random views and a head-mounted (ego) view.

Camera frames are optical frames (z forward, x right, y down). Extrinsics are homogeneous 4x4 `cam_from_world`
matrices for column vectors (x_cam = M @ x_world), as in HandSequence.
"""

from dataclasses import dataclass

import numpy as np

IMAGE_WIDTH, IMAGE_HEIGHT = 640, 480
FOCAL_LENGTH_PX = 600.0
# The subject sits at y < 0 facing +y; the hands work around this point above the table.
WORKSPACE_CENTRE = np.array([0.0, -0.02, 0.10])
HEAD_POSITION = np.array([0.0, -0.42, 0.50])


def intrinsics(focal=FOCAL_LENGTH_PX, width=IMAGE_WIDTH, height=IMAGE_HEIGHT):
    return np.array([[focal, 0.0, width / 2.0], [0.0, focal, height / 2.0], [0.0, 0.0, 1.0]])


def look_at(eye, target, up=(0.0, 0.0, 1.0)):
    """cam_from_world (..., 4, 4) of optical-frame cameras at `eye` looking at `target` (both (..., 3)).

    `up` maps to image -y.
    """
    eye, target = np.asarray(eye, dtype=np.float64), np.asarray(target, dtype=np.float64)
    up = np.broadcast_to(np.asarray(up, dtype=np.float64), eye.shape)
    forward = target - eye
    forward = forward / np.linalg.norm(forward, axis=-1, keepdims=True)
    right = np.cross(forward, up)
    norm = np.linalg.norm(right, axis=-1, keepdims=True)
    if (norm < 1e-6).any():
        raise ValueError("look_at: the up vector is parallel to the viewing direction")
    right = right / norm
    down = np.cross(forward, right)
    rotation = np.stack([right, down, forward], axis=-2)  # rows: camera axes in world coordinates
    pose = np.zeros(eye.shape[:-1] + (4, 4))
    pose[..., :3, :3] = rotation
    pose[..., :3, 3] = -np.einsum("...ij,...j->...i", rotation, eye)
    pose[..., 3, 3] = 1.0
    return pose


@dataclass(frozen=True)
class NamedView:
    eye: tuple
    target: tuple
    up: tuple = (0.0, 0.0, 1.0)


# Fixed views for cross-view protocols. "front" faces the subject across the table, "left"/"right" look from the
# subject's sides, "top" looks down, "ego" is head-mounted (moves with the head, see ego_extrinsics).
NAMED_VIEWS = {
    "front": NamedView((0.0, 0.70, 0.42), tuple(WORKSPACE_CENTRE)),
    "left": NamedView((-0.72, 0.05, 0.40), tuple(WORKSPACE_CENTRE)),
    "right": NamedView((0.72, 0.05, 0.40), tuple(WORKSPACE_CENTRE)),
    "top": NamedView((0.0, 0.02, 1.05), tuple(WORKSPACE_CENTRE), up=(0.0, -1.0, 0.0)),
    "ego": NamedView(tuple(HEAD_POSITION), (0.0, 0.05, 0.0)),
}


def named_view_extrinsics(name: str):
    if name not in NAMED_VIEWS:
        raise ValueError(f"unknown view {name!r}; known: {sorted(NAMED_VIEWS)}")
    view = NAMED_VIEWS[name]
    return look_at(view.eye, view.target, view.up)


def random_view_extrinsics(rng: np.random.Generator):
    """A static camera on a spherical cap around the workspace, never behind the subject's head."""
    azimuth = rng.uniform(-np.pi * 0.8, np.pi * 0.8) + np.pi / 2  # around +y, i.e. away from the subject
    elevation = rng.uniform(np.radians(20), np.radians(70))
    distance = rng.uniform(0.6, 1.0)
    direction = np.array([np.cos(elevation) * np.cos(azimuth), np.cos(elevation) * np.sin(azimuth), np.sin(elevation)])
    target = WORKSPACE_CENTRE + rng.normal(0.0, 0.03, size=3)
    return look_at(WORKSPACE_CENTRE + distance * direction, target)


def ego_extrinsics(num_frames: int, rng: np.random.Generator, fps: float):
    """(T, 4, 4) head-mounted camera: the head sways slowly and the gaze wanders over the workspace."""
    t = np.arange(num_frames) / fps
    sway = np.stack(
        [amp * np.sin(2 * np.pi * freq * t + phase)
         for amp, freq, phase in zip(rng.uniform(0.01, 0.03, 3), rng.uniform(0.05, 0.25, 3), rng.uniform(0, 6.3, 3))],
        axis=-1,
    )
    gaze = np.stack(
        [amp * np.sin(2 * np.pi * freq * t + phase)
         for amp, freq, phase in zip(rng.uniform(0.02, 0.06, 3), rng.uniform(0.05, 0.2, 3), rng.uniform(0, 6.3, 3))],
        axis=-1,
    )
    target = np.array(NAMED_VIEWS["ego"].target)
    return look_at(HEAD_POSITION + sway, target + gaze)


def project(points_camera, camera_intrinsics):
    """Pinhole projection (..., 3) -> (..., 2) pixels; callers check depth > 0 first."""
    homogeneous = points_camera @ camera_intrinsics.T
    return homogeneous[..., :2] / homogeneous[..., 2:3]


def hands_in_view(joints_camera, camera_intrinsics, min_depth=0.1, margin_px=0.0):
    """(T, 2) bool: every joint of the hand is in front of the camera and its wrist projects inside the image."""
    width, height = 2 * camera_intrinsics[0, 2], 2 * camera_intrinsics[1, 2]
    depth_ok = (joints_camera[..., 2] > min_depth).all(axis=-1)
    pixels = project(joints_camera[..., 0, :], camera_intrinsics)
    inside = (
        (pixels[..., 0] >= -margin_px) & (pixels[..., 0] < width + margin_px)
        & (pixels[..., 1] >= -margin_px) & (pixels[..., 1] < height + margin_px)
    )
    return depth_ok & inside
