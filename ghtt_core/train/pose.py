"""P-Block training (method-notes sections 3, 7, 10.4, Appendix B).

A sample is an untrimmed 32-frame window (16 observed + the 16 following frames) as produced by
`ghtt_core.data.windows.PoseWindowDataset`: joints (32, 2, 21, 3), presence (32, 2), frame_valid (32,), and, when the
source has them, estimated_joints / estimated_presence of the same layout. Features are computed from joints on the
fly; GT local->base targets use base frame 15 (the last observed slot; observation-length augmentation repeats the last
real observed frame there). Noise is added to the encoder input (observed 16 frames) only; targets stay clean.

Estimator input (`use_estimated_input`): when a window carries estimated poses, the encoder sees them instead of the
ground truth (the targets stay GT), so refinement learns to undo the estimator's errors and not only the synthetic
Gaussian noise. See docs/training.md.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn

from ghtt_core import geometry
from ghtt_core.checkpoint import KIND_POSE, load_checkpoint, save_checkpoint
from ghtt_core.config import ModelConfig
from ghtt_core.pose_block import JOINTS_DIM, PoseBlock
from ghtt_core.representation import (
    LEFT_TO_RIGHT_SLICE,
    VELOCITY_SLICES,
    encode_features,
    local2base,
    local2base_mask,
)
from ghtt_core.train.distributed import init_distributed, shutdown_distributed
from ghtt_core.train.loop import LoopOptions, LoopResult, best_checkpoint_path, run_training
from ghtt_core.train.metrics_log import MetricsLog

STAGE = "pose"


@dataclass
class InputNoise:
    """Encoder-input noise of method-notes section 7 (units of the feature slots)."""

    joints_sigma: float = 0.025  # palm-size units (~2 mm for an 8 cm palm)
    velocity_rotation_sigma: float = math.pi / 144  # radians, about a random axis
    velocity_translation_sigma: float = 0.075  # m x S (7.5 mm)
    left_to_right_rotation_sigma: float = math.pi / 36
    left_to_right_translation_sigma: float = 0.05  # metres

    def __post_init__(self):
        if min(asdict(self).values()) < 0:
            raise ValueError(f"noise sigmas must be >= 0, got {asdict(self)}")


@dataclass
class PoseTrainingOptions:
    loop: LoopOptions
    noise: InputNoise = field(default_factory=InputNoise)
    add_input_noise: bool = True
    use_estimated_input: bool = True


def rotate_6d_randomly(rotation_6d: torch.Tensor, sigma: float) -> torch.Tensor:
    """R <- R_noise @ R with R_noise a rotation by N(0, sigma^2) radians about a uniformly random axis."""
    axis = torch.nn.functional.normalize(torch.randn_like(rotation_6d[..., :3]), dim=-1)
    angle = torch.randn_like(rotation_6d[..., :1]) * sigma
    noise = geometry.axis_angle_to_matrix(axis * angle)
    return geometry.matrix_to_rotation_6d(noise @ geometry.rotation_6d_to_matrix(rotation_6d))


def _perturb_transform(features, transform_slice, rotation_sigma, translation_sigma):
    block = features[..., transform_slice]
    rotation = rotate_6d_randomly(block[..., :6], rotation_sigma)
    translation = block[..., 6:] + torch.randn_like(block[..., 6:]) * translation_sigma
    features[..., transform_slice] = torch.cat([rotation, translation], dim=-1)


def add_input_noise(features: torch.Tensor, noise: InputNoise) -> torch.Tensor:
    """Noisy copy of (..., T, 153) encoder-input features: local joints, both velocities and left->right."""
    noisy = features.clone()
    noisy[..., :JOINTS_DIM] += torch.randn_like(noisy[..., :JOINTS_DIM]) * noise.joints_sigma
    for velocity_slice in VELOCITY_SLICES:
        _perturb_transform(noisy, velocity_slice, noise.velocity_rotation_sigma, noise.velocity_translation_sigma)
    _perturb_transform(
        noisy, LEFT_TO_RIGHT_SLICE, noise.left_to_right_rotation_sigma, noise.left_to_right_translation_sigma
    )
    return noisy


def _check_window_batch(batch: dict, clip_len: int):
    joints = batch.get("joints")
    if joints is None or joints.dim() != 5 or joints.shape[1] != 2 * clip_len:
        shape = None if joints is None else tuple(joints.shape)
        raise ValueError(f"a P-Block batch needs joints (B, {2 * clip_len}, 2, 21, 3), got {shape}")
    for name in ("presence", "frame_valid"):
        if name not in batch:
            raise ValueError(f"a P-Block batch needs {name!r}")


class PoseTrainingStep(nn.Module):
    """forward(batch of 32-frame windows) -> P-Block loss terms (see PoseBlock.loss)."""

    def __init__(self, pose_block: PoseBlock, noise: InputNoise | None, use_estimated_input: bool):
        super().__init__()
        self.pose_block = pose_block
        self.noise = noise
        self.use_estimated_input = use_estimated_input

    def forward(self, batch: dict) -> dict[str, torch.Tensor]:
        n = self.pose_block.cfg.clip_len
        _check_window_batch(batch, n)
        frame_valid = batch["frame_valid"].bool()
        # Geometry in float64 (method-notes 1.4), network in float32. Padded slots repeat real frames, so their
        # geometry is sound; frame_valid masks them in the encoder and the losses.
        truth = encode_features(batch["joints"].double(), batch["presence"].bool())
        truth_features = truth.features.float()
        base = n - 1
        trajectory = local2base(truth.R_cam2local, truth.t_cam2local, base).float()
        trajectory_mask = local2base_mask(truth.presence, base)

        if self.use_estimated_input and "estimated_joints" in batch:
            input_presence = batch["estimated_presence"][:, :n].bool()
            estimate = encode_features(batch["estimated_joints"][:, :n].double(), input_presence)
            inputs, input_mask = estimate.features.float(), estimate.feature_mask
        else:
            input_presence = batch["presence"][:, :n].bool()
            inputs, input_mask = truth_features[:, :n], truth.feature_mask[:, :n]
        if self.training and self.noise is not None:
            inputs = add_input_noise(inputs, self.noise)

        # As at inference, the encoder attends to real frames that show at least one hand. A window without any
        # such frame keeps one (fully masked) frame so the batch stays rectangular, and counts in no loss.
        encoder_valid = frame_valid[:, :n] & input_presence.any(dim=-1)
        empty = ~encoder_valid.any(dim=-1)
        encoder_valid[:, 0] |= empty
        counts = ~empty[:, None, None]
        output = self.pose_block(inputs, input_mask, encoder_valid)
        return self.pose_block.loss(
            output,
            truth_features[:, :n],
            truth.feature_mask[:, :n] & counts,
            truth_features[:, n:],
            truth.feature_mask[:, n:] & counts,
            frame_valid[:, n:] & ~empty[:, None],
            trajectory[:, n:],
            trajectory_mask[:, n:] & counts,
        )


def train_pose(
    model_config: ModelConfig,
    train_dataset,
    val_dataset,
    options: PoseTrainingOptions,
    out_path: str | Path,
    log_path: str | Path | None = None,
    resume_path: str | Path | None = None,
    device: str = "auto",
    provenance: dict | None = None,
    progress: bool = True,
) -> LoopResult:
    """Train a P-Block and write a "pose" checkpoint to out_path (every checkpoint_every steps and at the end), and
    the one of the lowest validation loss so far to loop.best_checkpoint_path(out_path) (when there is validation).

    Runs as one process or, under torchrun, as one DDP rank each. resume_path: a checkpoint written by this
    function; its config and weights replace model_config, and training continues from its step.
    """
    ctx = init_distributed(device)
    try:
        resume = None
        if resume_path is not None:
            stored = load_checkpoint(resume_path)
            if stored.training is None or stored.training.stage != STAGE:
                raise ValueError(f"{resume_path} holds no P-Block training state to resume from")
            model_config, resume = stored.config, stored.training
            pose_block = stored.pose_block
        else:
            torch.manual_seed(options.loop.seed)  # the same initial weights on every rank
            pose_block = PoseBlock(model_config.pose)
        pose_block.to(ctx.device)
        noise = options.noise if options.add_input_noise else None
        step_module = PoseTrainingStep(pose_block, noise, options.use_estimated_input)

        def saver(path):
            return lambda state: save_checkpoint(path, model_config, pose_block, training=state,
                                                 provenance=provenance)

        return run_training(
            step_module,
            train_dataset,
            val_dataset,
            options.loop,
            ctx,
            STAGE,
            saver(out_path),
            MetricsLog(log_path, enabled=ctx.is_main),
            resume=resume,
            run_info={"noise": asdict(options.noise), "add_input_noise": options.add_input_noise,
                      "use_estimated_input": options.use_estimated_input, "kind": KIND_POSE},
            progress=progress,
            save_best=saver(best_checkpoint_path(out_path)),
            resume_source=str(resume_path or ""),
        )
    finally:
        shutdown_distributed(ctx)
