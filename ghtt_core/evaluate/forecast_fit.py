"""Fitting a checkpoint's forecast calibration on held-out recordings (`ghtt calibrate`; ghtt_core.forecast_calibration).

On the prediction windows of the calibration split (the paper's protocol: windows every 16 frames with at least 1 s
of the action left, the observed clip is the ground truth, up to 96 future frames):
1. residual thresholds from the P-Enc reconstruction residuals of the observed clips, both as observed in the paper's
   protocol and, when the data has them, as the estimator saw them (a robot's input must keep full trust in domain);
2. the horizon gain from the raw deterministic forecasts (trust applied, gain 1) against the truth;
3. the temperature from the coverage of the truth by the calibrated samples, for each candidate temperature.
Nothing of the test split is used.
"""

from __future__ import annotations

import time

import torch
from tqdm import tqdm

from ghtt_core import forecast_calibration
from ghtt_core.forecast_calibration import GAUSSIAN_COVERAGE_1X, ForecastCalibration
from ghtt_core.evaluate import protocols
from ghtt_core.inference import GHTTInference

CANDIDATE_TEMPERATURES = (0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 7.0, 10.0)
CALIBRATION_MIN_FRAMES = 30  # the 1-s protocol's windows
REPORTED_FRAMES = (1, 4, 8, 16, 30, 48, 60, 96)


def _subset(windows, limit: int, seed: int):
    if 0 < limit < len(windows):
        keep = torch.randperm(len(windows), generator=torch.Generator().manual_seed(seed))[:limit]
        return windows.select(keep.sort().values)
    return windows


def _object_names(inference: GHTTInference, windows):
    objects = inference.model.taxonomy.objects
    return [[objects[noun] if noun >= 0 else ""] for noun in windows.nouns.tolist()]


def _batches(windows, batch_size: int, what: str, progress: bool):
    starts = range(0, len(windows), batch_size)
    for first in tqdm(starts, desc=what, disable=not progress, leave=False):
        yield windows.select(slice(first, first + batch_size))


