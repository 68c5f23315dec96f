import math

import pytest
import torch

from ghtt_core import geometry as g
from ghtt_core import representation as rep
from ghtt_core.skeleton import HAND_SCALE, PALM_JOINTS, PALM_TEMPLATES, UNUSED_JOINT, USED_JOINTS, palm_size

USED = list(USED_JOINTS)


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def _finger_chain(start, direction, lengths, bend_axis, flexion):
    """Joints along a finger: each bone turns by `flexion` about bend_axis relative to the previous one."""
    joints, position, d = [], start, direction
    step = g.axis_angle_to_matrix(bend_axis * flexion)
    for length in lengths:
        position = position + length * d
        joints.append(position)
        d = d @ step
    return joints


def _hand_shape(side, scale, flexion, gen, dtype):
    """One plausible hand in its own palm frame (right-hand axes of skeleton.py; left mirrors x). (21, 3) metres."""
    mirror = torch.tensor([-1.0 if side == 0 else 1.0, 1.0, 1.0], dtype=dtype)
    palm = torch.as_tensor(PALM_TEMPLATES[1], dtype=dtype) * scale
    palm[1:] += 0.002 * torch.randn(4, 3, generator=gen, dtype=dtype)  # individual MCP placement; wrist stays at 0
    lateral = torch.tensor([1.0, 0.0, 0.0], dtype=dtype)  # flexion curls fingers towards -z (the palm side)
    joints = [palm[0]] + [None] * 20
    thumb_base = torch.tensor([0.022, 0.028, -0.012], dtype=dtype) * scale
    thumb_dir = torch.nn.functional.normalize(torch.tensor([0.55, 0.8, -0.25], dtype=dtype), dim=0)
    joints[1] = thumb_base
    joints[2:5] = _finger_chain(thumb_base, thumb_dir, torch.tensor([0.035, 0.03, 0.025]) * scale,
                                torch.tensor([0.0, -0.3, -1.0], dtype=dtype), 0.6 * flexion)
    for mcp_slot, mcp in zip((5, 9, 13, 17), palm[1:]):
        direction = torch.nn.functional.normalize(mcp - palm[0], dim=0)
        joints[mcp_slot] = mcp
        joints[mcp_slot + 1:mcp_slot + 4] = _finger_chain(mcp, direction, torch.tensor([0.04, 0.025, 0.02]) * scale,
                                                          lateral, flexion)
    return torch.stack(joints) * mirror


def synthetic_hands(batch=2, frames=12, seed=0, dtype=torch.float64):
    """Two hands moving rigidly (smooth rotation + translation) with slowly changing finger flexion, camera metres.

    Returns joints (B, T, 2, 21, 3). Palm size is constant over time for each hand.
    """
    gen = _gen(seed)
    out = torch.zeros(batch, frames, 2, 21, 3, dtype=dtype)
    for b in range(batch):
        for side in (0, 1):
            scale = 0.85 + 0.3 * torch.rand((), generator=gen, dtype=dtype)
            R0 = g.random_rotation((), generator=gen, dtype=dtype)
            omega = 0.15 * torch.randn(3, generator=gen, dtype=dtype)
            origin = torch.tensor([0.15 * (2 * side - 1), 0.0, 0.5], dtype=dtype) + 0.05 * torch.randn(
                3, generator=gen, dtype=dtype)
            velocity = 0.01 * torch.randn(3, generator=gen, dtype=dtype)
            shape_seed = seed * 100 + 2 * b + side  # the same palm noise in every frame keeps the palm rigid
            for t in range(frames):
                flexion = 0.2 + 0.15 * math.sin(0.4 * t + side)
                shape = _hand_shape(side, scale, flexion, _gen(shape_seed), dtype)
                R = R0 @ g.axis_angle_to_matrix(omega * t)
                out[b, t, side] = shape @ R + origin + velocity * t
    return out


def _all_present(joints):
    return torch.ones(joints.shape[:-2], dtype=torch.bool)


