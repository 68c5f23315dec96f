"""The paper's metrics (method-notes section 9): MPJPE variants, action accuracy, ADE/FDE, APD and FID.

Layouts (docs/conventions.md): joints (..., T, 2, 21, 3) in metres, presence (..., T, 2) bool, frame_valid (..., T)
bool. Every distance is reported in millimetres, per hand (index 0 = left, 1 = right). A hand that does not count
(absent, or in a padded frame) is excluded: its values may be anything, even NaN, and it never adds zeros to a mean.
A hand with nothing to count gets NaN as its mean and 0 as its count. Exact definitions: docs/metrics.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg
import torch

from ghtt_core.geometry import similarity_procrustes
from ghtt_core.representation import _last_present_index
from ghtt_core.skeleton import NUM_HANDS, NUM_JOINTS, RA_JOINTS, USED_JOINTS, palm_size

MM_PER_METRE = 1000.0
SAMPLE_MODES = ("mean", "best")

# Stands in for excluded hands before any computation, so that NaN or degenerate values there never reach an SVD or
# a division (a helix: no three points collinear, palm size > 0).
_PLACEHOLDER_ANGLES = torch.arange(NUM_JOINTS, dtype=torch.float64)
_PLACEHOLDER_HAND = 0.05 * torch.stack(
    (torch.cos(_PLACEHOLDER_ANGLES), torch.sin(_PLACEHOLDER_ANGLES), _PLACEHOLDER_ANGLES / NUM_JOINTS), dim=-1
)


@dataclass
class HandMetric:
    """A per-hand metric in mm.

    values: (..., 2) one number per evaluated item (a frame for MPJPE, a window for ADE/FDE/APD) and hand; NaN where
            the hand is excluded.
    mean:   (2,) [left, right] mean over the counted items; NaN for a hand with count 0.
    count:  (2,) number of counted items per hand.
    """

    values: torch.Tensor
    mean: torch.Tensor
    count: torch.Tensor


@dataclass
class HorizonCurve:
    """Error per future frame index: mean (T, 2) mm over the windows where that frame counts (NaN if none) and
    count (T, 2)."""

    mean: torch.Tensor
    count: torch.Tensor


def _masked_mean(values: torch.Tensor, counted: torch.Tensor, dim) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean of values over `dim` where counted; NaN where nothing counts. Returns (mean, count)."""
    count = counted.sum(dim=dim)
    total = torch.where(counted, values, torch.zeros_like(values)).sum(dim=dim)
    nan = torch.full_like(total, float("nan"))
    return torch.where(count > 0, total / count.clamp_min(1), nan), count


def _hand_metric(values: torch.Tensor, counted: torch.Tensor) -> HandMetric:
    values = torch.where(counted, values, torch.full_like(values, float("nan")))
    mean, count = _masked_mean(values.reshape(-1, NUM_HANDS), counted.reshape(-1, NUM_HANDS), dim=0)
    return HandMetric(values, mean, count)


def _as_joints(name: str, joints) -> torch.Tensor:
    joints = torch.as_tensor(joints).to(torch.float64)
    if joints.dim() < 3 or tuple(joints.shape[-3:]) != (NUM_HANDS, NUM_JOINTS, 3):
        raise ValueError(f"{name} must be (..., 2, 21, 3), got {tuple(joints.shape)}")
    return joints


def _as_mask(name: str, mask, shape) -> torch.Tensor:
    mask = torch.as_tensor(mask)
    if mask.dtype != torch.bool or tuple(mask.shape) != tuple(shape):
        raise ValueError(f"{name} must be bool of shape {tuple(shape)}, got {mask.dtype} {tuple(mask.shape)}")
    return mask


def _counted_hands(presence, frame_valid, hands_shape) -> torch.Tensor:
    """presence (..., 2) AND frame_valid (...) -> which hands count."""
    counted = _as_mask("presence", presence, hands_shape)
    if frame_valid is not None:
        counted = counted & _as_mask("frame_valid", frame_valid, hands_shape[:-1]).unsqueeze(-1)
    return counted


def _with_placeholders(name: str, joints: torch.Tensor, counted: torch.Tensor) -> torch.Tensor:
    """Check that counted hands are finite and replace the others by the placeholder hand."""
    replaced = torch.where(counted[..., None, None], joints, _PLACEHOLDER_HAND.to(joints.device))
    if not torch.isfinite(replaced).all():  # the placeholder is finite: only a counted hand can fail
        raise ValueError(f"{name} has NaN or inf for a hand that counts")
    return replaced


