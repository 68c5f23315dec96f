import math

import pytest
import torch

from ghtt_core import geometry as g


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _assert_proper_rotation(R, atol=1e-5):
    eye = torch.eye(3, dtype=R.dtype).expand_as(R)
    torch.testing.assert_close(R @ R.transpose(-1, -2), eye, atol=atol, rtol=0)
    torch.testing.assert_close(torch.det(R), torch.ones(R.shape[:-2], dtype=R.dtype), atol=atol, rtol=0)


def test_6d_round_trip_and_first_two_rows():
    R = g.random_rotation((4, 7), generator=_gen())
    d6 = g.matrix_to_rotation_6d(R)
    assert d6.shape == (4, 7, 6)
    torch.testing.assert_close(d6[..., :3], R[..., 0, :])
    torch.testing.assert_close(d6[..., 3:], R[..., 1, :])
    torch.testing.assert_close(g.rotation_6d_to_matrix(d6), R, atol=1e-6, rtol=0)


def test_6d_gram_schmidt_of_perturbed_input_is_rotation_keeping_first_row_direction():
    d6 = torch.randn(100, 6, generator=_gen(1)) * 3.0
    R = g.rotation_6d_to_matrix(d6)
    _assert_proper_rotation(R)
    torch.testing.assert_close(R[:, 0], d6[:, :3] / d6[:, :3].norm(dim=-1, keepdim=True), atol=1e-6, rtol=0)
    # The second row stays in the plane spanned by the two input vectors.
    normal = torch.linalg.cross(d6[:, :3], d6[:, 3:], dim=-1)
    assert (R[:, 1] * normal).sum(-1).abs().max() < 1e-4 * normal.norm(dim=-1).max()


def test_6d_gradients_finite_for_nearly_parallel_input():
    d6 = torch.tensor([[1.0, 0.0, 0.0, 1.0, 1e-7, 0.0], [1e-9, 0.0, 0.0, 0.0, 1.0, 0.0]], requires_grad=True)
    R = g.rotation_6d_to_matrix(d6)
    (R * torch.randn(R.shape, generator=_gen(2))).sum().backward()
    assert torch.isfinite(R).all() and torch.isfinite(d6.grad).all()


def test_axis_angle_row_vector_convention_90_deg_about_z():
    R = g.axis_angle_to_matrix(torch.tensor([0.0, 0.0, math.pi / 2]))
    # x @ R rotates +x onto +y (counter-clockwise about +z), i.e. R is the transposed column-vector matrix.
    torch.testing.assert_close(torch.tensor([1.0, 0.0, 0.0]) @ R, torch.tensor([0.0, 1.0, 0.0]), atol=1e-6, rtol=0)
    torch.testing.assert_close(torch.tensor([0.0, 1.0, 0.0]) @ R, torch.tensor([-1.0, 0.0, 0.0]), atol=1e-6, rtol=0)


@pytest.mark.parametrize("angle", [0.0, 1e-9, 1e-5, 1e-3, 0.7, 2.5, math.pi - 1e-3, math.pi - 1e-6, math.pi])
def test_axis_angle_round_trip_including_near_zero_and_pi(angle):
    axes = torch.nn.functional.normalize(torch.randn(50, 3, generator=_gen(3), dtype=torch.float64), dim=-1)
    aa = axes * angle
    R = g.axis_angle_to_matrix(aa)
    _assert_proper_rotation(R, atol=1e-12)
    back = g.matrix_to_axis_angle(R)
    if angle > math.pi - 1e-4:
        # At pi the axis sign is ambiguous; compare the rotations and the angle.
        torch.testing.assert_close(g.axis_angle_to_matrix(back), R, atol=1e-9, rtol=0)
        torch.testing.assert_close(back.norm(dim=-1), aa.norm(dim=-1), atol=1e-6, rtol=0)
    else:
        torch.testing.assert_close(back, aa, atol=1e-10, rtol=0)