def test_palm_frames_recover_the_pose_of_an_exact_scaled_template():
    gen = _gen(1)
    template = torch.as_tensor(PALM_TEMPLATES, dtype=torch.float64)  # (2, 5, 3)
    R_true = g.random_rotation((3, 2), generator=gen, dtype=torch.float64)  # local -> camera
    t_true = torch.randn(3, 2, 3, generator=gen, dtype=torch.float64)
    joints = torch.zeros(3, 2, 21, 3, dtype=torch.float64)
    joints[..., list(PALM_JOINTS), :] = g.apply_transform(1.2 * template, R_true, t_true)
    R, t = rep.palm_frames(joints[:, None])
    R_expected, t_expected = g.invert_transform(R_true, t_true)
    torch.testing.assert_close(R[:, 0], R_expected, atol=1e-12, rtol=0)
    torch.testing.assert_close(t[:, 0], t_expected, atol=1e-12, rtol=0)


def test_palm_frames_put_wrist_at_origin_and_palm_near_template():
    joints = synthetic_hands(batch=2, frames=3, seed=1)
    R, t = rep.palm_frames(joints)
    local = g.apply_transform(joints, R, t)
    torch.testing.assert_close(local[..., 0, :], torch.zeros_like(local[..., 0, :]), atol=1e-12, rtol=0)
    template = torch.as_tensor(PALM_TEMPLATES, dtype=joints.dtype)
    scaled = template * (palm_size(joints) / rep.palm_size_of_palm(template))[..., None, None]
    # The synthetic palms carry 2 mm (per coordinate) of shape noise around the template.
    assert (local[..., list(PALM_JOINTS), :] - scaled).norm(dim=-1).max() < 0.01
    det = torch.det(R)
    torch.testing.assert_close(det, torch.ones_like(det))


def test_round_trip_prediction_decoding_below_0_1_mm():
    joints = synthetic_hands(batch=2, frames=12, seed=2)
    presence = _all_present(joints)
    encoded = rep.encode_features(joints, presence)
    base = 5
    placement = rep.observed_placement(joints[:, : base + 1], presence[:, : base + 1])
    assert (placement.base_index == base).all() and placement.has_base.all()
    for renormalize in (False, True):
        decoded = rep.decode_features(encoded.features[:, base + 1:], placement.R_base2cam, placement.t_base2cam,
                                      placement.mean_palm_size, renormalize=renormalize)
        error = (decoded - joints[:, base + 1:])[..., USED, :].norm(dim=-1)
        assert error.max() < 1e-4  # 0.1 mm (float64: ~1e-15)


def test_round_trip_float32_below_0_1_mm():
    joints = synthetic_hands(batch=1, frames=16, seed=3).float()
    presence = _all_present(joints)
    encoded = rep.encode_features(joints, presence)
    assert encoded.features.dtype == torch.float32
    placement = rep.observed_placement(joints[:, :1], presence[:, :1])
    decoded = rep.decode_features(encoded.features[:, 1:], placement.R_base2cam, placement.t_base2cam,
                                  placement.mean_palm_size)
    assert (decoded - joints[:, 1:])[..., USED, :].norm(dim=-1).max() < 1e-4


def test_feature_layout():
    joints = synthetic_hands(batch=1, frames=4, seed=4)
    presence = _all_present(joints)
    encoded = rep.encode_features(joints, presence)
    f = encoded.features[0]
    assert f.shape == (4, 153)
    local_left = f[:, :63].reshape(4, 21, 3)
    torch.testing.assert_close(local_left[:, 0], torch.zeros(4, 3, dtype=f.dtype), atol=1e-12, rtol=0)
    torch.testing.assert_close(palm_size(local_left), torch.ones(4, dtype=f.dtype))
    # Frame 0 velocity is the identity; later velocities are local(t) -> local(t-1) in m x S.
    torch.testing.assert_close(f[0, 126:135], torch.tensor([1, 0, 0, 0, 1, 0, 0, 0, 0], dtype=f.dtype))
    R, t = encoded.R_cam2local[0], encoded.t_cam2local[0]
    x_t = g.apply_transform(joints[0, 2, 1], R[2, 1], t[2, 1])  # right hand in local(2), metres
    x_prev = g.apply_transform(joints[0, 2, 1], R[1, 1], t[1, 1])  # the same points in local(1)
    R_vel = g.rotation_6d_to_matrix(f[2, 135:141])
    torch.testing.assert_close(g.apply_transform(HAND_SCALE * x_t, R_vel, f[2, 141:144]), HAND_SCALE * x_prev)
    # Left -> right in metres.
    x_left = g.apply_transform(joints[0, 3, 0], R[3, 0], t[3, 0])
    x_right = g.apply_transform(joints[0, 3, 0], R[3, 1], t[3, 1])
    torch.testing.assert_close(g.apply_transform(x_left, g.rotation_6d_to_matrix(f[3, 144:150]), f[3, 150:153]),
                               x_right)