def _pose_inputs(pred, gt, presence, frame_valid):
    pred, gt = _as_joints("pred", pred), _as_joints("gt", gt)
    if pred.shape != gt.shape:
        raise ValueError(f"pred and gt must have the same shape, got {tuple(pred.shape)} and {tuple(gt.shape)}")
    counted = _counted_hands(presence, frame_valid, pred.shape[:-2])
    return _with_placeholders("pred", pred, counted), _with_placeholders("gt", gt, counted), counted


def _mean_joint_distance(a: torch.Tensor, b: torch.Tensor, joints) -> torch.Tensor:
    """(..., 21, 3) x 2 in metres -> (...) mean Euclidean distance over `joints`, in mm."""
    joints = list(joints)
    return (a[..., joints, :] - b[..., joints, :]).norm(dim=-1).mean(dim=-1) * MM_PER_METRE


def _root_aligned(joints: torch.Tensor) -> torch.Tensor:
    return joints - joints[..., :1, :]


def _scale_aligned(pred_root_aligned: torch.Tensor, gt_root_aligned: torch.Tensor) -> torch.Tensor:
    """Scale the prediction so that its palm size equals the GT's (method-notes 9.1 step 2)."""
    ratio = palm_size(gt_root_aligned) / palm_size(pred_root_aligned).clamp_min(torch.finfo(torch.float64).tiny)
    return pred_root_aligned * ratio[..., None, None]


def mpjpe(pred, gt, presence, frame_valid=None) -> HandMetric:
    """Camera-space MPJPE: mean distance over joints {0, 2..20}, per frame and hand, in mm.

    pred, gt: (..., 2, 21, 3) metres (typically (..., T, 2, 21, 3)); presence: (..., 2) hands that count (the caller
    combines GT and prediction presence); frame_valid: (...) or None.
    """
    pred, gt, counted = _pose_inputs(pred, gt, presence, frame_valid)
    return _hand_metric(_mean_joint_distance(pred, gt, USED_JOINTS), counted)


def mpjpe_root_relative(pred, gt, presence, frame_valid=None) -> HandMetric:
    """MPJPE after subtracting the wrist from both (no scale), over joints {2..20}, in mm. Same layout as mpjpe."""
    pred, gt, counted = _pose_inputs(pred, gt, presence, frame_valid)
    return _hand_metric(_mean_joint_distance(_root_aligned(pred), _root_aligned(gt), RA_JOINTS), counted)


def mpjpe_ra(pred, gt, presence, frame_valid=None) -> HandMetric:
    """MPJPE-RA (method-notes 9.1): root alignment, then the prediction is scaled by palm_size(gt) / palm_size(pred);
    mean distance over joints {2..20}, in mm. Same layout as mpjpe."""
    pred, gt, counted = _pose_inputs(pred, gt, presence, frame_valid)
    gt_aligned = _root_aligned(gt)
    pred_aligned = _scale_aligned(_root_aligned(pred), gt_aligned)
    return _hand_metric(_mean_joint_distance(pred_aligned, gt_aligned, RA_JOINTS), counted)


def mpjpe_pa(pred, gt, presence, frame_valid=None) -> HandMetric:
    """MPJPE-PA (method-notes 9.1): the root- and palm-scale-aligned prediction is fitted to the root-aligned GT by a
    similarity Procrustes (rotation, uniform scale, translation; no reflection) on joints {0, 2..20}; mean distance
    over those joints, in mm. Same layout as mpjpe."""
    pred, gt, counted = _pose_inputs(pred, gt, presence, frame_valid)
    used = list(USED_JOINTS)
    gt_aligned = _root_aligned(gt)[..., used, :]
    pred_aligned = _scale_aligned(_root_aligned(pred), _root_aligned(gt))[..., used, :]
    fitted = similarity_procrustes(pred_aligned, gt_aligned)
    return _hand_metric((fitted - gt_aligned).norm(dim=-1).mean(dim=-1) * MM_PER_METRE, counted)