def test_axis_angle_gradients_finite_at_zero_and_pi():
    aa = torch.tensor([[0.0, 0.0, 0.0], [0.0, 0.0, math.pi], [1e-6, 0.0, 0.0]], requires_grad=True)
    R = g.axis_angle_to_matrix(aa)
    back = g.matrix_to_axis_angle(R)
    (back.sum() + R.sum()).backward()
    assert torch.isfinite(aa.grad).all()
    # d(R)/d(aa) at zero is the skew generator: x @ R ~ x + aa x x (first order).
    R_small = g.axis_angle_to_matrix(torch.tensor([0.0, 0.0, 1e-4], dtype=torch.float64))
    torch.testing.assert_close(R_small[0, 1], torch.tensor(1e-4, dtype=torch.float64), atol=1e-12, rtol=0)


def test_quaternion_known_case_and_round_trip():
    s = math.sqrt(0.5)
    R = g.quaternion_xyzw_to_matrix(torch.tensor([0.0, 0.0, s, s]))
    expected = g.axis_angle_to_matrix(torch.tensor([0.0, 0.0, math.pi / 2]))
    torch.testing.assert_close(R, expected, atol=1e-6, rtol=0)
    torch.testing.assert_close(torch.tensor([1.0, 0.0, 0.0]) @ R, torch.tensor([0.0, 1.0, 0.0]), atol=1e-6, rtol=0)

    R = g.random_rotation((200,), generator=_gen(4), dtype=torch.float64)
    q = g.matrix_to_quaternion_xyzw(R)
    assert (q[:, 3] >= 0).all()
    torch.testing.assert_close(q.norm(dim=-1), torch.ones(200, dtype=torch.float64))
    torch.testing.assert_close(g.quaternion_xyzw_to_matrix(q), R, atol=1e-12, rtol=0)
    # 180 degree rotations (w = 0): every Shepperd branch but the w one is exercised.
    flips = g.axis_angle_to_matrix(torch.eye(3, dtype=torch.float64) * math.pi)
    torch.testing.assert_close(g.quaternion_xyzw_to_matrix(g.matrix_to_quaternion_xyzw(flips)), flips, atol=1e-12,
                               rtol=0)


def test_axis_angle_and_quaternion_agree():
    aa = torch.randn(30, 3, generator=_gen(5), dtype=torch.float64)
    angle = aa.norm(dim=-1, keepdim=True)
    q = torch.cat((aa / angle * torch.sin(angle / 2), torch.cos(angle / 2)), dim=-1)
    torch.testing.assert_close(g.quaternion_xyzw_to_matrix(q), g.axis_angle_to_matrix(aa), atol=1e-12, rtol=0)


def test_compose_invert_relative_identities():
    gen = _gen(6)
    R1, R2 = g.random_rotation((2, 5), generator=gen, dtype=torch.float64).unbind(0)
    t1, t2 = torch.randn(2, 5, 3, generator=gen, dtype=torch.float64).unbind(0)
    x = torch.randn(5, 8, 3, generator=gen, dtype=torch.float64)

    R_id, t_id = g.compose_transforms(R1, t1, *g.invert_transform(R1, t1))
    torch.testing.assert_close(R_id, torch.eye(3, dtype=torch.float64).expand(5, 3, 3))
    torch.testing.assert_close(t_id, torch.zeros(5, 3, dtype=torch.float64))

    R12, t12 = g.compose_transforms(R1, t1, R2, t2)
    torch.testing.assert_close(g.apply_transform(x, R12, t12), g.apply_transform(g.apply_transform(x, R1, t1), R2, t2))

    # c->a = (R1, t1), c->b = (R2, t2): the a->b transform maps x_a to x_b for the same point.
    R_ab, t_ab = g.relative_transform(R1, t1, R2, t2)
    torch.testing.assert_close(g.apply_transform(g.apply_transform(x, R1, t1), R_ab, t_ab),
                               g.apply_transform(x, R2, t2))


def test_kabsch_recovers_transform_exactly_and_with_noise():
    gen = _gen(7)
    source = torch.randn(10, 12, 3, generator=gen)
    R_true = g.random_rotation((10,), generator=gen)
    t_true = torch.randn(10, 3, generator=gen)
    target = g.apply_transform(source, R_true, t_true)
    R, t = g.kabsch(source, target)
    torch.testing.assert_close(R, R_true, atol=1e-5, rtol=0)
    torch.testing.assert_close(t, t_true, atol=1e-5, rtol=0)

    noisy = target + 0.01 * torch.randn(target.shape, generator=gen)
    R, t = g.kabsch(source, noisy)
    assert (R - R_true).abs().max() < 0.02 and (t - t_true).abs().max() < 0.03

    # Zero weights remove outliers entirely.
    corrupted = target.clone()
    corrupted[:, 0] += 5.0
    weights = torch.ones(10, 12)
    weights[:, 0] = 0.0
    R, t = g.kabsch(source, corrupted, weights)
    torch.testing.assert_close(R, R_true, atol=1e-5, rtol=0)
    torch.testing.assert_close(t, t_true, atol=1e-5, rtol=0)


