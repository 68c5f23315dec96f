"""Forecast calibration (ghtt_core.forecast_calibration): gain, trust, hold pose, coverage, fitting, checkpoints."""

import dataclasses

import pytest
import torch
from model_batches import moving_hands
from tiny_models import tiny_model

from ghtt_core import forecast_calibration as fc
from ghtt_core.checkpoint import load_checkpoint, save_checkpoint
from ghtt_core.evaluate.baselines import zero_velocity
from ghtt_core.forecast_calibration import ForecastCalibration
from ghtt_core.inference import GHTTInference
from ghtt_core.skeleton import USED_JOINTS

USED = list(USED_JOINTS)


def calibration(**changes):
    values = dict(horizon_gain=[1.0, 0.5, 0.25], residual_low=0.1, residual_high=0.3, temperature=2.0)
    return ForecastCalibration(**{**values, **changes})


def test_configuration_is_checked():
    with pytest.raises(ValueError, match="horizon_gain"):
        calibration(horizon_gain=[1.2])
    with pytest.raises(ValueError, match="residual"):
        calibration(residual_low=0.3, residual_high=0.1)
    with pytest.raises(ValueError, match="temperature"):
        calibration(temperature=float("nan"))
    assert ForecastCalibration.from_dict(calibration().to_dict()) == calibration()


def test_gain_extends_its_last_value_and_trust_falls_linearly_between_the_thresholds():
    assert calibration().gain(5).tolist() == [1.0, 0.5, 0.25, 0.25, 0.25]
    trust = calibration().trust(torch.tensor([[0.05, 0.1], [0.2, 0.3], [0.5, float("nan")]]))
    assert trust[:, 0].tolist() == pytest.approx([1.0, 0.5, 0.0]) and trust[:2, 1].tolist() == [1.0, 0.0]
    assert torch.isnan(trust[2, 1])


def test_shrinking_interpolates_between_the_hold_pose_and_the_forecast():
    joints = torch.randn(2, 3, 4, 2, 21, 3, dtype=torch.float64)
    hold = torch.randn(2, 2, 21, 3, dtype=torch.float64)
    factor = torch.zeros(2, 4, 2)
    factor[1, :, 1] = 1.0
    factor[0, 2, 0] = 0.5
    out = fc.shrink_towards_hold(joints, hold, factor)
    assert torch.allclose(out[1, :, :, 1], joints[1, :, :, 1], atol=1e-12)
    assert torch.allclose(out[1, :, :, 0], hold[1, 0].expand_as(out[1, :, :, 0]))
    assert torch.allclose(out[0, :, 2, 0], 0.5 * (joints[0, :, 2, 0] + hold[0, 0]))


def test_fitted_gain_undoes_a_known_overshoot():
    """A forecast that moves twice as far as the truth from the hold pose is best shrunk by 0.5 everywhere; one that
    is exact keeps gain 1."""
    generator = torch.Generator().manual_seed(0)
    hold = torch.randn(50, 2, 21, 3, generator=generator, dtype=torch.float64)
    truth = hold[:, None] + torch.randn(50, 6, 2, 21, 3, generator=generator, dtype=torch.float64) * 0.05
    counted = torch.ones(50, 6, 2, dtype=torch.bool)
    overshoot = hold[:, None] + 2.0 * (truth - hold[:, None])
    assert fc.fit_horizon_gain(overshoot, hold, truth, counted).tolist() == pytest.approx([0.5] * 6)
    assert fc.fit_horizon_gain(truth, hold, truth, counted).tolist() == pytest.approx([1.0] * 6)


def test_coverage_of_gaussian_samples_matches_the_gaussian_reference():
    generator = torch.Generator().manual_seed(0)
    samples = torch.randn(400, 30, 2, 2, 21, 3, generator=generator, dtype=torch.float64)
    truth = torch.randn(400, 2, 2, 21, 3, generator=generator, dtype=torch.float64)
    coverage = fc.spread_coverage(samples, truth, torch.ones(400, 2, 2, dtype=torch.bool))
    # the truth is a fresh draw, so it lies a bit further from the 30-sample mean than a sample does
    assert abs(float(coverage[1.0].mean()) - fc.GAUSSIAN_COVERAGE_1X) < 0.03
    assert float(coverage[2.0].mean()) > 0.98


def test_reconstruction_residual_is_per_hand_over_its_valid_slots():
    features = torch.zeros(1, 16, 153)
    refined = features.clone()
    refined[..., 0:63] = 0.2  # left joints off by 0.2, its velocity exact; right exact
    mask = torch.ones(1, 16, 153, dtype=torch.bool)
    mask[..., 63:126] = False
    mask[..., 135:144] = False  # right hand absent
    residual = fc.reconstruction_residual(refined, features, mask)
    assert residual[0, 0] == pytest.approx(0.2 * 63 / 72)
    assert torch.isnan(residual[0, 1])


