"""Forecast calibration, fitted on held-out data after training (`ghtt calibrate`) and stored in the checkpoint.

A forecast is only useful to a planner if it is never worse than holding the last pose and if its spread means what
it says. Three fitted quantities, each defined for any hand motion (docs/inference.md, "Forecast calibration"):

- horizon_gain (F,): per future frame, the factor in [0, 1] on the forecast's displacement from the last observed pose
  (`hold`) that minimises the mean joint error on the calibration windows. The decoded mean-latent forecast is the
  model's most likely motion; far ahead, where the future is uncertain, the error-optimal deterministic forecast moves
  less than that (regression towards holding still).
- trust (per item and hand, in [0, 1]) from the P-Block's reconstruction residual of the last observed clip: the mean
  |refined - input| over the hand's feature slots. On motion like the training data the P-Enc reproduces its input
  up to the noise it learned to remove; motion it never saw (other speeds, styles, a real tracker's errors) leaves a
  larger residual. trust is 1 up to `residual_low` (a high quantile of the calibration windows' residuals), falls
  linearly to 0 at `residual_high` and scales the displacement with the gain, so an out-of-domain forecast becomes
  "hold the last pose".
- temperature: the latent sampling temperature whose sample spread covers the truth as a Gaussian of that spread
  would (coverage of the true joints within 1x the RMS spread around the sample mean closest to 60.8 %, the share of
  a 3-D isotropic Gaussian within sqrt(3) sigma).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import torch

from ghtt_core.representation import JOINT_SLICES, VELOCITY_SLICES, decode_features, local_joints_at
from ghtt_core.skeleton import NUM_HANDS, USED_JOINTS

GAUSSIAN_COVERAGE_1X = 0.608  # P(chi2 with 3 dof < 3): a 3-D Gaussian inside its RMS radius
GAUSSIAN_COVERAGE_2X = 0.993  # P(chi2 with 3 dof < 12)
GAIN_GRID = torch.linspace(0.0, 1.0, 41)


@dataclass
class ForecastCalibration:
    horizon_gain: list  # (F,) floats in [0, 1]
    residual_low: float
    residual_high: float
    temperature: float
    details: dict = field(default_factory=dict)  # what it was fitted on and the measured coverage

    def __post_init__(self):
        if not self.horizon_gain or not all(0.0 <= g <= 1.0 for g in self.horizon_gain):
            raise ValueError("horizon_gain must be a non-empty list of factors in [0, 1]")
        if not 0.0 <= self.residual_low < self.residual_high:
            raise ValueError(f"need 0 <= residual_low < residual_high, got {self.residual_low}, {self.residual_high}")
        if not math.isfinite(self.temperature) or self.temperature <= 0:
            raise ValueError(f"temperature must be finite and > 0, got {self.temperature}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "ForecastCalibration":
        return cls(**data)

    def gain(self, frames: int, device=None) -> torch.Tensor:
        """(frames,) gains; frames past the fitted horizon keep the last fitted value."""
        gains = torch.tensor(self.horizon_gain, dtype=torch.float64, device=device)
        index = torch.arange(frames, device=device).clamp(max=len(gains) - 1)
        return gains[index]

    def trust(self, residual: torch.Tensor) -> torch.Tensor:
        """residual (..., 2) -> trust in [0, 1] (NaN residual, i.e. no hand in the last clip, gives NaN)."""
        falling = (self.residual_high - residual) / (self.residual_high - self.residual_low)
        return falling.clamp(0.0, 1.0)


def hand_slots(hand: int) -> list[slice]:
    """The feature slots that describe hand `hand` alone: its local joints and its velocity."""
    return [JOINT_SLICES[hand], VELOCITY_SLICES[hand]]


def reconstruction_residual(refined: torch.Tensor, features: torch.Tensor, feature_mask: torch.Tensor) -> torch.Tensor:
    """Mean |refined - input| per hand over its valid slots of one clip: refined/features/mask (B, N, 153) ->
    (B, 2); NaN for a hand without a valid slot in the clip."""
    residuals = []
    for hand in range(NUM_HANDS):
        difference = torch.cat([(refined[..., s] - features[..., s]).abs() for s in hand_slots(hand)], dim=-1)
        counted = torch.cat([feature_mask[..., s] for s in hand_slots(hand)], dim=-1).to(difference.dtype)
        total = counted.sum(dim=(-2, -1))
        mean = (difference * counted).sum(dim=(-2, -1)) / total.clamp_min(1.0)
        residuals.append(torch.where(total > 0, mean, torch.full_like(mean, float("nan"))))
    return torch.stack(residuals, dim=-1)


def observation_residual(observation) -> torch.Tensor:
    """The P-Enc reconstruction residual of an EncodedObservation's last clip, (B, 2) (float64 on its device)."""
    last = observation.hand_features
    return reconstruction_residual(observation.refined[:, -1].double(), last.features[:, -1].double(),
                                   last.feature_mask[:, -1])


