"""Noise model of a hand-pose estimator: what pose refinement has to fix.

Applied per camera view to camera-frame joints: per-joint jitter, depth errors along the viewing ray (a slowly
drifting per-hand bias plus per-joint relative depth), occasional left/right swaps and single-joint outliers, dropped
frames and short spells where one hand is missed.
"""

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class EstimatorNoiseConfig:
    jitter_mm: float = 4.0  # per-joint isotropic noise, temporally smoothed
    depth_bias_mm: float = 15.0  # per-hand depth error, drifting slowly
    relative_depth_mm: float = 4.0  # per-joint depth noise on top of the bias
    swap_rate: float = 0.002  # per-frame chance that a left/right swap spell starts
    outlier_rate: float = 0.01  # per-hand, per-frame chance that one joint is way off
    outlier_mm: float = 50.0
    dropped_frame_rate: float = 0.01  # whole frames with no estimate
    missed_hand_rate: float = 0.004  # per-hand, per-frame chance that a missed-hand spell starts

    @classmethod
    def preset(cls, level: str):
        """'none', 'low', 'medium' (the default benchmark) or 'high'."""
        factors = {"none": 0.0, "low": 0.5, "medium": 1.0, "high": 2.0}
        if level not in factors:
            raise ValueError(f"unknown noise level {level!r}; choose one of {sorted(factors)}")
        f = factors[level]
        base = cls()
        return cls(**{name: getattr(base, name) * f for name in base.__dataclass_fields__})


def _smoothed_noise(rng, shape, sigma, window):
    """Gaussian noise low-passed over time (axis 0) by a moving average, rescaled back to std `sigma`."""
    raw = rng.normal(0.0, 1.0, size=(shape[0] + window - 1,) + shape[1:])
    cumulative = np.concatenate([np.zeros((1,) + shape[1:]), np.cumsum(raw, axis=0)])
    smooth = (cumulative[window:] - cumulative[:-window]) / window
    return sigma * smooth * np.sqrt(window)


def _spells(rng, num_frames, start_rate, min_len, max_len):
    """(T,) bool: spells of random length that start with probability `start_rate` per frame."""
    mask = np.zeros(num_frames, dtype=bool)
    for start in np.flatnonzero(rng.random(num_frames) < start_rate):
        mask[start : start + int(rng.integers(min_len, max_len + 1))] = True
    return mask


def estimate_poses(joints_camera, presence, config: EstimatorNoiseConfig, rng: np.random.Generator):
    """Noisy estimates of camera-frame joints (T, 2, 21, 3) -> (estimated joints, estimated presence (T, 2))."""
    num_frames = len(joints_camera)
    estimated = joints_camera.astype(np.float64).copy()
    if config.jitter_mm > 0:
        estimated += _smoothed_noise(rng, estimated.shape, config.jitter_mm / 1000.0, window=3)
    rays = joints_camera / np.linalg.norm(joints_camera, axis=-1, keepdims=True)
    depth_error = np.zeros(estimated.shape[:-1])
    if config.depth_bias_mm > 0:
        depth_error += _smoothed_noise(rng, (num_frames, 2, 1), config.depth_bias_mm / 1000.0, window=15)
    if config.relative_depth_mm > 0:
        depth_error += rng.normal(0.0, config.relative_depth_mm / 1000.0, size=depth_error.shape)
    estimated += depth_error[..., None] * rays
    outliers = rng.random((num_frames, 2)) < config.outlier_rate
    frames, hands = np.nonzero(outliers)
    joints = rng.integers(0, 21, size=len(frames))
    directions = rng.normal(size=(len(frames), 3))
    directions /= np.linalg.norm(directions, axis=-1, keepdims=True)
    estimated[frames, hands, joints] += directions * config.outlier_mm / 1000.0 * rng.uniform(0.6, 1.6, (len(frames), 1))
    swapped = _spells(rng, num_frames, config.swap_rate, 3, 20)
    estimated[swapped] = estimated[swapped][:, ::-1]
    estimated_presence = presence.copy()
    estimated_presence[swapped] = estimated_presence[swapped][:, ::-1]
    for hand in (0, 1):
        estimated_presence[_spells(rng, num_frames, config.missed_hand_rate, 5, 30), hand] = False
    estimated_presence[rng.random(num_frames) < config.dropped_frame_rate] = False
    return estimated.astype(np.float32), estimated_presence