def test_kabsch_never_returns_a_reflection():
    gen = _gen(8)
    source = torch.randn(20, 6, 3, generator=gen)
    mirrored = source * torch.tensor([-1.0, 1.0, 1.0])
    R, _ = g.kabsch(source, mirrored)
    _assert_proper_rotation(R)


def test_similarity_procrustes_recovers_scale_and_fixes_reflection():
    gen = _gen(9)
    source = torch.randn(6, 20, 3, generator=gen, dtype=torch.float64)
    scale = torch.rand(6, 1, 1, generator=gen, dtype=torch.float64) + 0.5
    target = scale * g.apply_transform(source, g.random_rotation((6,), generator=gen, dtype=torch.float64),
                                       torch.randn(6, 3, generator=gen, dtype=torch.float64))
    torch.testing.assert_close(g.similarity_procrustes(source, target), target, atol=1e-10, rtol=0)

    mirrored = source * torch.tensor([-1.0, 1.0, 1.0], dtype=torch.float64)
    aligned = g.similarity_procrustes(source, mirrored)
    R, _ = g.kabsch(source - source.mean(-2, keepdim=True), aligned - aligned.mean(-2, keepdim=True))
    _assert_proper_rotation(R, atol=1e-10)
    assert (aligned - mirrored).norm(dim=-1).mean() < (source - mirrored).norm(dim=-1).mean()


def test_gradients_finite_through_kabsch_and_procrustes():
    gen = _gen(10)
    source = torch.randn(4, 5, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    target = g.apply_transform(source.detach(), g.random_rotation((4,), generator=gen, dtype=torch.float64),
                               torch.zeros(4, 3, dtype=torch.float64))
    R, t = g.kabsch(source, target + 0.01)
    aligned = g.similarity_procrustes(source, target)
    (R.sum() + t.sum() + aligned.square().sum()).backward()
    assert torch.isfinite(source.grad).all()


def test_bad_shapes_raise_value_error():
    with pytest.raises(ValueError, match="d6"):
        g.rotation_6d_to_matrix(torch.zeros(3, 5))
    with pytest.raises(ValueError, match="source and target"):
        g.kabsch(torch.zeros(4, 3), torch.zeros(5, 3))
    with pytest.raises(ValueError, match="weights"):
        g.kabsch(torch.zeros(4, 3), torch.zeros(4, 3), torch.ones(3))


def test_float64_precision_and_dtype_kept():
    R = g.random_rotation((3,), generator=_gen(11), dtype=torch.float64)
    for out in (g.matrix_to_rotation_6d(R), g.matrix_to_axis_angle(R), g.matrix_to_quaternion_xyzw(R)):
        assert out.dtype == torch.float64
    torch.testing.assert_close(g.axis_angle_to_matrix(g.matrix_to_axis_angle(R)), R, atol=1e-13, rtol=0)


def test_mean_rotation_of_noisy_copies_is_close_to_the_true_rotation():
    generator = torch.Generator().manual_seed(3)
    truth = g.random_rotation((), generator=generator, dtype=torch.float64)
    noise = g.axis_angle_to_matrix(torch.randn(200, 3, generator=generator, dtype=torch.float64) * 0.05)
    rotations = noise @ truth
    weights = torch.ones(200, dtype=torch.float64)
    weights[:100] = 0.0
    rotations[:100] = g.random_rotation((100,), generator=generator, dtype=torch.float64)  # ignored
    mean = g.mean_rotation(rotations, weights, dim=0)
    assert g.matrix_to_axis_angle(mean @ truth.T).norm() < 0.02
    torch.testing.assert_close(mean @ mean.T, torch.eye(3, dtype=torch.float64))
    assert torch.det(mean) > 0