def hold_joints(observation) -> torch.Tensor:
    """(B, 2, 21, 3) float64: each hand as last observed (at its base frame, decoded at the observation's mean palm
    size exactly as forecasts are), i.e. the zero-velocity forecast the calibration shrinks towards."""
    features = observation.hand_features.features.flatten(1, 2).double()  # (B, K*N, 153)
    placement = observation.placement
    hold = torch.zeros(len(features), 1, features.shape[-1], dtype=features.dtype, device=features.device)
    hold[..., VELOCITY_SLICES[0]] = hold.new_tensor([1.0, 0, 0, 0, 1.0, 0, 0, 0, 0])
    hold[..., VELOCITY_SLICES[1]] = hold.new_tensor([1.0, 0, 0, 0, 1.0, 0, 0, 0, 0])
    observed = local_joints_at(features, placement.base_index)
    for hand in range(NUM_HANDS):
        hold[:, 0, JOINT_SLICES[hand]] = observed[:, hand]
    joints = decode_features(hold, placement.R_base2cam.double(), placement.t_base2cam.double(),
                             placement.mean_palm_size.double())
    return joints[:, 0]


def shrink_towards_hold(joints: torch.Tensor, hold: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """joints (B, S, F, 2, 21, 3), hold (B, 2, 21, 3), factor (B, F, 2) -> hold + factor * (joints - hold)."""
    hold = hold[:, None, None].to(joints.dtype)
    return hold + factor[:, None, :, :, None, None].to(joints.dtype) * (joints - hold)


# ---- fitting --------------------------------------------------------------------------------------------------------


def _joint_errors(predicted, truth, counted):
    """Mean error over the used joints, (W, F, 2) metres; counted (W, F, 2)."""
    used = list(USED_JOINTS)
    errors = (predicted[..., used, :] - truth[..., used, :]).norm(dim=-1).mean(dim=-1)
    return torch.where(counted, errors, torch.zeros_like(errors))


def fit_horizon_gain(predicted, hold, truth, counted) -> torch.Tensor:
    """Per future frame, the gain from GAIN_GRID minimising the mean joint error of hold + g (predicted - hold).

    predicted/truth (W, F, 2, 21, 3), hold (W, 2, 21, 3), counted (W, F, 2) -> (F,) float64.
    """
    hold = hold[:, None].to(predicted.dtype)
    counts = counted.sum(dim=(0, 2)).clamp_min(1)
    totals = []
    for gain in GAIN_GRID.tolist():
        errors = _joint_errors(hold + gain * (predicted - hold), truth, counted)
        totals.append(errors.sum(dim=(0, 2)) / counts)
    best = torch.stack(totals).argmin(dim=0)  # (F,)
    return GAIN_GRID.to(torch.float64)[best]


def residual_thresholds(residuals: torch.Tensor, quantile: float = 0.99, falloff: float = 2.0) -> tuple[float, float]:
    """(low, high): trust starts to fall at the `quantile` of in-domain residuals and is 0 at `falloff` x it."""
    values = residuals[~torch.isnan(residuals)].double()
    if not len(values):
        raise ValueError("no residuals to calibrate on (no hand in any last observed clip)")
    low = float(torch.quantile(values, quantile))
    return low, low * falloff


def spread_coverage(samples, truth, counted, multiples=(1.0, 2.0)) -> dict:
    """Share of true used joints within k x the RMS spread of the samples around their mean, per future frame.

    samples (W, S, F, 2, 21, 3) with S >= 2, truth (W, F, 2, 21, 3), counted (W, F, 2) -> {k: (F,) tensor}.
    """
    used = list(USED_JOINTS)
    samples, truth = samples[..., used, :], truth[..., used, :]
    mean = samples.mean(dim=1)
    spread = ((samples - mean[:, None]) ** 2).sum(dim=-1).mean(dim=1).sqrt()  # (W, F, 2, J)
    distance = (truth - mean).norm(dim=-1)
    weights = counted[..., None].expand_as(distance).to(distance.dtype)
    out = {}
    for k in multiples:
        inside = (distance <= k * spread).to(distance.dtype) * weights
        out[k] = inside.sum(dim=(0, 2, 3)) / weights.sum(dim=(0, 2, 3)).clamp_min(1)
    return out
