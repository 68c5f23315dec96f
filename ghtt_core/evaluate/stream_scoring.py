"""Scores a stream of pipeline outputs (refined clips, recognitions, predictions) against the ground truth of the same
stream, matched by stamp. ROS-free: the rosbag evaluation (ghtt_ros.bag.evaluation) fills these types from a bag or
from an in-process StreamingPipeline, and both give the same scores for the same outputs.

Metrics (docs/metrics.md, all distances in mm as [left, right]):
- refinement: MPJPE, MPJPE-RA, MPJPE-PA of the input poses and of the refined poses, on frames where the hand is in
  the ground truth and in the scored poses (the newest refined clip wins where clips overlap);
- recognition: top-1 accuracy over time (every recognition whose stamp lies inside a labelled action) and at the end
  of each action (the last recognition inside it), plus accuracy by the fraction of the action observed;
- prediction: ADE / FDE (mean over samples and best sample), ADE of sample 0, APD, and the error by horizon; predicted
  frame j of a prediction stamped s is matched to the ground-truth frame stamped s + (j + 1) * period (within half
  a period); frames after the end of the stream do not count. With the input poses, the zero-velocity baseline (each
  hand's last input pose up to s, held) is scored on exactly the same frames: the row G-HTT has to beat;
- latency: percentiles of whatever latencies the caller measured (never compared between runs).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ghtt_core.evaluate.metrics import ade, apd, error_by_horizon, fde, mpjpe, mpjpe_pa, mpjpe_ra
from ghtt_core.results import Prediction

_NS_PER_S = 1_000_000_000
POSE_METRICS = {"mpjpe": mpjpe, "mpjpe_ra": mpjpe_ra, "mpjpe_pa": mpjpe_pa}
PROGRESS_BINS = 5
# Sections whose numbers describe this computer, not the model's outputs: left out of run comparisons.
TIMING_KEYS = ("latency_ms",)


@dataclass(frozen=True)
class ActionSpan:
    """A labelled action from the stamp of its first frame to the stamp of its last frame (inclusive)."""

    start_ns: int
    end_ns: int
    label: str

    def contains(self, stamp_ns: int) -> bool:
        return self.start_ns <= stamp_ns <= self.end_ns


@dataclass
class PoseStream:
    """Two-hand poses by stamp: stamps_ns (T,) int64 strictly increasing, joints (T, 2, 21, 3) metres, presence
    (T, 2)."""

    stamps_ns: np.ndarray
    joints: np.ndarray
    presence: np.ndarray

    def __post_init__(self):
        self.stamps_ns = np.asarray(self.stamps_ns, np.int64).reshape(-1)
        self.joints = np.asarray(self.joints, np.float32)
        self.presence = np.asarray(self.presence, bool)
        count = len(self.stamps_ns)
        if self.joints.shape != (count, 2, 21, 3) or self.presence.shape != (count, 2):
            raise ValueError(f"PoseStream: joints {self.joints.shape} / presence {self.presence.shape} do not match "
                             f"{count} stamps")
        if count > 1 and not (np.diff(self.stamps_ns) > 0).all():
            raise ValueError("PoseStream: stamps must be strictly increasing (sort and de-duplicate first)")

    @classmethod
    def from_frames(cls, frames):
        """frames: iterable of (stamp_ns, joints (2, 21, 3), presence (2,)); sorted by stamp, the last of equal stamps
        kept."""
        by_stamp = {int(stamp): (joints, presence) for stamp, joints, presence in frames}
        stamps = sorted(by_stamp)
        return cls(np.array(stamps, np.int64),
                   np.array([by_stamp[s][0] for s in stamps], np.float32).reshape(-1, 2, 21, 3),
                   np.array([by_stamp[s][1] for s in stamps], bool).reshape(-1, 2))

    def indices_of(self, stamps_ns, tolerance_ns=0):
        """Index of the frame at each stamp (within tolerance_ns), -1 where there is none."""
        stamps_ns = np.asarray(stamps_ns, np.int64)
        if not len(self.stamps_ns):
            return np.full(stamps_ns.shape, -1)
        right = np.clip(np.searchsorted(self.stamps_ns, stamps_ns), 0, len(self.stamps_ns) - 1)
        left = np.clip(right - 1, 0, len(self.stamps_ns) - 1)
        nearest = np.where(np.abs(self.stamps_ns[left] - stamps_ns) <= np.abs(self.stamps_ns[right] - stamps_ns),
                           left, right)
        return np.where(np.abs(self.stamps_ns[nearest] - stamps_ns) <= tolerance_ns, nearest, -1)


@dataclass
class GroundTruth:
    poses: PoseStream
    actions: list  # ActionSpan, in time order

    def label_at(self, stamp_ns: int) -> str | None:
        for span in self.actions:
            if span.contains(stamp_ns):
                return span.label
        return None


@dataclass
class RefinedClip:
    """One result's refined poses (the F frames new since the previous result): stamps_ns (F,), joints (F, 2, 21, 3)
    (NaN where absent), presence (F, 2)."""

    stamps_ns: np.ndarray
    joints: np.ndarray
    presence: np.ndarray


@dataclass
class StreamOutputs:
    refined: list = field(default_factory=list)  # RefinedClip
    recognitions: list = field(default_factory=list)  # ghtt_core.results.Recognition
    predictions: list = field(default_factory=list)  # ghtt_core.results.Prediction
    latencies_ms: list = field(default_factory=list)  # one per result, measured by the caller

    def refined_poses(self) -> PoseStream:
        """The refined pose of every frame; where results overlap the newer one wins."""
        clips = sorted(self.refined, key=lambda clip: int(clip.stamps_ns[-1]))
        return PoseStream.from_frames((stamp, joints, presence) for clip in clips
                                      for stamp, joints, presence in zip(clip.stamps_ns, clip.joints, clip.presence))


@dataclass
class StreamEvaluation:
    """scores: the summary (JSON-ready, compared between runs); series: per-frame / per-result values for plots."""

    scores: dict
    series: dict


# ---- helpers ----------------------------------------------------------------------------------------------------

def _number(value):
    value = float(value)
    return None if math.isnan(value) else value


def _hand_summary(metric):
    return {"mean": [_number(v) for v in metric.mean.tolist()], "count": [int(c) for c in metric.count.tolist()]}


def _pooled(values, counted):
    """Mean per hand of per-window values (W, 2) over windows where counted (W, 2)."""
    values, counted = np.asarray(values, np.float64).reshape(-1, 2), np.asarray(counted, bool).reshape(-1, 2)
    count = counted.sum(axis=0)
    total = np.where(counted, values, 0.0).sum(axis=0)
    return {"mean": [_number(t / c) if c else None for t, c in zip(total, count)], "count": count.tolist()}


def _percentiles(values_ms):
    values = np.asarray(values_ms, np.float64)
    if not values.size:
        return {"count": 0, "p50": None, "p95": None, "max": None}
    return {"count": int(values.size), "p50": float(np.percentile(values, 50)),
            "p95": float(np.percentile(values, 95)), "max": float(values.max())}


# ---- refinement -------------------------------------------------------------------------------------------------

def _pose_scores(poses: PoseStream, truth: PoseStream):
    """Pose metrics of `poses` at the ground-truth frames with the same stamps; (scores, per-frame MPJPE (T, 2))."""
    index = truth.indices_of(poses.stamps_ns)
    matched = index >= 0
    gt_joints, gt_presence = truth.joints[index[matched]], truth.presence[index[matched]]
    counted = poses.presence[matched] & gt_presence
    scores = {name: _hand_summary(metric(poses.joints[matched], gt_joints, counted))
              for name, metric in POSE_METRICS.items()}
    scores["unmatched_frames"] = int((~matched).sum())
    per_frame = np.full((len(truth.stamps_ns), 2), np.nan)
    per_frame[index[matched]] = mpjpe(poses.joints[matched], gt_joints, counted).values.numpy()
    return scores, per_frame


# ---- recognition ------------------------------------------------------------------------------------------------

def _recognition_scores(recognitions, truth: GroundTruth):
    recognitions = sorted((r for r in recognitions if r.hypotheses), key=lambda r: r.stamp_ns)
    timeline, judged = [], []
    progress_correct = np.zeros(PROGRESS_BINS)
    progress_count = np.zeros(PROGRESS_BINS, int)
    for recognition in recognitions:
        stamp, predicted = recognition.stamp_ns, recognition.hypotheses[0].label
        span = next((s for s in truth.actions if s.contains(stamp)), None)
        timeline.append({"stamp_ns": int(stamp), "predicted": predicted,
                         "score": float(recognition.hypotheses[0].score), "truth": span.label if span else None})
        if span is None:
            continue
        judged.append(predicted == span.label)
        progress = (stamp - span.start_ns) / max(1, span.end_ns - span.start_ns)
        bin_index = min(PROGRESS_BINS - 1, int(progress * PROGRESS_BINS))
        progress_count[bin_index] += 1
        progress_correct[bin_index] += predicted == span.label
    end_of_action = []
    for span in truth.actions:
        inside = [entry for entry in timeline if span.contains(entry["stamp_ns"])]
        end_of_action.append({"label": span.label, "predicted": inside[-1]["predicted"] if inside else None,
                              "correct": bool(inside) and inside[-1]["predicted"] == span.label})
    scored_ends = [entry for entry in end_of_action if entry["predicted"] is not None]
    scores = {
        "recognitions": len(recognitions),
        "over_time": {"accuracy": float(np.mean(judged)) if judged else None, "count": len(judged)},
        "end_of_action": {"accuracy": float(np.mean([e["correct"] for e in scored_ends])) if scored_ends else None,
                          "count": len(scored_ends), "actions_without_result": len(end_of_action) - len(scored_ends),
                          "per_action": end_of_action},
        "by_progress": {"bins": PROGRESS_BINS, "count": progress_count.tolist(),
                        "accuracy": [_number(c / n) if n else None for c, n in zip(progress_correct, progress_count)]},
    }
    return scores, timeline


# ---- prediction -------------------------------------------------------------------------------------------------

def _prediction_window(prediction: Prediction, truth: PoseStream):
    """(samples (S, T, 2, 21, 3), gt (T, 2, 21, 3), counted (T, 2)) for one prediction."""
    samples = np.asarray(prediction.positions, np.float32)
    num_frames = samples.shape[1]
    period_ns = prediction.frame_period_s * _NS_PER_S
    targets = prediction.stamp_ns + np.round((np.arange(num_frames) + 1) * period_ns).astype(np.int64)
    index = truth.indices_of(targets, tolerance_ns=int(period_ns / 2))
    matched = index >= 0
    gt = np.zeros((num_frames, 2, 21, 3), np.float32)
    gt[matched] = truth.joints[index[matched]]
    counted = np.zeros((num_frames, 2), bool)
    counted[matched] = truth.presence[index[matched]]
    return samples, gt, counted & np.asarray(prediction.hand_present, bool)[None]


def _held_input_pose(prediction: Prediction, inputs: PoseStream, num_frames: int):
    """The zero-velocity forecast (1, T, 2, 21, 3): each hand's last input pose at or before the prediction's stamp
    (NaN for a hand never seen), and the (2,) mask of hands that have one."""
    seen = np.searchsorted(inputs.stamps_ns, prediction.stamp_ns, side="right")
    held = np.zeros((2, 21, 3), np.float32)
    known = np.zeros(2, bool)
    for hand in range(2):
        present = np.flatnonzero(inputs.presence[:seen, hand])
        if present.size:
            held[hand], known[hand] = inputs.joints[present[-1], hand], True
    return np.repeat(held[None, None], num_frames, axis=1), known


def _prediction_scores(predictions, truth: PoseStream, inputs: PoseStream | None = None):
    names = ("ade_mean", "ade_best", "fde_mean", "fde_best", "ade_sample0", "apd")
    if inputs is not None:
        names += ("zero_velocity_ade", "zero_velocity_fde")
    metrics = {name: ([], []) for name in names}
    horizon_total = horizon_count = None
    for prediction in sorted(predictions, key=lambda p: p.stamp_ns):
        samples, gt, counted = _prediction_window(prediction, truth)
        values = {
            "ade_mean": ade(samples, gt, counted, mode="mean"), "ade_best": ade(samples, gt, counted, mode="best"),
            "fde_mean": fde(samples, gt, counted, mode="mean"), "fde_best": fde(samples, gt, counted, mode="best"),
            "ade_sample0": ade(samples[:1], gt, counted, mode="mean"),
        }
        if len(samples) >= 2:
            values["apd"] = apd(samples, counted)
        if inputs is not None:
            held, known = _held_input_pose(prediction, inputs, samples.shape[1])
            values["zero_velocity_ade"] = ade(held, gt, counted & known, mode="mean")
            values["zero_velocity_fde"] = fde(held, gt, counted & known, mode="mean")
        for name, metric in values.items():
            metrics[name][0].append(metric.values.numpy())
            metrics[name][1].append(metric.count.numpy() > 0)
        curve = error_by_horizon(samples[None], gt[None], counted[None], mode="mean")
        weighted = np.nan_to_num(curve.mean.numpy()) * curve.count.numpy()
        if horizon_total is None or horizon_total.shape != weighted.shape:
            horizon_total, horizon_count = np.zeros_like(weighted), np.zeros(weighted.shape, int)
        horizon_total += weighted
        horizon_count += curve.count.numpy()
    scores = {"predictions": len(predictions)}
    scores.update({name: _pooled(values, counted) if values else None for name, (values, counted) in metrics.items()})
    horizon = None
    if horizon_total is not None:
        horizon = np.where(horizon_count > 0, horizon_total / np.maximum(horizon_count, 1), np.nan).tolist()
    return scores, horizon


# ---- the whole stream -------------------------------------------------------------------------------------------

def score_stream(truth: GroundTruth, outputs: StreamOutputs, inputs: PoseStream | None = None) -> StreamEvaluation:
    """Every metric that the available data allows; sections without data are None."""
    series = {"stamps_ns": truth.poses.stamps_ns.tolist(),
              "actions": [{"start_ns": s.start_ns, "end_ns": s.end_ns, "label": s.label} for s in truth.actions]}
    scores = {"frames": int(len(truth.poses.stamps_ns)), "actions": len(truth.actions),
              "results": len(outputs.refined)}
    refinement = {}
    if inputs is not None:
        refinement["input"], series["input_mpjpe"] = _pose_scores(inputs, truth.poses)
    if outputs.refined:
        refinement["refined"], series["refined_mpjpe"] = _pose_scores(outputs.refined_poses(), truth.poses)
    for key in ("input_mpjpe", "refined_mpjpe"):
        if key in series:
            series[key] = [[_number(v) for v in row] for row in series[key]]
    scores["refinement"] = refinement or None
    scores["recognition"], series["recognition"] = (
        _recognition_scores(outputs.recognitions, truth) if truth.actions else (None, []))
    scores["prediction"], series["error_by_horizon"] = (
        _prediction_scores(outputs.predictions, truth.poses, inputs) if outputs.predictions else (None, None))
    scores["latency_ms"] = _percentiles(outputs.latencies_ms)
    return StreamEvaluation(scores, series)


def score_differences(a, b, tolerance_mm: float, path="scores"):
    """Paths where two score dicts differ: counts, labels and None-ness exactly, other numbers by more than
    tolerance_mm (accuracies are fractions, so the same absolute tolerance is far below one recognition).
    The timing sections (TIMING_KEYS) are skipped."""
    if isinstance(a, dict) and isinstance(b, dict):
        if set(a) != set(b):
            return [f"{path}: keys {sorted(set(a) ^ set(b))} differ"]
        return [d for key in a if key not in TIMING_KEYS
                for d in score_differences(a[key], b[key], tolerance_mm, f"{path}.{key}")]
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{path}: lengths {len(a)} != {len(b)}"]
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in score_differences(x, y, tolerance_mm, f"{path}[{i}]")]
    if isinstance(a, float) and isinstance(b, float):
        return [] if abs(a - b) <= tolerance_mm else [f"{path}: {a} != {b}"]
    return [] if a == b else [f"{path}: {a!r} != {b!r}"]

