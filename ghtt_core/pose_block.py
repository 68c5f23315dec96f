"""P-Block (method-notes section 3): a 16-frame clip of two-hand features <-> a mid-level latent.

The encoder refines the observed frames (shared output head on its frame tokens) and summarises the clip into
(mu, logvar); the decoder turns a mid-level latent (plus, optionally, the encoder's frame tokens) into the next clip.

Feature layout (conventions.md): [0:63] left joints, [63:126] right joints, [126:135] left velocity,
[135:144] right velocity, [144:153] left->right, each velocity/transform = 6D rotation + translation.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ghtt_core.config import PoseBlockConfig
from ghtt_core.geometry import matrix_to_rotation_6d
from ghtt_core.nn import (
    MLP,
    TransformerVAE,
    draw_latents,
    kl_to_standard_normal,
    masked_l1,
    reparameterise,
    use_skip_memory,
)
from ghtt_core.representation import (
    FEATURE_DIM,
    JOINT_SLICES,
    LEFT_TO_RIGHT_SLICE,
    LOCAL2BASE_DIM,
    VELOCITY_SLICES,
    accumulate_trajectory,
)
from ghtt_core.skeleton import NUM_HANDS, UNUSED_JOINT

JOINTS_DIM = JOINT_SLICES[-1].stop  # 126
VELOCITY_SLICE = slice(VELOCITY_SLICES[0].start, VELOCITY_SLICES[-1].stop)  # both hands, 18


def unused_joint_slice(hand: int) -> slice:
    start = JOINT_SLICES[hand].start + UNUSED_JOINT * 3
    return slice(start, start + 3)


def hand_presence_from_mask(feature_mask: torch.Tensor) -> torch.Tensor:
    """(..., 153) bool -> (..., 2) bool: a hand counts as present when any of its joint slots is valid."""
    return torch.stack([feature_mask[..., JOINT_SLICES[h]].any(dim=-1) for h in range(NUM_HANDS)], dim=-1)


def check_features(features: torch.Tensor, feature_mask: torch.Tensor, frame_valid: torch.Tensor | None = None):
    if features.dim() < 2 or features.shape[-1] != FEATURE_DIM:
        raise ValueError(f"features must be (..., T, {FEATURE_DIM}), got {tuple(features.shape)}")
    if feature_mask.dtype != torch.bool or feature_mask.shape != features.shape:
        raise ValueError(
            f"feature_mask must be bool with the features' shape {tuple(features.shape)}, "
            f"got {feature_mask.dtype} {tuple(feature_mask.shape)}"
        )
    if frame_valid is not None and (frame_valid.dtype != torch.bool or frame_valid.shape != features.shape[:-1]):
        raise ValueError(
            f"frame_valid must be bool of shape {tuple(features.shape[:-1])}, "
            f"got {frame_valid.dtype} {tuple(frame_valid.shape)}"
        )


class FrameFeatureEmbedding(nn.Module):
    """153-d frame feature -> one d_model token: joints (126 -> d/2), velocities (18 -> d/4), left->right (9 -> d/4).

    Slots that the feature mask marks invalid are zeroed, and the joint-1 slots get a learned placeholder. Because a
    zeroed absent hand would otherwise look like a real hand with all-zero values, a learned per-hand "absent"
    embedding is added to the token of every frame where that hand is absent.
    """

    def __init__(self, d_model: int):
        super().__init__()
        joints_width = d_model // 2
        velocity_width = d_model // 4
        self.joints = nn.Linear(JOINTS_DIM, joints_width)
        self.velocities = nn.Linear(VELOCITY_SLICE.stop - VELOCITY_SLICE.start, velocity_width)
        self.left_to_right = nn.Linear(
            LEFT_TO_RIGHT_SLICE.stop - LEFT_TO_RIGHT_SLICE.start, d_model - joints_width - velocity_width
        )
        self.unused_joint_placeholder = nn.Parameter(torch.randn(NUM_HANDS, 3))
        self.absent_hand = nn.Parameter(torch.randn(NUM_HANDS, d_model))

    def fill_unused_joint(self, features: torch.Tensor) -> torch.Tensor:
        """Replace the joint-1 slots of both hands by the learned placeholder (out of place)."""
        features = features.clone()
        for hand in range(NUM_HANDS):
            features[..., unused_joint_slice(hand)] = self.unused_joint_placeholder[hand].to(features.dtype)
        return features

    def forward(self, features: torch.Tensor, feature_mask: torch.Tensor) -> torch.Tensor:
        check_features(features, feature_mask)
        x = self.fill_unused_joint(torch.where(feature_mask, features, torch.zeros_like(features)))
        tokens = torch.cat(
            [
                self.joints(x[..., :JOINTS_DIM]),
                self.velocities(x[..., VELOCITY_SLICE]),
                self.left_to_right(x[..., LEFT_TO_RIGHT_SLICE]),
            ],
            dim=-1,
        )
        absent = (~hand_presence_from_mask(feature_mask)).to(tokens.dtype)
        return tokens + absent @ self.absent_hand


IDENTITY_6D = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
ROTATION_6D_SLICES = tuple(slice(s.start, s.start + 6) for s in (*VELOCITY_SLICES, LEFT_TO_RIGHT_SLICE))


class FeatureHead(MLP):
    """The shared output head d -> 153 (MLP d -> d -> d -> 153).

    Its 6D rotation outputs start at the identity (zero weights, identity bias). Per-frame velocities are rotations of
    a degree or so; from a random start, training on the synthetic benchmark settled where some predicted 6D rows
    pointed backwards, which Gram-Schmidt turns into 180-degree flips at a small L1 cost.
    """

    def __init__(self, d_model: int):
        super().__init__(d_model, (d_model, d_model), FEATURE_DIM)
        output = self[-1]
        with torch.no_grad():
            for rotation_slice in ROTATION_6D_SLICES:
                output.weight[rotation_slice] = 0.0
                output.bias[rotation_slice] = torch.tensor(IDENTITY_6D)


def trajectory_from_features(features: torch.Tensor) -> torch.Tensor:
    """Accumulate the per-frame velocities of (..., T, 153) into local->base transforms (..., T, 18) (eq. 3).

    The first frame's velocity maps onto the base frame (the frame just before the sequence).
    """
    per_hand = features[..., VELOCITY_SLICE].unflatten(-1, (NUM_HANDS, 9)).movedim(-2, -3)  # (..., 2, T, 9)
    rotation, translation = accumulate_trajectory(per_hand[..., :6], per_hand[..., 6:])
    trajectory = torch.cat([matrix_to_rotation_6d(rotation), translation], dim=-1)  # (..., 2, T, 9)
    return trajectory.movedim(-3, -2).flatten(-2)


def check_local2base(local2base, mask, frames_shape):
    expected = (*frames_shape, LOCAL2BASE_DIM)
    if local2base.shape != expected:
        raise ValueError(f"local2base must be {expected}, got {tuple(local2base.shape)}")
    if mask.shape != expected or mask.dtype != torch.bool:
        raise ValueError(f"local2base mask must be bool {expected}, got {mask.dtype} {tuple(mask.shape)}")


def hand_loss_terms(
    refined, observed, observed_mask, predicted, future, future_mask, future_local2base, future_local2base_mask
) -> dict[str, torch.Tensor]:
    """The three hand terms of eq. 1-2 as masked mean L1: refinement, prediction, accumulated trajectory."""
    return {
        "obs": masked_l1(refined, observed, observed_mask),
        "pred": masked_l1(predicted, future, future_mask),
        "trj": masked_l1(trajectory_from_features(predicted), future_local2base, future_local2base_mask),
    }


@dataclass
class PoseEncoding:
    mu: torch.Tensor  # (B, d)
    logvar: torch.Tensor  # (B, d)
    tokens: torch.Tensor  # (B, T, d) encoder frame tokens (skip memory)
    refined: torch.Tensor  # (B, T, 153) output head on the frame tokens
    frame_valid: torch.Tensor  # (B, T) bool


@dataclass
class PoseBlockOutput:
    encoding: PoseEncoding
    mid: torch.Tensor  # (B, d) the mid-level latent fed to the decoder
    predicted: torch.Tensor  # (B, N, 153) the next clip
    used_skip: bool


class PoseBlock(nn.Module):
    def __init__(self, cfg: PoseBlockConfig):
        super().__init__()
        self.cfg = cfg
        d = cfg.transformer.d_model
        self.embedding = FrameFeatureEmbedding(d)
        self.vae = TransformerVAE(cfg.transformer)
        self.output_head = FeatureHead(d)

    @property
    def d_model(self) -> int:
        return self.cfg.transformer.d_model

    def encode(self, features, feature_mask, frame_valid) -> PoseEncoding:
        """features/feature_mask (B, T, 153), frame_valid (B, T) -> mu, logvar, frame tokens, refined features."""
        check_features(features, feature_mask, frame_valid)
        if features.shape[1] > self.cfg.clip_len:
            raise ValueError(f"a P-Block clip holds at most {self.cfg.clip_len} frames, got {features.shape[1]}")
        if not frame_valid.any(dim=1).all():
            raise ValueError("every clip needs at least one valid frame")
        encoding = self.vae.encode(self.embedding(features, feature_mask), frame_valid)
        return PoseEncoding(
            mu=encoding.mu,
            logvar=encoding.logvar,
            tokens=encoding.tokens,
            refined=self.output_head(encoding.tokens),
            frame_valid=frame_valid,
        )

    def encode_clips(self, clip_features, clip_feature_mask, clip_frame_valid) -> torch.Tensor:
        """Mid-levels (P-Enc mu) of many clips at once: (B, K, N, 153), ..., (B, K, N) -> (B, K, d).

        Clips without any valid frame (padding) get a zero mid-level; callers mask them by clip validity.
        """
        check_features(clip_features, clip_feature_mask, clip_frame_valid)
        batch, clips = clip_features.shape[:2]
        has_frames = clip_frame_valid.any(dim=-1).flatten()
        mids = clip_features.new_zeros(batch * clips, self.d_model)
        if has_frames.any():
            encoding = self.encode(
                clip_features.flatten(0, 1)[has_frames],
                clip_feature_mask.flatten(0, 1)[has_frames],
                clip_frame_valid.flatten(0, 1)[has_frames],
            )
            mids[has_frames] = encoding.mu
        return mids.unflatten(0, (batch, clips))

    def decode(self, memory: torch.Tensor, memory_valid: torch.Tensor | None = None) -> torch.Tensor:
        """Memory (B, m, d) -> the next clip's features (B, N, 153) from N sinusoidal queries."""
        return self.output_head(self.vae.decode(memory, memory_valid, num_queries=self.cfg.clip_len))

    def decode_mid(self, mid: torch.Tensor) -> torch.Tensor:
        """A single mid-level per item as the whole memory (the P.b path): (..., d) -> (..., N, 153)."""
        flat = mid.reshape(-1, 1, self.d_model)
        return self.decode(flat).reshape(*mid.shape[:-1], self.cfg.clip_len, FEATURE_DIM)

    def decode_with_skip(self, mid: torch.Tensor, tokens: torch.Tensor, frame_valid: torch.Tensor) -> torch.Tensor:
        """Memory [m, e_1..e_N] with the observed-frame mask (training with skip, and the P.a evaluator)."""
        memory = torch.cat([mid.unsqueeze(1), tokens], dim=1)
        memory_valid = torch.cat([frame_valid.new_ones(len(mid), 1), frame_valid], dim=1)
        return self.decode(memory, memory_valid)

    def forward(self, features, feature_mask, frame_valid, use_skip: bool | None = None) -> PoseBlockOutput:
        """Training/eval pass: refine the observed clip and predict the next one.

        use_skip None: a coin flip with skip_prob in training, no skip in eval (method-notes 3.4).
        """
        encoding = self.encode(features, feature_mask, frame_valid)
        mid = reparameterise(encoding.mu, encoding.logvar) if self.training else encoding.mu
        if use_skip is None:
            use_skip = use_skip_memory(self.training, self.cfg.skip_prob, at_test=False)
        predicted = self.decode_with_skip(mid, encoding.tokens, frame_valid) if use_skip else self.decode_mid(mid)
        return PoseBlockOutput(encoding=encoding, mid=mid, predicted=predicted, used_skip=use_skip)

    @torch.no_grad()
    def predict_next_clip(
        self,
        features,
        feature_mask,
        frame_valid,
        num_samples: int = 1,
        temperature: float | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """One P.a step: the next clip (B, S, N, 153) with memory [m, e_1..e_N] (method-notes 5.2).

        Sample 0 decodes mu; the others draw m with std x temperature (default cfg.sample_factor)."""
        temperature = self.cfg.sample_factor if temperature is None else temperature
        encoding = self.encode(features, feature_mask, frame_valid)
        mids = draw_latents(encoding.mu, encoding.logvar, num_samples, temperature, generator)
        predicted = self.decode_with_skip(
            mids.flatten(0, 1),
            encoding.tokens.repeat_interleave(num_samples, 0),
            frame_valid.repeat_interleave(num_samples, 0),
        )
        return predicted.unflatten(0, (len(mids), num_samples))

    def loss(
        self,
        output: PoseBlockOutput,
        observed,
        observed_mask,
        future,
        future_mask,
        future_frame_valid,
        future_local2base,
        future_local2base_mask,
    ) -> dict[str, torch.Tensor]:
        """L_P = lambda_hand (L_obs + L_pred + L_trj) + lambda_kl KL.

        observed/observed_mask (B, N, 153): clean GT of the observed clip; frames invalid in the encoder input count
        nowhere. future/future_mask (B, N, 153), future_frame_valid (B, N); future_local2base (B, N, 18) GT
        local->base (base = last observed frame) with its mask (B, N, 18) (representation.local2base_mask).
        """
        check_features(observed, observed_mask, output.encoding.frame_valid)
        check_features(future, future_mask, future_frame_valid)
        check_local2base(future_local2base, future_local2base_mask, future.shape[:-1])
        terms = hand_loss_terms(
            output.encoding.refined,
            observed,
            observed_mask & output.encoding.frame_valid.unsqueeze(-1),
            output.predicted,
            future,
            future_mask & future_frame_valid.unsqueeze(-1),
            future_local2base,
            future_local2base_mask & future_frame_valid.unsqueeze(-1),
        )
        terms["kl"] = kl_to_standard_normal(output.encoding.mu, output.encoding.logvar)
        terms["total"] = (
            self.cfg.lambda_hand * (terms["obs"] + terms["pred"] + terms["trj"]) + self.cfg.lambda_kl * terms["kl"]
        )
        return terms