def test_features_invariant_to_rigid_motion_of_the_scene():
    joints = synthetic_hands(batch=2, frames=6, seed=5)
    presence = _all_present(joints)
    Q = g.random_rotation((), generator=_gen(6), dtype=joints.dtype)
    moved = joints @ Q + torch.tensor([0.3, -0.2, 1.0], dtype=joints.dtype)
    a, b = rep.encode_features(joints, presence), rep.encode_features(moved, presence)
    torch.testing.assert_close(a.features, b.features, atol=1e-10, rtol=0)
    assert not torch.allclose(a.R_cam2local, b.R_cam2local)


def test_accumulate_trajectory_matches_ground_truth_local2base():
    joints = synthetic_hands(batch=2, frames=10, seed=7)
    presence = _all_present(joints)
    encoded = rep.encode_features(joints, presence)
    base = 3
    truth = rep.local2base(encoded.R_cam2local, encoded.t_cam2local, base)
    assert truth.shape == (2, 10, 18)
    torch.testing.assert_close(truth[:, base], torch.tensor([1, 0, 0, 0, 1, 0, 0, 0, 0] * 2, dtype=truth.dtype)
                               .expand(2, 18), atol=1e-12, rtol=0)
    _, velocity_6d, velocity_t = rep.split_features(encoded.features[:, base + 1:])
    for hand in (0, 1):
        R, t = rep.accumulate_trajectory(velocity_6d[:, :, hand], velocity_t[:, :, hand])
        expected = truth[:, base + 1:, 9 * hand: 9 * hand + 9]
        torch.testing.assert_close(g.matrix_to_rotation_6d(R), expected[..., :6], atol=1e-10, rtol=0)
        torch.testing.assert_close(t, expected[..., 6:], atol=1e-10, rtol=0)


def test_accumulate_trajectory_composes_random_transforms():
    gen = _gen(8)
    R_vel = g.random_rotation((3, 7), generator=gen, dtype=torch.float64)
    t_vel = torch.randn(3, 7, 3, generator=gen, dtype=torch.float64)
    R, t = rep.accumulate_trajectory(g.matrix_to_rotation_6d(R_vel), t_vel)
    x = torch.randn(3, 5, 3, generator=gen, dtype=torch.float64)
    # Frame k: apply V_k, then V_{k-1}, ..., then V_0.
    for k in range(7):
        y = x
        for j in range(k, -1, -1):
            y = g.apply_transform(y, R_vel[:, j], t_vel[:, j])
        torch.testing.assert_close(g.apply_transform(x, R[:, k], t[:, k]), y)


def test_local2base_with_per_sequence_base_index():
    joints = synthetic_hands(batch=2, frames=6, seed=9)
    encoded = rep.encode_features(joints, _all_present(joints))
    per_sequence = rep.local2base(encoded.R_cam2local, encoded.t_cam2local, torch.tensor([1, 4]))
    torch.testing.assert_close(per_sequence[0], rep.local2base(encoded.R_cam2local[:1], encoded.t_cam2local[:1], 1)[0])
    torch.testing.assert_close(per_sequence[1], rep.local2base(encoded.R_cam2local[1:], encoded.t_cam2local[1:], 4)[0])


