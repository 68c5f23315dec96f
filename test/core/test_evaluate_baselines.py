import pytest
import torch

from ghtt_core.evaluate.baselines import constant_velocity, zero_velocity


def linear_motion(num_frames=8):
    """Two hands moving in straight lines: right at 1 cm/frame along x, left at 2 mm/frame along z."""
    base = 0.03 * torch.randn(2, 21, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    frames = torch.arange(num_frames, dtype=torch.float64)[:, None, None]
    joints = base.expand(num_frames, 2, 21, 3).clone()
    joints[:, 1, :, 0] += 0.01 * frames[..., 0]
    joints[:, 0, :, 2] += 0.002 * frames[..., 0]
    return joints, torch.ones(num_frames, 2, dtype=torch.bool)


def test_layout_matches_a_single_prediction():
    joints, presence = linear_motion()
    for baseline in (zero_velocity, constant_velocity):
        forecast = baseline(joints, presence, horizon_frames=5)
        assert forecast.joints.shape == (1, 5, 2, 21, 3) and forecast.joints.dtype == torch.float32
        assert forecast.hand_present.tolist() == [True, True]
    batched = constant_velocity(joints.expand(3, *joints.shape), presence.expand(3, *presence.shape), horizon_frames=4)
    assert batched.joints.shape == (3, 1, 4, 2, 21, 3) and batched.hand_present.shape == (3, 2)


def test_zero_velocity_holds_the_last_pose():
    joints, presence = linear_motion()
    forecast = zero_velocity(joints, presence, horizon_frames=3)
    assert torch.allclose(forecast.joints[0], joints[-1].float().expand(3, 2, 21, 3))


def test_constant_velocity_continues_straight_lines():
    joints, presence = linear_motion(num_frames=12)
    forecast = constant_velocity(joints[:8], presence[:8], horizon_frames=4)
    assert torch.allclose(forecast.joints[0], joints[8:].float(), atol=1e-6)


def test_damped_velocity_travels_a_geometric_sum():
    joints, presence = linear_motion()
    forecast = constant_velocity(joints, presence, horizon_frames=3, damping=0.5)
    travelled_x = forecast.joints[0, :, 1, 0, 0] - joints[-1, 1, 0, 0].float()
    assert travelled_x.tolist() == pytest.approx([0.01, 0.015, 0.0175], abs=1e-6)


def test_hand_seen_shortly_before_the_end_is_extrapolated_from_its_last_sighting():
    joints, presence = linear_motion(num_frames=12)
    observed, observed_presence = joints[:8].clone(), presence[:8].clone()
    observed_presence[6:, 1] = False  # right hand last seen at frame 5, within the end tolerance
    observed[6:, 1] = float("nan")
    forecast = constant_velocity(observed, observed_presence, horizon_frames=4)
    assert torch.allclose(forecast.joints[0, :, 1], joints[8:, 1].float(), atol=1e-6)
    held = zero_velocity(observed, observed_presence, horizon_frames=2)
    assert torch.allclose(held.joints[0, :, 1], joints[5, 1].float().expand(2, 21, 3))


def test_hands_not_seen_recently_are_not_predicted():
    truth, presence = linear_motion(num_frames=12)
    joints, presence = truth[:10].clone(), presence[:10].clone()
    presence[2:, 0] = False  # left hand gone long before the end
    frame_valid = torch.ones(10, dtype=torch.bool)
    frame_valid[-1] = False
    joints[-1] = float("nan")  # a padded frame: the right hand's last sighting is frame 8
    forecast = constant_velocity(joints, presence, frame_valid, horizon_frames=2)
    assert forecast.hand_present.tolist() == [False, True]
    assert torch.isnan(forecast.joints[0, :, 0]).all()
    assert torch.allclose(forecast.joints[0, :, 1], truth[10:, 1].float(), atol=1e-6)


def test_hand_without_a_previous_frame_is_held():
    joints, presence = linear_motion()
    presence[:-1, 1] = False  # right hand only in the last frame: no velocity
    forecast = constant_velocity(joints, presence, horizon_frames=2)
    assert torch.allclose(forecast.joints[0, :, 1], joints[-1, 1].float().expand(2, 21, 3))