def _raw_forecasts(inference, windows, num_samples, temperature, seed, batch_size, progress, what):
    """Uncalibrated P.b forecasts (W, S, F, 2, 21, 3) float64, their observations' residuals (W, 2) and the hold
    poses (W, 2, 21, 3)."""
    generator = torch.Generator().manual_seed(seed)
    joints, residuals, holds = [], [], []
    for batch in _batches(windows, batch_size, what, progress):
        observation = inference.encode_observation(batch.observed_joints.unsqueeze(1),
                                                   batch.observed_presence.unsqueeze(1))
        forecast = inference.predict_action_guided(
            observation, object_names=_object_names(inference, batch),
            phase=(batch.start_in_action // protocols.CLIP_FRAMES).unsqueeze(1), num_samples=num_samples,
            horizon_frames=batch.future_joints.shape[1], temperature=temperature, generator=generator,
            calibrated=False)
        joints.append(forecast.joints.double().cpu())
        residuals.append(forecast_calibration.observation_residual(observation).cpu())
        holds.append(forecast_calibration.hold_joints(observation).cpu())
    return torch.cat(joints), torch.cat(residuals), torch.cat(holds)


def _counted(windows, joints):
    """Future frames and hands that score: in the future, present there, and predicted."""
    predicted = ~torch.isnan(joints[:, 0, 0, :, 0, 0])
    return windows.future_presence & predicted[:, None, :]


def _factor(cal: ForecastCalibration, residuals, frames):
    trust = torch.nan_to_num(cal.trust(residuals), nan=0.0)
    return cal.gain(frames)[None, :, None] * trust[:, None, :]


def fit_calibration(checkpoint, sequences, max_windows: int = 2000, coverage_windows: int = 600,
                    coverage_samples: int = 10, temperatures=CANDIDATE_TEMPERATURES, seed: int = 0,
                    batch_size: int = 64, progress: bool = True) -> ForecastCalibration:
    """checkpoint: a full ModelCheckpoint; sequences: the calibration split's HandSequences."""
    started = time.perf_counter()
    inference = GHTTInference(checkpoint)
    taxonomy = checkpoint.taxonomy
    windows = _subset(protocols.prediction_windows(sequences, taxonomy, CALIBRATION_MIN_FRAMES), max_windows, seed)
    raw, residuals, hold = _raw_forecasts(inference, windows, 1, 1.0, seed, batch_size, progress, "forecasts")

    pooled = [residuals]
    if all(sequence.estimated_joints is not None for sequence in sequences):
        estimated = _subset(protocols.prediction_windows(sequences, taxonomy, CALIBRATION_MIN_FRAMES,
                                                         observed_input="estimated"), max_windows, seed)
        for batch in _batches(estimated, batch_size, "estimated-input residuals", progress):
            observation = inference.encode_observation(batch.observed_joints.unsqueeze(1),
                                                       batch.observed_presence.unsqueeze(1))
            pooled.append(forecast_calibration.observation_residual(observation).cpu())
    residual_low, residual_high = forecast_calibration.residual_thresholds(torch.cat(pooled).flatten())

    frames = raw.shape[2]
    unit = ForecastCalibration([1.0], residual_low, residual_high, 1.0)
    trusted = forecast_calibration.shrink_towards_hold(raw, hold, _factor(unit, residuals, frames))[:, 0]
    counted = _counted(windows, raw)
    gain = forecast_calibration.fit_horizon_gain(trusted, hold, windows.future_joints.double(), counted)

    coverage_set = _subset(windows, coverage_windows, seed + 1)
    coverage = {}
    for temperature in temperatures:
        samples, sample_residuals, sample_hold = _raw_forecasts(
            inference, coverage_set, coverage_samples + 1, temperature, seed, batch_size, progress,
            f"coverage at temperature {temperature:g}")
        candidate = ForecastCalibration(gain.tolist(), residual_low, residual_high, temperature)
        shrunk = forecast_calibration.shrink_towards_hold(samples, sample_hold, _factor(candidate, sample_residuals, frames))
        per_frame = forecast_calibration.spread_coverage(shrunk[:, 1:], coverage_set.future_joints.double(),
                                                _counted(coverage_set, samples))
        coverage[temperature] = {k: values for k, values in per_frame.items()}
    chosen = min(temperatures, key=lambda t: abs(float(coverage[t][1.0].mean()) - GAUSSIAN_COVERAGE_1X))

    def at_frames(values):
        return {str(f): round(float(values[f - 1]), 3) for f in REPORTED_FRAMES if f <= len(values)}

    details = {
        "windows": len(windows),
        "coverage_windows": len(coverage_set),
        "coverage_samples": coverage_samples,
        "min_remaining_frames": CALIBRATION_MIN_FRAMES,
        "residual_quantile": 0.99,
        "coverage_by_temperature": {
            f"{t:g}": {"1x_mean": round(float(c[1.0].mean()), 3), "2x_mean": round(float(c[2.0].mean()), 3),
                       "1x_by_frame": at_frames(c[1.0]), "2x_by_frame": at_frames(c[2.0])}
            for t, c in coverage.items()},
        "gaussian_reference": {"1x": GAUSSIAN_COVERAGE_1X, "2x": forecast_calibration.GAUSSIAN_COVERAGE_2X},
        "seconds": round(time.perf_counter() - started, 1),
    }
    return ForecastCalibration(gain.tolist(), residual_low, residual_high, float(chosen), details)


def plot_spread_coverage(path, details: dict, chosen_temperature: float):
    """The calibration plot: share of true future joints within 1x and 2x the sample spread of the sample mean, per
    future frame, for every candidate temperature of a fit (`details` of a ForecastCalibration), the chosen one bold,
    and what a Gaussian spread would give."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    reference = details["gaussian_reference"]
    for axis, multiple in zip(axes, ("1x", "2x")):
        for temperature, coverage in details["coverage_by_temperature"].items():
            by_frame = coverage[f"{multiple}_by_frame"]
            frames = [int(frame) for frame in by_frame]
            chosen = float(temperature) == chosen_temperature
            axis.plot(frames, list(by_frame.values()), "o-" if chosen else "-", linewidth=2.5 if chosen else 0.8,
                      label=f"temperature {temperature}{' (chosen)' if chosen else ''}")
        axis.axhline(reference[multiple], linestyle="--", color="0.3", label=f"Gaussian: {reference[multiple]:.3f}")
        axis.set_xlabel("future frame (30 Hz)")
        axis.set_title(f"true joints within {multiple} spread of the sample mean", fontsize=9)
        axis.set_ylim(0, 1)
    axes[0].set_ylabel("share of joints")
    axes[1].legend(fontsize=7, loc="lower left")
    figure.suptitle(f"spread coverage on {details.get('coverage_windows', '?')} windows of split "
                    f"{details.get('split', '?')} ({details.get('coverage_samples', '?')} samples each)", fontsize=10)
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)
