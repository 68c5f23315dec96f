"""Simple motion-prediction baselines with the model's output layout (ghtt_core.inference.MotionForecast).

Input: an observation joints (..., T_obs, 2, 21, 3) metres, presence (..., T_obs, 2), frame_valid (..., T_obs).
Output: joints (..., 1, T, 2, 21, 3) float32 metres (one deterministic sample), hand_present (..., 2); hands that are
not predicted are NaN. For one observation (T_obs, 2, 21, 3) that is positions (1, T, 2, 21, 3) and hand_present (2,).
As for the model, a hand is predicted when it was seen within `end_tolerance_frames` of the last observed frame, and
future frame i lies i + 1 frame periods after the last observed frame. A hand last seen at frame b < T_obs - 1 is
extrapolated from b, so its future frame i is T_obs - b + i frame periods after its last sighting.
"""

from __future__ import annotations

import torch

from ghtt_core.inference import DEFAULT_END_TOLERANCE_FRAMES, MotionForecast
from ghtt_core.representation import _last_present_index
from ghtt_core.skeleton import NUM_HANDS, NUM_JOINTS


def _check_observation(joints, presence, frame_valid, horizon_frames):
    joints = torch.as_tensor(joints)
    if joints.dim() < 4 or tuple(joints.shape[-3:]) != (NUM_HANDS, NUM_JOINTS, 3):
        raise ValueError(f"joints must be (..., T_obs, 2, 21, 3), got {tuple(joints.shape)}")
    presence = torch.as_tensor(presence)
    if presence.dtype != torch.bool or presence.shape != joints.shape[:-2]:
        raise ValueError(f"presence must be bool {tuple(joints.shape[:-2])}, "
                         f"got {presence.dtype} {tuple(presence.shape)}")
    if frame_valid is not None:
        frame_valid = torch.as_tensor(frame_valid)
        if frame_valid.dtype != torch.bool or frame_valid.shape != joints.shape[:-3]:
            raise ValueError(f"frame_valid must be bool {tuple(joints.shape[:-3])}, got {frame_valid.dtype} "
                             f"{tuple(frame_valid.shape)}")
        presence = presence & frame_valid.unsqueeze(-1)
    if horizon_frames < 1:
        raise ValueError(f"horizon_frames must be >= 1, got {horizon_frames}")
    return joints.to(torch.float64), presence


def _frame_of_each_hand(joints, frame_index):
    """joints (..., T, 2, 21, 3), frame_index (..., 2) -> (..., 2, 21, 3)."""
    index = frame_index[..., None, :, None, None].expand(*frame_index.shape[:-1], 1, NUM_HANDS, NUM_JOINTS, 3)
    return joints.gather(-4, index).squeeze(-4)


def _last_sighting(presence, end_tolerance_frames):
    """(..., T, 2) -> last present frame (..., 2) and which hands are predicted (..., 2)."""
    last = _last_present_index(presence)
    num_frames = presence.shape[-2]
    predicted = presence.any(dim=-2) & (last >= num_frames - 1 - end_tolerance_frames)
    return last, predicted


def _forecast(future, predicted) -> MotionForecast:
    """future (..., T, 2, 21, 3) -> MotionForecast with one sample, NaN for hands not predicted."""
    future = torch.where(predicted[..., None, :, None, None], future, torch.full_like(future, float("nan")))
    return MotionForecast(joints=future.unsqueeze(-5).float(), hand_present=predicted)


def zero_velocity(joints, presence, frame_valid=None, horizon_frames: int = 96,
                  end_tolerance_frames: int = DEFAULT_END_TOLERANCE_FRAMES) -> MotionForecast:
    """Every future frame repeats each hand's last observed pose."""
    joints, presence = _check_observation(joints, presence, frame_valid, horizon_frames)
    last, predicted = _last_sighting(presence, end_tolerance_frames)
    held = _frame_of_each_hand(joints, last)
    return _forecast(held.unsqueeze(-4).expand(*held.shape[:-3], horizon_frames, *held.shape[-3:]), predicted)


def constant_velocity(joints, presence, frame_valid=None, horizon_frames: int = 96, damping: float = 1.0,
                      end_tolerance_frames: int = DEFAULT_END_TOLERANCE_FRAMES) -> MotionForecast:
    """Each joint keeps moving with its last observed per-frame velocity v = X[b] - X[b-1] (b = last sighting).

    With damping d in [0, 1], step j (j = 1, 2, ...) after b moves by v * d^(j-1), so k steps travel
    v * (1 - d^k) / (1 - d) (v * k for d = 1). A hand not seen at b - 1 has no velocity and is held still.
    """
    if not 0.0 <= damping <= 1.0:
        raise ValueError(f"damping must be in [0, 1], got {damping}")
    joints, presence = _check_observation(joints, presence, frame_valid, horizon_frames)
    last, predicted = _last_sighting(presence, end_tolerance_frames)
    held = _frame_of_each_hand(joints, last)
    previous_index = (last - 1).clamp_min(0)
    has_velocity = (last >= 1) & presence.gather(-2, previous_index.unsqueeze(-2)).squeeze(-2)
    velocity = torch.where(has_velocity[..., None, None], held - _frame_of_each_hand(joints, previous_index),
                           torch.zeros_like(held))  # (..., 2, 21, 3)

    num_observed = presence.shape[-2]
    steps = (num_observed - 1 - last).unsqueeze(-2) + torch.arange(1, horizon_frames + 1).unsqueeze(-1)  # (..., T, 2)
    steps = steps.to(torch.float64)
    travelled = steps if damping == 1.0 else (1.0 - damping**steps) / (1.0 - damping)
    future = held.unsqueeze(-4) + velocity.unsqueeze(-4) * travelled[..., None, None]
    return _forecast(future, predicted)