def _label_inputs(predicted, labels) -> tuple[torch.Tensor, torch.Tensor]:
    predicted, labels = torch.as_tensor(predicted), torch.as_tensor(labels)
    for name, value in (("predicted", predicted), ("labels", labels)):
        if value.dim() != 1 or value.dtype.is_floating_point or value.dtype == torch.bool:
            raise ValueError(f"{name} must be integer class indices of shape (N,), "
                             f"got {value.dtype} {tuple(value.shape)}")
    if predicted.shape != labels.shape or not len(labels):
        raise ValueError(f"predicted and labels must have the same non-empty length, "
                         f"got {len(predicted)} and {len(labels)}")
    return predicted.long(), labels.long()


def top1_accuracy(predicted, labels) -> float:
    """Micro-averaged top-1 accuracy: correct / total. predicted, labels: (N,) class indices."""
    predicted, labels = _label_inputs(predicted, labels)
    return (predicted == labels).double().mean().item()


def top_k_accuracy(ranked, labels) -> float:
    """Fraction of the N items whose label is among their k highest-ranked classes. ranked: (N, k) class indices,
    best first; labels: (N,)."""
    ranked = torch.as_tensor(ranked)
    if ranked.dim() != 2 or ranked.dtype.is_floating_point:
        raise ValueError(f"ranked must be integer class indices of shape (N, k), got {ranked.dtype} "
                         f"{tuple(ranked.shape)}")
    _, labels = _label_inputs(ranked[:, 0], labels)
    return (ranked == labels[:, None]).any(dim=1).double().mean().item()


def confusion_matrix(predicted, labels, num_classes: int) -> torch.Tensor:
    """(C, C) counts; row = true class, column = predicted class."""
    predicted, labels = _label_inputs(predicted, labels)
    if min(predicted.min(), labels.min()) < 0 or max(predicted.max(), labels.max()) >= num_classes:
        raise ValueError(f"class indices must be in [0, {num_classes})")
    return torch.bincount(labels * num_classes + predicted, minlength=num_classes**2).view(num_classes, num_classes)


def per_class_accuracy(predicted, labels, num_classes: int) -> torch.Tensor:
    """(C,) fraction of each true class predicted correctly (recall); NaN for classes without samples."""
    matrix = confusion_matrix(predicted, labels, num_classes).double()
    totals = matrix.sum(dim=1)
    return torch.where(totals > 0, matrix.diagonal() / totals.clamp_min(1), torch.full_like(totals, float("nan")))


def _check_mode(mode: str):
    if mode not in SAMPLE_MODES:
        raise ValueError(f"mode must be one of {SAMPLE_MODES}, got {mode!r}")


@dataclass
class SampleErrors:
    """Displacement errors of S predicted futures against one ground truth, computed once and reduced many ways.

    frames:  (..., S, T, 2) mm, per sample, future frame and hand: the mean distance over joints {0, 2..20} (values of
             hands that do not count are those of a placeholder hand: never read unmasked).
    counted: (..., T, 2) bool, the hands that count per future frame.
    """

    frames: torch.Tensor
    counted: torch.Tensor

    def samples(self, index) -> "SampleErrors":
        """The errors of the samples at `index` (a slice along S)."""
        return SampleErrors(self.frames[..., index, :, :], self.counted)

    def per_sample_ade(self) -> torch.Tensor:
        """(..., S, 2): the mean over the counted frames of each sample."""
        return _masked_mean(self.frames, self.counted.unsqueeze(-3), dim=-2)[0]

    def ade(self, mode: str = "mean") -> HandMetric:
        _check_mode(mode)
        return _hand_metric(_reduce_samples(self.per_sample_ade(), mode), self.counted.any(dim=-2))

    def fde(self, mode: str = "mean") -> HandMetric:
        _check_mode(mode)
        last = _last_present_index(self.counted)  # (..., 2)
        index = last.unsqueeze(-2).unsqueeze(-2).expand(*self.frames.shape[:-2], 1, NUM_HANDS)
        final = self.frames.gather(-2, index).squeeze(-2)  # (..., S, 2)
        return _hand_metric(_reduce_samples(final, mode), self.counted.any(dim=-2))

    def by_frame(self, sample: int = 0) -> torch.Tensor:
        """(..., T, 2) the errors of one sample, NaN where the hand does not count (as mpjpe's values)."""
        return torch.where(self.counted, self.frames[..., sample, :, :], float("nan"))