def _gappy_presence(frames=8):
    """Left absent at 2-3, both absent at 5; frame 7 is padding."""
    presence = torch.ones(1, frames, 2, dtype=torch.bool)
    presence[0, 2:4, 0] = False
    presence[0, 5, :] = False
    frame_valid = torch.ones(1, frames, dtype=torch.bool)
    frame_valid[0, 7] = False
    return presence, frame_valid


def test_mask_rules_and_neutral_values_with_absent_hands_and_padding():
    joints = synthetic_hands(batch=1, frames=8, seed=10)
    presence, frame_valid = _gappy_presence()
    joints[~presence] = float("nan")  # whatever an absent hand holds must never leak
    joints[0, 7] = float("nan")
    encoded = rep.encode_features(joints, presence, frame_valid)
    f, m = encoded.features[0], encoded.feature_mask[0]
    for field in (encoded.features, encoded.R_cam2local, encoded.t_cam2local, encoded.palm_size):
        assert torch.isfinite(field).all()

    observed = presence[0] & frame_valid[0, :, None]
    torch.testing.assert_close(encoded.presence[0], observed)
    for hand in (0, 1):
        joint_mask = m[:, 63 * hand: 63 * hand + 63].reshape(8, 21, 3)
        assert not joint_mask[:, UNUSED_JOINT].any()
        assert (joint_mask[:, USED] == observed[:, hand, None, None]).all()
        velocity_mask = m[:, 126 + 9 * hand: 135 + 9 * hand]
        expected_velocity = torch.cat((observed[:1, hand], observed[1:, hand] & observed[:-1, hand]))
        assert (velocity_mask == expected_velocity[:, None]).all()
        neutral = torch.tensor([1, 0, 0, 0, 1, 0, 0, 0, 0], dtype=f.dtype)
        torch.testing.assert_close(f[~expected_velocity, 126 + 9 * hand: 135 + 9 * hand],
                                   neutral.expand(int((~expected_velocity).sum()), 9))
        assert (f[:, 63 * hand: 63 * hand + 63][~joint_mask.flatten(-2)] == 0).all()
    # Left is observed at 0, 1, 4, 6: its velocity counts only at 0 (identity) and 1; frames 4 and 6 follow gaps.
    assert m[:, 126].tolist() == [True, True, False, False, False, False, False, False]
    assert m[:, 135].tolist() == [True, True, True, True, True, False, False, False]
    assert m[:, 144:153].all(-1).tolist() == [True, True, False, False, True, False, True, False]
    assert not m[7].any()


def test_gradients_finite_through_encode_and_decode_with_absent_hands():
    joints = synthetic_hands(batch=1, frames=8, seed=11)
    presence, frame_valid = _gappy_presence()
    joints[~presence] = float("nan")
    joints.requires_grad_(True)
    encoded = rep.encode_features(joints, presence, frame_valid)
    placement = rep.placement_from_features(encoded)
    decoded = rep.decode_features(encoded.features, placement.R_base2cam, placement.t_base2cam,
                                  placement.mean_palm_size)
    refined = rep.decode_observed_clip(encoded.features, encoded)
    loss = (encoded.features * encoded.feature_mask).square().sum() + decoded.square().sum() + refined.square().sum()
    loss.backward()
    assert torch.isfinite(joints.grad).all()
    assert (joints.grad[~presence] == 0).all()


def test_placement_uses_last_present_frame_and_mean_palm_size():
    joints = synthetic_hands(batch=1, frames=8, seed=12)
    presence, frame_valid = _gappy_presence()
    presence[0, :, 0] = False  # left never observed
    placement = rep.observed_placement(joints, presence, frame_valid)
    assert placement.base_index.tolist() == [[0, 6]]
    assert placement.has_base.tolist() == [[False, True]]
    observed_right = presence[0, :, 1] & frame_valid[0]
    torch.testing.assert_close(placement.mean_palm_size[0, 1], palm_size(joints[0, observed_right, 1]).mean())
    torch.testing.assert_close(placement.R_base2cam[0, 0], torch.eye(3, dtype=joints.dtype))
    # base -> camera maps local(6) back to the camera: the wrist origin lands on the observed wrist.
    torch.testing.assert_close(placement.t_base2cam[0, 1], joints[0, 6, 1, 0])


