"""Shared pieces of the ROS tests: a tiny randomly initialised checkpoint, moving two-hand pose messages, and a helper
that spins a probe node until a condition holds."""

import time

import numpy as np
import rclpy
import torch

from ghtt_core import geometry
from ghtt_core.action_block import ActionBlock
from ghtt_core.checkpoint import LabelEmbeddings, save_checkpoint
from ghtt_core.config import ActionBlockConfig, FlattenedConfig, ModelConfig, PoseBlockConfig, TransformerConfig
from ghtt_core.pose_block import PoseBlock
from ghtt_core.skeleton import PALM_TEMPLATES
from ghtt_core.taxonomy import ActionLabel, Taxonomy
from ghtt_ros.convert import TwoHandArrays, two_hand_pose_to_msg

TINY = TransformerConfig(d_model=32, n_heads=2, d_ff=64, n_enc_layers=1, n_dec_layers=1)
TEXT_DIM = 8
TAXONOMY = Taxonomy(
    actions=(ActionLabel("grab cup", "grab", "cup"), ActionLabel("open jar", "open", "jar"),
             ActionLabel("pour cup", "pour", "cup")),
    objects=("cup", "jar"),
)
FRAME_PERIOD_NS = 33_333_333


def write_tiny_checkpoint(path, seed=0):
    """A full (P-Block + A-Block) checkpoint with tiny random weights: fast to load, real model code paths."""
    torch.manual_seed(seed)
    config = ModelConfig(pose=PoseBlockConfig(transformer=TINY),
                         action=ActionBlockConfig(transformer=TINY, text_dim=TEXT_DIM),
                         flattened=FlattenedConfig(transformer=TINY, text_dim=TEXT_DIM))
    embeddings = LabelEmbeddings("random-test",
                                 torch.nn.functional.normalize(torch.randn(len(TAXONOMY.actions), TEXT_DIM), dim=-1),
                                 torch.nn.functional.normalize(torch.randn(len(TAXONOMY.objects), TEXT_DIM), dim=-1))
    save_checkpoint(path, config, PoseBlock(config.pose).eval(), ActionBlock(config.action).eval(), TAXONOMY,
                    embeddings)
    return path


def moving_hands(frames, seed=0):
    """(frames, 2, 21, 3) float32 metres in front of a camera: palms with straight fingers, slowly moving."""
    rng = np.random.default_rng(seed)
    palms = PALM_TEMPLATES  # (2, 5, 3)
    hands = np.zeros((2, 21, 3))
    for finger, mcp in enumerate((1, 2, 3, 4)):
        direction = palms[:, mcp + 0] / np.linalg.norm(palms[:, mcp + 0], axis=-1, keepdims=True)
        first = 5 + 4 * finger
        for step in range(4):
            hands[:, first + step] = palms[:, mcp] + direction * 0.025 * step
    hands[:, 2:5] = palms[:, 1:2] * 0.5 + np.linspace(0, 0.05, 3)[None, :, None]
    hands[:, 1] = palms[:, 1] * 0.3
    rates = torch.as_tensor(rng.normal(0, 0.03, (2, 3)))
    start = torch.as_tensor(rng.normal(0, 1, (2, 3)))
    offset = np.array([[-0.15, 0.0, 0.5], [0.15, 0.0, 0.5]])
    velocity = rng.normal(0, 0.004, (2, 3))
    poses = []
    for t in range(frames):
        rotation = geometry.axis_angle_to_matrix(start + rates * t).numpy()  # (2, 3, 3)
        poses.append(np.einsum("hjc,hcd->hjd", hands, rotation) + offset[:, None] + velocity[:, None] * t)
    return np.asarray(poses, np.float32)


def pose_messages(frames, start_ns=1_000_000_000, frame_id="camera_optical", seed=0):
    joints = moving_hands(frames, seed)
    return [
        two_hand_pose_to_msg(TwoHandArrays(stamp_ns=start_ns + i * FRAME_PERIOD_NS, frame_id=frame_id,
                                           joints=joints[i], presence=np.array([True, True]),
                                           confidence=np.array([0.9, 0.8], np.float32)))
        for i in range(frames)
    ]


def spin_until(node, condition, timeout_s, executor=None):
    """Spin `node` (or `executor`) until condition() is true; returns its final value."""
    deadline = time.monotonic() + timeout_s
    while not condition() and time.monotonic() < deadline:
        if executor is None:
            rclpy.spin_once(node, timeout_sec=0.05)
        else:
            executor.spin_once(timeout_sec=0.05)
    return condition()
