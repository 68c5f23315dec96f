import math

import numpy as np
import pytest
import torch

from ghtt_core.evaluate import metrics
from ghtt_core.geometry import random_rotation


def random_hands(*shape, seed=0):
    """(*shape, 2, 21, 3) hand-sized random joints (metres), away from the origin."""
    generator = torch.Generator().manual_seed(seed)
    centre = torch.tensor([0.1, 0.0, 0.5], dtype=torch.float64)
    return 0.05 * torch.randn(*shape, 2, 21, 3, generator=generator, dtype=torch.float64) + centre


def all_present(*shape):
    return torch.ones(*shape, 2, dtype=torch.bool)


def test_similarity_transform_gives_zero_pa_but_not_zero_camera_error():
    gt = random_hands(4, 6)
    rotation = random_rotation((4, 6, 2), generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    pred = 1.4 * gt @ rotation + torch.tensor([0.2, -0.1, 0.3], dtype=torch.float64)
    presence = all_present(4, 6)
    pa = metrics.mpjpe_pa(pred, gt, presence)
    assert pa.values.shape == (4, 6, 2)
    assert torch.allclose(pa.mean, torch.zeros(2, dtype=torch.float64), atol=1e-9)
    assert (metrics.mpjpe(pred, gt, presence).mean > 10.0).all()
    assert (metrics.mpjpe_ra(pred, gt, presence).mean > 1.0).all()


def test_uniform_scale_and_translation_give_zero_ra_but_not_zero_root_relative():
    gt = random_hands(5)
    pred = 0.7 * gt + torch.tensor([0.05, 0.02, -0.1], dtype=torch.float64)
    presence = all_present(5)
    assert torch.allclose(metrics.mpjpe_ra(pred, gt, presence).mean, torch.zeros(2, dtype=torch.float64), atol=1e-9)
    assert (metrics.mpjpe_root_relative(pred, gt, presence).mean > 1.0).all()


def test_known_offset():
    gt = random_hands(3)
    pred = gt + torch.tensor([0.003, 0.004, 0.0], dtype=torch.float64)
    presence = all_present(3)
    camera = metrics.mpjpe(pred, gt, presence)
    assert torch.allclose(camera.values, torch.full((3, 2), 5.0, dtype=torch.float64))
    assert camera.count.tolist() == [3, 3]
    assert torch.allclose(metrics.mpjpe_root_relative(pred, gt, presence).mean, torch.zeros(2, dtype=torch.float64),
                          atol=1e-9)


def test_one_moved_fingertip_is_averaged_over_the_right_joints():
    gt = random_hands(1)
    pred = gt.clone()
    pred[..., 8, 0] += 0.019  # index tip: 19 mm, palm size unchanged
    presence = all_present(1)
    assert torch.allclose(metrics.mpjpe_ra(pred, gt, presence).mean, torch.ones(2, dtype=torch.float64))  # 19 / 19
    assert torch.allclose(metrics.mpjpe(pred, gt, presence).mean, torch.full((2,), 0.95, dtype=torch.float64))  # / 20


def test_joint_one_never_counts():
    gt = random_hands(2)
    pred = gt.clone()
    pred[..., 1, :] += 1.0
    presence = all_present(2)
    for metric in (metrics.mpjpe, metrics.mpjpe_root_relative, metrics.mpjpe_ra, metrics.mpjpe_pa):
        assert torch.allclose(metric(pred, gt, presence).mean, torch.zeros(2, dtype=torch.float64), atol=1e-9)


def test_absent_hands_and_padded_frames_are_excluded_not_zero():
    gt = random_hands(4)
    pred = gt + torch.tensor([0.0, 0.0, 0.002], dtype=torch.float64)
    pred[2, 0, :, 2] += 0.010  # left hand, frame 2: 12 mm error
    presence = all_present(4)
    presence[:, 1] = False  # right hand never present
    pred[:, 1] = float("nan")
    frame_valid = torch.tensor([True, True, True, False])
    pred[3] = float("nan")
    result = metrics.mpjpe(pred, gt, presence, frame_valid)
    assert result.count.tolist() == [3, 0]
    assert result.mean[0].item() == pytest.approx((2 + 2 + 12) / 3)
    assert math.isnan(result.mean[1].item())
    assert torch.isnan(result.values[:, 1]).all() and torch.isnan(result.values[3, 0])
    assert torch.isfinite(metrics.mpjpe_pa(pred, gt, presence, frame_valid).mean[0])


def test_nan_in_a_counted_hand_is_an_error():
    gt = random_hands(2)
    pred = gt.clone()
    pred[0, 0, 3, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        metrics.mpjpe(pred, gt, all_present(2))


def test_accuracy_confusion_and_per_class():
    predicted = torch.tensor([0, 1, 1, 2])
    labels = torch.tensor([0, 1, 2, 2])
    assert metrics.top1_accuracy(predicted, labels) == pytest.approx(0.75)
    matrix = metrics.confusion_matrix(predicted, labels, num_classes=4)
    expected = torch.zeros(4, 4, dtype=torch.long)
    expected[0, 0] = expected[1, 1] = expected[2, 1] = expected[2, 2] = 1
    assert torch.equal(matrix, expected)
    per_class = metrics.per_class_accuracy(predicted, labels, num_classes=4)
    assert per_class[:3].tolist() == [1.0, 1.0, 0.5]
    assert math.isnan(per_class[3].item())


def test_top_k_accuracy_counts_the_label_anywhere_in_the_first_k():
    ranked = torch.tensor([[2, 0, 1], [1, 2, 0], [0, 1, 2], [2, 1, 0]])
    labels = torch.tensor([0, 1, 2, 2])
    assert metrics.top_k_accuracy(ranked[:, :1], labels) == metrics.top1_accuracy(ranked[:, 0], labels) == 0.5
    assert metrics.top_k_accuracy(ranked[:, :2], labels) == 0.75
    assert metrics.top_k_accuracy(ranked, labels) == 1.0
    with pytest.raises(ValueError, match="ranked"):
        metrics.top_k_accuracy(ranked[:, 0], labels)


def displaced_samples():
    """Two samples of 3 future frames: sample a is 1, 2, 3 mm off along x per frame, sample b 3 mm throughout."""
    gt = random_hands(3)
    offsets_mm = torch.tensor([[1.0, 2.0, 3.0], [3.0, 3.0, 3.0]], dtype=torch.float64)  # (S, T)
    shift = torch.zeros(2, 3, 1, 1, 3, dtype=torch.float64)
    shift[..., 0] = offsets_mm[:, :, None, None] / 1000.0
    samples = gt.unsqueeze(0) + shift
    presence = all_present(3)
    presence[2, 1] = False  # right hand: only frames 0 and 1 count
    samples[:, 2, 1] = float("nan")
    return samples, gt, presence


def test_ade_fde_by_hand():
    samples, gt, presence = displaced_samples()
    ade_mean = metrics.ade(samples, gt, presence, mode="mean")
    ade_best = metrics.ade(samples, gt, presence, mode="best")
    fde_mean = metrics.fde(samples, gt, presence, mode="mean")
    fde_best = metrics.fde(samples, gt, presence, mode="best")
    assert ade_mean.mean.tolist() == pytest.approx([(2 + 3) / 2, (1.5 + 3) / 2])
    assert ade_best.mean.tolist() == pytest.approx([2.0, 1.5])
    assert fde_mean.mean.tolist() == pytest.approx([3.0, (2 + 3) / 2])
    assert fde_best.mean.tolist() == pytest.approx([3.0, 2.0])


def test_error_by_horizon():
    samples, gt, presence = displaced_samples()
    curve = metrics.error_by_horizon(samples, gt, presence, mode="mean")
    assert curve.mean[:, 0].tolist() == pytest.approx([2.0, 2.5, 3.0])
    assert curve.mean[:2, 1].tolist() == pytest.approx([2.0, 2.5])
    assert math.isnan(curve.mean[2, 1].item()) and curve.count[2].tolist() == [1, 0]
    best = metrics.error_by_horizon(samples, gt, presence, mode="best")
    assert best.mean[:, 0].tolist() == pytest.approx([1.0, 2.0, 3.0])


def test_windows_without_the_hand_are_excluded_from_ade():
    samples, gt, presence = displaced_samples()
    samples = torch.stack([samples, samples])  # 2 windows
    gt = torch.stack([gt, gt])
    presence = torch.stack([presence, presence])
    presence[1, :, 1] = False
    result = metrics.ade(samples, gt, presence)
    assert result.count.tolist() == [2, 1]
    assert result.mean.tolist() == pytest.approx([2.5, 2.25])


def test_apd():
    gt = random_hands(4)
    presence = all_present(4)
    identical = gt.expand(5, 4, 2, 21, 3)
    assert metrics.apd(identical, presence).mean.tolist() == pytest.approx([0.0, 0.0], abs=1e-9)
    d = 0.007
    shift = torch.tensor([0.0, d, 0.0], dtype=torch.float64)
    two = torch.stack([gt, gt + shift])
    assert metrics.apd(two, presence).mean.tolist() == pytest.approx([7.0, 7.0])
    three = torch.stack([gt, gt + shift, gt + 2 * shift])  # pairs d, 2d, d
    assert metrics.apd(three, presence).mean.tolist() == pytest.approx([4 * 7.0 / 3] * 2)


def test_apd_ignores_frames_that_do_not_count():
    gt = random_hands(3)
    samples = torch.stack([gt, gt + torch.tensor([0.004, 0.0, 0.0], dtype=torch.float64)])
    samples[1, 2] += 1.0  # a wild last frame, padded
    frame_valid = torch.tensor([True, True, False])
    presence = all_present(3)
    presence[:, 0] = False
    result = metrics.apd(samples, presence, frame_valid)
    assert result.count.tolist() == [0, 1]
    assert math.isnan(result.mean[0].item()) and result.mean[1].item() == pytest.approx(4.0)


def test_apd_of_many_samples_is_the_mean_over_all_pairs():
    samples = random_hands(30, 2, 5, seed=3)  # (S = 30, W = 2, T = 5, 2, 21, 3)
    presence = all_present(2, 5)
    presence[1, 3:, 0] = False
    used = [0, *range(2, 21)]
    pairs = [(samples[i] - samples[j])[..., used, :].norm(dim=-1).mean(dim=-1) * 1000.0
             for i in range(30) for j in range(i + 1, 30)]  # each (W, T, 2)
    expected = torch.stack(pairs).mean(dim=0)
    expected = torch.where(presence, expected, 0.0).sum(dim=1) / presence.sum(dim=1)
    torch.testing.assert_close(metrics.apd(samples.movedim(0, 1), presence).values, expected)
    identical = samples[:1].expand(30, -1, -1, -1, -1, -1).movedim(0, 1)
    assert metrics.apd(identical, presence).values.abs().max().item() == 0.0


def test_shared_sample_errors_give_the_public_metrics():
    samples, gt, presence = displaced_samples()
    errors = metrics.sample_errors(samples, gt, presence)
    for mode in metrics.SAMPLE_MODES:
        torch.testing.assert_close(errors.ade(mode).values, metrics.ade(samples, gt, presence, mode=mode).values,
                                   equal_nan=True)
        torch.testing.assert_close(errors.fde(mode).values, metrics.fde(samples, gt, presence, mode=mode).values,
                                   equal_nan=True)
    torch.testing.assert_close(errors.by_frame(1), metrics.mpjpe(samples[1], gt, presence).values, equal_nan=True)
    first = errors.samples(slice(0, 1))
    torch.testing.assert_close(first.ade().values, metrics.ade(samples[:1], gt, presence).values, equal_nan=True)


def test_frechet_distance_closed_forms():
    mu = np.array([1.0, -2.0, 0.5])
    sigma = np.array([[2.0, 0.3, 0.0], [0.3, 1.0, 0.1], [0.0, 0.1, 0.5]])
    assert metrics.frechet_distance(mu, sigma, mu, sigma) == pytest.approx(0.0, abs=1e-9)
    shift = np.array([3.0, 0.0, -4.0])
    assert metrics.frechet_distance(mu, sigma, mu + shift, sigma) == pytest.approx(25.0)
    a, b = np.array([4.0, 1.0]), np.array([1.0, 9.0])  # diagonal: sum (sqrt a - sqrt b)^2
    assert metrics.frechet_distance(np.zeros(2), np.diag(a), np.zeros(2), np.diag(b)) == pytest.approx(1.0 + 4.0)


def test_fid_of_feature_sets():
    features = np.random.default_rng(0).normal(size=(200, 8))
    assert metrics.fid(features, features) == pytest.approx(0.0, abs=1e-6)
    shift = np.linspace(-1.0, 1.0, 8)
    assert metrics.fid(features, features + shift) == pytest.approx(float(shift @ shift), rel=1e-6)


def test_paired_difference_mean_ignores_entries_where_either_side_does_not_count():
    a = torch.tensor([[10.0, 20.0], [30.0, float("nan")], [float("nan"), float("nan")]])
    b = torch.tensor([[8.0, 21.0], [25.0, 1.0], [3.0, float("nan")]])
    result = metrics.paired_difference(a, b)
    assert result.mean == pytest.approx((2.0 - 1.0 + 5.0) / 3)
    assert (result.entries, result.windows) == (3, 2)
    assert result.ci_low <= result.mean <= result.ci_high


def test_paired_difference_interval_covers_a_known_shift_and_shrinks_with_more_windows():
    generator = torch.Generator().manual_seed(0)
    widths = []
    for windows in (50, 800):
        b = 100.0 + 30.0 * torch.randn(windows, 2, generator=generator, dtype=torch.float64)
        a = b + 2.0 + 5.0 * torch.randn(windows, 2, generator=generator, dtype=torch.float64)
        result = metrics.paired_difference(a, b, seed=1)
        assert result.ci_low < 2.0 < result.ci_high
        widths.append(result.ci_high - result.ci_low)
    assert widths[1] < widths[0] / 2  # about 1/sqrt(16)
    identical = metrics.paired_difference(b, b)
    assert (identical.mean, identical.ci_low, identical.ci_high) == (0.0, 0.0, 0.0)


def test_paired_difference_rejects_mismatched_inputs():
    with pytest.raises(ValueError, match="must both be"):
        metrics.paired_difference(torch.zeros(3, 2), torch.zeros(4, 2))
    empty = metrics.paired_difference(torch.full((2, 2), float("nan")), torch.zeros(2, 2))
    assert empty.entries == 0 and math.isnan(empty.mean)
