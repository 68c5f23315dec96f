"""Small synthetic two-hand motion batches for the network tests, built through ghtt_core.representation."""

from dataclasses import dataclass

import torch

from ghtt_core import geometry
from ghtt_core.config import TransformerConfig
from ghtt_core.representation import encode_features, local2base, local2base_mask
from ghtt_core.skeleton import FINGERS, PALM_TEMPLATES

TINY = TransformerConfig(d_model=32, n_heads=2, d_ff=64, n_enc_layers=1, n_dec_layers=1)


def canonical_hands() -> torch.Tensor:
    """(2, 21, 3) metres: palm template MCPs, fingers extended along the wrist->MCP direction."""
    palms = torch.as_tensor(PALM_TEMPLATES, dtype=torch.float32)
    hands = torch.zeros(2, 21, 3)
    hands[:, 0] = palms[:, 0]
    for finger_index, joints in enumerate(FINGERS.values()):
        # thumb base at half the index MCP, the other fingers at their template MCP
        base = palms[:, 1] * 0.5 if finger_index == 0 else palms[:, finger_index]
        direction = base / base.norm(dim=-1, keepdim=True)
        for step, joint in enumerate(joints):
            hands[:, joint] = base + direction * 0.025 * step
    return hands


def moving_hands(batch: int, frames: int, seed: int = 0) -> torch.Tensor:
    """(B, T, 2, 21, 3): each hand rotates and translates at a constant random rate."""
    generator = torch.Generator().manual_seed(seed)
    hands = canonical_hands()
    axis_rate = torch.randn(batch, 1, 2, 3, generator=generator) * 0.05
    start_axis = torch.randn(batch, 1, 2, 3, generator=generator)
    velocity = torch.randn(batch, 1, 2, 3, generator=generator) * 0.01
    offset = torch.tensor([[-0.15, 0.0, 0.5], [0.15, 0.0, 0.5]])
    time = torch.arange(frames, dtype=torch.float32).view(1, frames, 1, 1)
    R = geometry.axis_angle_to_matrix(start_axis + axis_rate * time)  # (B, T, 2, 3, 3)
    t = offset + velocity * time
    return hands @ R + t.unsqueeze(-2)


@dataclass
class PoseBatch:
    features: torch.Tensor  # (B, 2N, 153)
    feature_mask: torch.Tensor
    frame_valid: torch.Tensor  # (B, 2N)
    future_local2base: torch.Tensor  # (B, N, 18), base = frame N-1
    future_local2base_mask: torch.Tensor

    def observed(self, clip_len=16):
        return self.features[:, :clip_len], self.feature_mask[:, :clip_len], self.frame_valid[:, :clip_len]

    def future(self, clip_len=16):
        return self.features[:, clip_len:], self.feature_mask[:, clip_len:], self.frame_valid[:, clip_len:]


def pose_batch(batch: int = 2, clip_len: int = 16, seed: int = 0, presence=None) -> PoseBatch:
    frames = 2 * clip_len
    joints = moving_hands(batch, frames, seed)
    if presence is None:
        presence = torch.ones(batch, frames, 2, dtype=torch.bool)
    encoded = encode_features(joints, presence)
    base = clip_len - 1
    return PoseBatch(
        features=encoded.features,
        feature_mask=encoded.feature_mask,
        frame_valid=torch.ones(batch, frames, dtype=torch.bool),
        future_local2base=local2base(encoded.R_cam2local, encoded.t_cam2local, base)[:, clip_len:],
        future_local2base_mask=local2base_mask(encoded.presence, base)[:, clip_len:],
    )


def pose_loss_args(batch: PoseBatch, clip_len: int = 16):
    """Keyword arguments of PoseBlock.loss for this batch (observed targets = the clean observed features)."""
    observed, observed_mask, _ = batch.observed(clip_len)
    future, future_mask, future_valid = batch.future(clip_len)
    return dict(
        observed=observed,
        observed_mask=observed_mask,
        future=future,
        future_mask=future_mask,
        future_frame_valid=future_valid,
        future_local2base=batch.future_local2base,
        future_local2base_mask=batch.future_local2base_mask,
    )