def sample_errors(samples, gt, presence, frame_valid=None) -> SampleErrors:
    """samples (..., S, T, 2, 21, 3) and gt (..., T, 2, 21, 3) metres; presence (..., T, 2) and frame_valid (..., T)
    say which future frames count per hand. Counted hands must be finite."""
    samples, gt = _as_joints("samples", samples), _as_joints("gt", gt)
    if samples.dim() < 5 or samples.shape[:-5] + samples.shape[-4:] != gt.shape:
        raise ValueError(f"samples must be (..., S, T, 2, 21, 3) and gt (..., T, 2, 21, 3), "
                         f"got {tuple(samples.shape)} and {tuple(gt.shape)}")
    counted = _counted_hands(presence, frame_valid, gt.shape[:-2])
    samples = _with_placeholders("samples", samples, counted.unsqueeze(-3))
    gt = _with_placeholders("gt", gt, counted)
    return SampleErrors(_mean_joint_distance(samples, gt.unsqueeze(-5), USED_JOINTS), counted)


def _reduce_samples(per_sample, mode):
    return per_sample.mean(dim=-2) if mode == "mean" else per_sample.amin(dim=-2)


def ade(samples, gt, presence, frame_valid=None, mode: str = "mean") -> HandMetric:
    """Average displacement error per window and hand, in mm (method-notes 9.6).

    samples: (..., S, T, 2, 21, 3) predicted camera-space joints (metres); gt: (..., T, 2, 21, 3); presence (..., T, 2)
    and frame_valid (..., T) say which future frames count per hand. Per sample: the mean over counted frames of the
    mean distance over joints {0, 2..20}; mode "mean" averages over samples, "best" takes the minimum.
    """
    _check_mode(mode)
    return sample_errors(samples, gt, presence, frame_valid).ade(mode)


def fde(samples, gt, presence, frame_valid=None, mode: str = "mean") -> HandMetric:
    """Final displacement error: as `ade`, but at each hand's last counted future frame only."""
    _check_mode(mode)
    return sample_errors(samples, gt, presence, frame_valid).fde(mode)


def error_by_horizon(samples, gt, presence, frame_valid=None, mode: str = "mean") -> HorizonCurve:
    """Displacement error per future frame index, averaged over windows (leading dims). Inputs as in `ade`.

    mode "mean": each window contributes its mean over samples; "best": the sample with the lowest ADE of that window
    and hand (the sample `ade(mode="best")` picks).
    """
    _check_mode(mode)
    errors = sample_errors(samples, gt, presence, frame_valid)
    frames, counted = errors.frames, errors.counted  # (..., S, T, 2), (..., T, 2)
    if mode == "mean":
        per_window = frames.mean(dim=-3)
    else:
        best = errors.per_sample_ade().nan_to_num(float("inf")).argmin(dim=-2)  # (..., 2)
        index = best[..., None, None, :].expand(*frames.shape[:-3], 1, frames.shape[-2], NUM_HANDS)
        per_window = frames.gather(-3, index).squeeze(-3)
    num_frames = counted.shape[-2]
    mean, count = _masked_mean(per_window.reshape(-1, num_frames, NUM_HANDS),
                               counted.reshape(-1, num_frames, NUM_HANDS), dim=0)
    return HorizonCurve(mean, count)


def apd(samples, presence, frame_valid=None) -> HandMetric:
    """Average pairwise distance per window and hand, in mm (method-notes 9.6).

    samples (..., S, T, 2, 21, 3) camera-space joints (metres), S >= 2; presence (..., T, 2) and frame_valid (..., T)
    say which frames count. APD = 2 / (S (S-1)) * sum over pairs i < j of the mean over counted frames and joints
    {0, 2..20} of |X_i - X_j|.
    """
    samples = _as_joints("samples", samples)
    if samples.dim() < 5:
        raise ValueError(f"samples must be (..., S, T, 2, 21, 3), got {tuple(samples.shape)}")
    num_samples = samples.shape[-5]
    if num_samples < 2:
        raise ValueError(f"APD needs at least 2 samples, got {num_samples}")
    counted = _counted_hands(presence, frame_valid, samples.shape[:-5] + samples.shape[-4:-2])
    samples = _with_placeholders("samples", samples, counted.unsqueeze(-3))
    # One (S, S) distance matrix per (..., frame, hand, joint): cdist does all pairs in one kernel, where a loop over
    # pairs would materialise S - 1 differences of the whole batch.
    points = samples[..., list(USED_JOINTS), :].movedim(-5, -2)  # (..., T, 2, J, S, 3)
    flat = points.flatten(0, -3)
    distances = torch.cdist(flat, flat, compute_mode="donot_use_mm_for_euclid_dist").unflatten(0, points.shape[:-2])
    pair_sum = distances.sum(dim=(-2, -1)).mean(dim=-1) * (MM_PER_METRE / 2.0)  # each pair twice: (..., T, 2)
    pair_mean = pair_sum * 2.0 / (num_samples * (num_samples - 1))
    per_window = _masked_mean(pair_mean, counted, dim=-2)[0]
    return _hand_metric(per_window, counted.any(dim=-2))


