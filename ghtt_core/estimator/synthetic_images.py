"""Tiny synthetic image set for the ResNet estimator: two drawn hand skeletons over a background whose colour stands
for the object class. Targets are exact (the skeletons are rendered by the virtual camera), so a small set can be
overfit; it exercises the training code, not real-image accuracy."""

import numpy as np
import torch

from ghtt_core.estimator.camera import project
from ghtt_core.skeleton import DRAW_BONES, FINGERS, LEFT, NUM_HANDS, NUM_JOINTS, PALM_TEMPLATES, RIGHT

_PHALANX_LENGTHS_M = (0.040, 0.025, 0.020)
_HAND_COLOURS = {LEFT: (255, 80, 40), RIGHT: (40, 120, 255)}


def _rotation(rng, max_angle):
    axis = rng.normal(size=3)
    axis /= np.linalg.norm(axis)
    angle = rng.uniform(-max_angle, max_angle)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * k @ k


def random_hand(rng, side):
    """(21, 3) metres, wrist at the origin, in the palm-template axes (+y towards the fingers)."""
    joints = np.zeros((NUM_JOINTS, 3))
    palm = PALM_TEMPLATES[side]
    for joint, point in zip((0, 5, 9, 13, 17), palm):
        joints[joint] = point
    for finger in ("index", "middle", "ring", "pinky"):
        base = FINGERS[finger][0]
        direction = joints[base] / np.linalg.norm(joints[base])
        curl = rng.uniform(0.0, 0.5)
        for phalanx, joint in enumerate(FINGERS[finger][1:]):
            # Curl bends each phalanx further towards the palm side (-z).
            bend = curl * (phalanx + 1)
            step = np.cos(bend) * direction + np.array([0.0, 0.0, -np.sin(bend)])
            joints[joint] = joints[joint - 1] + _PHALANX_LENGTHS_M[phalanx] * step
    outward = np.sign(palm[1, 0])  # thumb is on the index side
    thumb_dir = np.array([outward * 0.8, 0.6, -0.1])
    thumb_dir /= np.linalg.norm(thumb_dir)
    joints[1] = 0.25 * palm[1]
    for joint, length in zip((2, 3, 4), (0.035, 0.030, 0.025)):
        joints[joint] = joints[joint - 1] + length * thumb_dir
    return joints


def render_skeleton_sample(rng, config, num_objects):
    """One image and its exact virtual-camera targets.

    Returns (image uint8 (H, W, 3), uv (2, 21, 2) px, depth (2, 21) m, presence (2,), object_index).
    """
    import cv2

    camera = config.virtual_camera
    object_index = int(rng.integers(num_objects))
    # A fixed colour per object class: the "object" the object head has to recognise.
    background = np.random.default_rng(1000 + object_index).integers(30, 230, 3).astype(np.uint8)
    image = np.empty((config.image_height, config.image_width, 3), np.uint8)
    image[:] = background
    uv = np.zeros((NUM_HANDS, NUM_JOINTS, 2), np.float32)
    depth = np.zeros((NUM_HANDS, NUM_JOINTS), np.float32)
    # Image y points down: turn the template's +y (towards the fingers) upwards.
    upright = np.diag([1.0, -1.0, -1.0])
    for side in (LEFT, RIGHT):
        offset = np.array([(-0.09 if side == LEFT else 0.09) + rng.uniform(-0.03, 0.03),
                           rng.uniform(0.02, 0.08), rng.uniform(0.45, 0.6)])
        joints = random_hand(rng, side) @ upright.T @ _rotation(rng, 0.4).T + offset
        pixels = project(joints, camera)
        uv[side], depth[side] = pixels, joints[:, 2]
        for a, b in DRAW_BONES:
            cv2.line(image, tuple(int(c) for c in pixels[a]), tuple(int(c) for c in pixels[b]),
                     _HAND_COLOURS[side], 2, cv2.LINE_AA)
    return image, uv, depth, np.ones(NUM_HANDS, bool), object_index


class SkeletonImageDataset(torch.utils.data.Dataset):
    """`size` rendered samples, fixed by `seed`, as training batches for resnet_training."""

    def __init__(self, size, config, num_objects=4, seed=0):
        from ghtt_core.estimator.resnet_estimator import preprocess_images

        rng = np.random.default_rng(seed)
        samples = [render_skeleton_sample(rng, config, num_objects) for _ in range(size)]
        self.images = preprocess_images([s[0] for s in samples], config)
        self.uv = torch.from_numpy(np.stack([s[1] for s in samples]))
        self.depth = torch.from_numpy(np.stack([s[2] for s in samples]))
        self.presence = torch.from_numpy(np.stack([s[3] for s in samples]))
        self.object_index = torch.tensor([s[4] for s in samples])

    def __len__(self):
        return len(self.images)

    def __getitem__(self, index):
        return {
            "image": self.images[index],
            "uv": self.uv[index],
            "depth": self.depth[index],
            "presence": self.presence[index],
            "object_index": self.object_index[index],
        }