def test_a_calibrated_forecast_with_zero_trust_holds_the_last_observed_pose():
    model = tiny_model()
    joints = moving_hands(2, 16, seed=1).view(2, 1, 16, 2, 21, 3)
    presence = torch.ones(2, 1, 16, 2, dtype=torch.bool)
    raw = GHTTInference(model)
    observation = raw.encode_observation(joints, presence)
    held = zero_velocity(joints[:, 0], presence[:, 0], horizon_frames=5).joints[:, 0]
    # the hold pose is the last observed hand at the observation's mean palm size (equal here: rigid hands)
    assert torch.allclose(fc.hold_joints(observation)[..., USED, :], held[:, 0, :, USED].double(), atol=1e-5)

    distrusting = GHTTInference(dataclasses.replace(model, calibration=calibration(residual_low=0.0,
                                                                                   residual_high=1e-9)))
    forecast = distrusting.predict_action_guided(observation, num_samples=3, horizon_frames=5,
                                                 generator=torch.Generator().manual_seed(0))
    assert torch.equal(forecast.trust, torch.zeros(2, 2))
    expected = held[:, None].expand(-1, 3, -1, -1, -1, -1)
    assert torch.allclose(forecast.joints[..., USED, :], expected[..., USED, :], atol=1e-5)
    # without a calibration (or with calibrated=False) nothing is shrunk and no trust is reported
    plain = raw.predict_action_guided(observation, num_samples=3, horizon_frames=5,
                                      generator=torch.Generator().manual_seed(0))
    assert plain.trust is None
    uncalibrated = distrusting.predict_action_guided(observation, num_samples=3, horizon_frames=5, temperature=5.0,
                                                     generator=torch.Generator().manual_seed(0), calibrated=False)
    assert torch.equal(uncalibrated.joints, plain.joints)


def test_full_trust_with_unit_gain_changes_nothing_and_the_temperature_follows_the_calibration():
    model = dataclasses.replace(tiny_model(), calibration=calibration(horizon_gain=[1.0], residual_low=1e3,
                                                                      residual_high=2e3, temperature=2.0))
    inference = GHTTInference(model)
    assert inference.default_temperature == 2.0
    joints = moving_hands(1, 16, seed=2).view(1, 1, 16, 2, 21, 3)
    observation = inference.encode_observation(joints, torch.ones(1, 1, 16, 2, dtype=torch.bool))
    options = dict(num_samples=3, horizon_frames=8)
    calibrated = inference.predict_pose_only(observation, generator=torch.Generator().manual_seed(0), **options)
    raw = inference.predict_pose_only(observation, generator=torch.Generator().manual_seed(0), temperature=2.0,
                                      calibrated=False, **options)
    assert torch.equal(calibrated.trust, torch.ones(1, 2))
    assert torch.allclose(calibrated.joints, raw.joints, atol=1e-5)


def test_checkpoints_keep_the_calibration(tmp_path):
    model = tiny_model()
    fitted = calibration(details={"windows": 3})
    save_checkpoint(tmp_path / "m.pt", model.config, model.pose_block, model.action_block, model.taxonomy,
                    model.label_embeddings, calibration=fitted)
    assert load_checkpoint(tmp_path / "m.pt").calibration == fitted
    save_checkpoint(tmp_path / "plain.pt", model.config, model.pose_block)
    assert load_checkpoint(tmp_path / "plain.pt").calibration is None


def _sequences():
    import numpy as np

    from ghtt_core.data.sequence import ActionSegment, HandSequence

    out = []
    for index in range(2):
        joints = moving_hands(1, 150, seed=index)[0].numpy()
        presence = np.ones(joints.shape[:2], dtype=bool)
        out.append(HandSequence(f"seq{index}", joints, presence, actions=[ActionSegment(0, 150, "pour cup", "pour",
                                                                                        "cup")],
                                estimated_joints=joints + 0.002, estimated_presence=presence.copy()))
    return out


def test_fitting_on_held_out_windows_gives_a_usable_calibration():
    from ghtt_core.evaluate.forecast_fit import fit_calibration

    model = tiny_model()
    model.config.action.max_clips = 8
    fitted = fit_calibration(model, _sequences(), max_windows=0, coverage_windows=6, coverage_samples=3,
                             temperatures=(1.0, 5.0), progress=False)
    assert len(fitted.horizon_gain) == 96 and all(0.0 <= g <= 1.0 for g in fitted.horizon_gain)
    assert 0.0 < fitted.residual_low < fitted.residual_high and fitted.temperature in (1.0, 5.0)
    assert set(fitted.details["coverage_by_temperature"]) == {"1", "5"}
    assert fitted.details["windows"] == 2 * 8  # windows every 16 frames leaving >= 30 of 150
    inference = GHTTInference(dataclasses.replace(model, calibration=fitted))
    assert inference.default_temperature == fitted.temperature
    # the chosen temperature is the candidate whose 1x spread coverage comes closest to a Gaussian's
    coverage = fitted.details["coverage_by_temperature"]
    reference = fitted.details["gaussian_reference"]["1x"]
    distance = {t: abs(values["1x_mean"] - reference) for t, values in coverage.items()}
    assert distance[f"{fitted.temperature:g}"] == min(distance.values())


def test_calibrate_command_writes_a_calibrated_copy_and_refuses_the_test_split(tmp_path, capsys):
    from ghtt_core.cli import main

    assert main(["data", "generate", "--out", str(tmp_path / "data"), "--num-recordings", "12"]) == 0
    model = tiny_model()
    model.config.action.max_clips = 8
    save_checkpoint(tmp_path / "m.pt", model.config, model.pose_block, model.action_block, model.taxonomy,
                    model.label_embeddings)
    common = ["calibrate", "--checkpoint", str(tmp_path / "m.pt"), "--data", str(tmp_path / "data"), "--views", "top",
              "--max-windows", "24", "--coverage-windows", "6", "--coverage-samples", "2", "--no-progress"]
    assert main([*common, "--split", "test", "--out", str(tmp_path / "c.pt")]) != 0
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "test split" in error[0]
    assert main([*common, "--split", "val", "--out", str(tmp_path / "c.pt")]) == 0
    calibrated = load_checkpoint(tmp_path / "c.pt")
    assert calibrated.calibration is not None and calibrated.calibration.details["split"] == "val"
    assert (tmp_path / "c.coverage.png").read_bytes()[:4] == b"\x89PNG"  # the calibration plot beside it
    assert torch.equal(calibrated.pose_block.state_dict()["output_head.0.weight"],
                       model.pose_block.state_dict()["output_head.0.weight"])