def gaussian_statistics(features) -> tuple[np.ndarray, np.ndarray]:
    """features (N, D), N >= 2 -> mean (D,) and covariance (D, D) (unbiased, as numpy.cov)."""
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2 or len(features) < 2:
        raise ValueError(f"features must be (N >= 2, D), got {features.shape}")
    return features.mean(axis=0), np.cov(features, rowvar=False).reshape(features.shape[1], features.shape[1])


def frechet_distance(mu1, sigma1, mu2, sigma2, eps: float = 1e-6) -> float:
    """|mu1 - mu2|^2 + Tr(sigma1 + sigma2 - 2 (sigma1 sigma2)^(1/2)) (method-notes 9.4).

    The matrix square root is scipy's sqrtm; when it is not finite, eps is added to both diagonals and it is
    recomputed. Its real part is used.
    """
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    sigma1, sigma2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    dim = len(mu1)
    if mu2.shape != (dim,) or sigma1.shape != (dim, dim) or sigma2.shape != (dim, dim):
        raise ValueError(f"need mu (D,) and sigma (D, D) for both sets, got {mu1.shape}, {sigma1.shape}, "
                         f"{mu2.shape}, {sigma2.shape}")
    covariance_sqrt = scipy.linalg.sqrtm(sigma1 @ sigma2)
    if not np.isfinite(covariance_sqrt).all():
        offset = np.eye(dim) * eps
        covariance_sqrt = scipy.linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(np.real(covariance_sqrt)))


def fid(features_a, features_b) -> float:
    """Frechet distance between Gaussians fitted to two feature sets (N_a, D) and (N_b, D)."""
    return frechet_distance(*gaussian_statistics(features_a), *gaussian_statistics(features_b))


@dataclass
class PairedDifference:
    """mean of (a - b) over the entries where both count, with a bootstrap confidence interval (same unit as a, b)."""

    mean: float
    ci_low: float
    ci_high: float
    entries: int
    windows: int

    def to_dict(self) -> dict:
        return {"mean": self.mean, "ci95": [self.ci_low, self.ci_high], "entries": self.entries,
                "windows": self.windows}


def paired_difference(a, b, num_resamples: int = 2000, confidence: float = 0.95, seed: int = 0) -> PairedDifference:
    """Paired comparison of two per-window, per-hand metrics a, b (W, 2) (e.g. HandMetric.values of two predictors on
    the same windows; NaN = does not count).

    The mean difference is taken over the (window, hand) entries where both count, as the overall metric means are.
    The interval is a percentile bootstrap that resamples whole windows (both hands of a window are correlated), so
    "the interval excludes 0" means the difference is unlikely to come from the choice of windows.
    """
    a, b = torch.as_tensor(a, dtype=torch.float64), torch.as_tensor(b, dtype=torch.float64)
    if a.shape != b.shape or a.dim() != 2:
        raise ValueError(f"a and b must both be (W, hands), got {tuple(a.shape)} and {tuple(b.shape)}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    counted = ~(torch.isnan(a) | torch.isnan(b))
    window_sum = torch.where(counted, a - b, 0.0).sum(dim=1)
    window_count = counted.sum(dim=1).double()
    used = window_count > 0
    window_sum, window_count = window_sum[used], window_count[used]
    if not len(window_sum):
        nan = float("nan")
        return PairedDifference(nan, nan, nan, 0, 0)
    generator = torch.Generator().manual_seed(seed)
    picks = torch.randint(len(window_sum), (num_resamples, len(window_sum)), generator=generator)
    resampled = window_sum[picks].sum(dim=1) / window_count[picks].sum(dim=1)
    tail = (1.0 - confidence) / 2.0
    low, high = torch.quantile(resampled, torch.tensor([tail, 1.0 - tail], dtype=torch.float64)).tolist()
    return PairedDifference(float(window_sum.sum() / window_count.sum()), low, high, int(window_count.sum()),
                            len(window_sum))
