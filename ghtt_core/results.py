"""What the streaming pipeline produces: action hypotheses, recognitions and motion predictions (ROS-free).

ghtt_ros.convert maps these 1:1 to ghtt messages.
"""

from dataclasses import dataclass

import numpy as np

PREDICTION_MODES = ("action_guided", "pose_only")  # P.b (default) and P.a


@dataclass
class Hypothesis:
    label: str
    verb: str
    noun: str
    score: float


@dataclass
class Recognition:
    """Top-k action hypotheses (highest score first) from the frames observed between the two stamps."""

    stamp_ns: int
    frame_id: str
    observation_start_ns: int
    observation_end_ns: int
    num_clips: int
    hypotheses: list
    object_label: str = ""
    latent: np.ndarray | None = None


@dataclass
class Prediction:
    """positions (K, T, 2, J, 3) float32 metres, sample 0 deterministic; absent hands NaN.

    Predicted frame i is at stamp_ns + (i + 1) * frame_period_s (stamp_ns = last observed frame).
    """

    stamp_ns: int
    frame_id: str
    mode: str
    frame_period_s: float
    positions: np.ndarray
    hand_present: np.ndarray
    conditioning_action: Hypothesis
    sampling_temperature: float
    model_id: str = ""
    # (2,) per hand in [0, 1]: how far the forecast is trusted (1 = as the model made it; lower = shrunk towards
    # the last observed pose because the observation looked out of domain); None = fully trusted.
    trust: np.ndarray | None = None


def prediction_statistics(positions, hand_present):
    """Sample mean (T, 2, J, 3) and RMS distance of the samples to it (T, 2, J); NaN for absent hands."""
    mean = positions.mean(axis=0)
    spread = np.sqrt(((positions - mean) ** 2).sum(axis=-1).mean(axis=0))
    absent = ~np.asarray(hand_present, dtype=bool)
    mean[:, absent] = np.nan
    spread[:, absent] = np.nan
    return mean.astype(np.float32), spread.astype(np.float32)