def test_decode_observed_clip_reproduces_clean_input():
    joints = synthetic_hands(batch=2, frames=16, seed=13)
    presence = _all_present(joints)
    presence[1, :3, 0] = False  # left hand of sequence 1 appears at frame 3
    encoded = rep.encode_features(joints, presence)
    decoded = rep.decode_observed_clip(encoded.features, encoded)
    error = (decoded - joints)[..., USED, :].norm(dim=-1)
    assert error[presence].max() < 1e-4


def test_decode_observed_clip_averages_the_input_placement_over_neighbouring_frames():
    """Refined (here: clean) features placed with a noisy input clip: the per-frame rigid jitter of the input palms
    is averaged over the frames within representation.PLACEMENT_RADIUS_FRAMES instead of being copied."""
    joints = synthetic_hands(batch=1, frames=16, seed=14)
    presence = _all_present(joints)
    presence[0, 12:, 1] = False  # the right hand leaves at frame 12
    gen = _gen(15)
    jitter_R = g.axis_angle_to_matrix(0.05 * torch.randn(1, 16, 2, 3, generator=gen, dtype=joints.dtype))
    jitter_t = 0.01 * torch.randn(1, 16, 2, 1, 3, generator=gen, dtype=joints.dtype)
    wrists = joints[..., :1, :]
    noisy_joints = (joints - wrists) @ jitter_R + wrists + jitter_t  # rigid per-frame jitter of each hand
    clean = rep.encode_features(joints, presence)
    decoded = rep.decode_observed_clip(clean.features, rep.encode_features(noisy_joints, presence))
    for hand in range(2):
        frames = presence[0, :, hand]
        input_error = (noisy_joints - joints)[0, frames, hand][..., USED, :].norm(dim=-1).mean()
        decoded_error = (decoded - joints)[0, frames, hand][..., USED, :].norm(dim=-1).mean()
        assert decoded_error < 0.6 * input_error, (hand, decoded_error, input_error)


def test_bad_input_raises_value_error():
    joints = torch.zeros(1, 4, 2, 21, 3)
    with pytest.raises(ValueError, match="joints"):
        rep.encode_features(torch.zeros(1, 4, 2, 20, 3), torch.ones(1, 4, 2, dtype=torch.bool))
    with pytest.raises(ValueError, match="presence"):
        rep.encode_features(joints, torch.ones(1, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="frame_valid"):
        rep.encode_features(joints, torch.ones(1, 4, 2, dtype=torch.bool), torch.ones(1, 5, dtype=torch.bool))
    with pytest.raises(ValueError, match="features"):
        rep.split_features(torch.zeros(1, 4, 152))
    with pytest.raises(ValueError, match="velocity_6d"):
        rep.accumulate_trajectory(torch.zeros(4, 6), torch.zeros(5, 3))


def test_anchored_local_joints_keep_the_predicted_change_of_shape():
    from ghtt_core.representation import JOINT_SLICES, anchor_local_joints, local_joints_at

    gen = _gen(3)
    features = torch.randn(2, 5, 7, 153, generator=gen, dtype=torch.float64)  # (B, S, T, 153)
    observed = torch.randn(2, 2, 63, generator=gen, dtype=torch.float64)
    anchored = anchor_local_joints(features, observed)
    for hand, slots in enumerate(JOINT_SLICES):
        torch.testing.assert_close(anchored[:, :, 0, slots], observed[:, None, hand].expand(-1, 5, -1))
        torch.testing.assert_close(anchored[..., slots].diff(dim=2), features[..., slots].diff(dim=2))
    torch.testing.assert_close(anchored[..., 126:], features[..., 126:])  # velocities untouched
    base_index = torch.tensor([[6, 2], [0, 4]])
    picked = local_joints_at(features[:, 0], base_index)
    torch.testing.assert_close(picked[1, 0], features[1, 0, 0, JOINT_SLICES[0]])
    torch.testing.assert_close(picked[0, 1], features[0, 0, 2, JOINT_SLICES[1]])
