"""Streaming G-HTT without ROS: push one two-hand pose per camera frame, get a result every clip_stride frames.

The contract with ghtt_ros and offline evaluation is docs/pipeline-api.md; the flows are in docs/inference.md.
Time comes only from the frames' stamps (never the wall clock), and each result's sampling generator is seeded from
its last stamp, so replaying the same frames gives identical results in real time, sim time or offline.

A result observes the clips that end at its newest frame (a sliding window). The P-Enc encodes each clip on its own,
so the encodings of the clips already in the history are kept (keyed by the sequence numbers of their first and last
buffered frame, which are never reused) and a result encodes only the clips it has not seen before. With a
clip_stride shorter than a clip the window's clip boundaries move from one result to the next, but they recur every
clip_len / gcd(clip_len, clip_stride) results, so once the history is full a result encodes
clip_stride / gcd(clip_len, clip_stride) clips: 1 for a stride of 16, 8, 4 or 2, 3 for the streaming default 3.
The A-Enc runs once per result (recognition and forecast share it) and only the newest frames are refined.
"""

from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ghtt_core.checkpoint import KIND_FULL, KIND_POSE, ModelCheckpoint, load_checkpoint
from ghtt_core.hand_plausibility import PlausibilityFilter
from ghtt_core.inference import (ActionScores, ClipEncodings, EncodedObservation, GHTTInference, MotionForecast,
                                 Refinement)
from ghtt_core.open_set import hand_speed_m_s, open_set_hypotheses
from ghtt_core.results import PREDICTION_MODES, Hypothesis, Prediction, Recognition
from ghtt_core.skeleton import NUM_HANDS, NUM_JOINTS

_NS_PER_S = 1_000_000_000
_SEED_MODULUS = 2**63 - 1
_NO_ACTION = Hypothesis(label="", verb="", noun="", score=0.0)


@dataclass
class FrameInput:
    """One camera frame's two-hand pose. joints (2, 21, 3) metres in the camera frame [left, right]; absent hands may
    be NaN. presence (2,) bool; confidence (2,) in [0, 1] (None = 1); object_label None or "" = unknown object."""

    stamp_ns: int
    joints: np.ndarray
    presence: np.ndarray
    confidence: np.ndarray | None = None
    object_label: str | None = None
    frame_id: str = ""


@dataclass
class PipelineConfig:
    clip_len: int = 16  # fixed by the model
    # frames between results: 3 = 10 results/s at 30 Hz (bench/stream_rate.py; 16 = one result per completed clip)
    clip_stride: int = 3
    # clips of history the A-Block sees (at most its capacity, 16); the history holds max_clips * clip_len frames.
    # 4 (2.1 s): a longer history keeps the previous action for seconds (live top-1 inside actions 47.7 % at 16,
    # 64.7 % at 4, and a better 1-s forecast; bench/live_history.py, docs/inference.md)
    max_clips: int = 4
    mode: str = "action_guided"  # "action_guided" (P.b) or "pose_only" (P.a)
    num_samples: int = 20  # sample 0 = the deterministic mean prediction
    horizon_frames: int = 96
    # std multiplier for samples 1..; negative = the checkpoint's calibrated temperature (5, the authors', without a
    # forecast calibration; docs/inference.md)
    sampling_temperature: float = -1.0
    top_k: int = 5
    frame_period_s: float = 1.0 / 30.0
    max_gap_s: float = 0.5  # a larger gap or a backwards stamp resets the history
    max_fill_frames: int = 4  # a hand missing for at most this many final frames is still predicted
    min_confidence: float = 0.0  # hands below this confidence count as absent
    commanded_action: str = ""  # non-empty: generate motion for this label instead of the recognized one (P.b)
    seed: int = 0  # combined with each result's last stamp to seed its samples
    idle_speed_m_s: float = 0.03  # recognition says "idle" when no hand of the newest clip moves faster (0 = off)
    min_action_score: float = 0.0  # recognition says "unknown" when the best class scores lower (0 = off; <= 0.5)

    def __post_init__(self):
        if self.mode not in PREDICTION_MODES:
            raise ValueError(f"mode must be one of {PREDICTION_MODES}, got {self.mode!r}")
        for name in ("clip_len", "clip_stride", "max_clips", "num_samples", "horizon_frames", "top_k"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not self.frame_period_s > 0:
            raise ValueError(f"frame_period_s must be > 0, got {self.frame_period_s}")
        if not self.max_gap_s >= self.frame_period_s:
            raise ValueError(f"max_gap_s ({self.max_gap_s}) must be >= frame_period_s ({self.frame_period_s})")
        if not 0 <= self.max_fill_frames < self.clip_len:
            raise ValueError(f"max_fill_frames must be in [0, clip_len), got {self.max_fill_frames}")
        if not math.isfinite(self.sampling_temperature):
            raise ValueError(f"sampling_temperature must be finite (negative = calibrated), got "
                             f"{self.sampling_temperature}")
        if not 0.0 <= self.min_confidence <= 1.0:
            raise ValueError(f"min_confidence must be in [0, 1], got {self.min_confidence}")
        if not self.idle_speed_m_s >= 0:
            raise ValueError(f"idle_speed_m_s must be >= 0, got {self.idle_speed_m_s}")
        if not 0.0 <= self.min_action_score <= 0.5:
            raise ValueError(f"min_action_score must be in [0, 0.5], got {self.min_action_score}")
        if self.commanded_action and self.mode != "action_guided":
            raise ValueError("commanded_action needs mode 'action_guided' (the A-Dec generates for the action)")


@dataclass
class PipelineStats:
    frames: int = 0  # frames pushed
    results: int = 0
    resets: int = 0  # history resets caused by a gap > max_gap_s or a backwards stamp
    dropped_frames: int = 0  # missing camera frames filled in as masked frames
    duplicate_frames: int = 0  # frames with the previous frame's stamp (ignored)
    invalid_hands: int = 0  # hands marked present with NaN/inf joints (treated as absent)
    implausible_hands: int = 0  # present hands no human hand could be (ghtt_core.hand_plausibility; treated as absent)
    results_skipped: int = 0  # due results the caller asked to skip (a newer one was already due)
    encoded_clips: int = 0  # clips run through the P-Enc (the others came from the clip cache)


@dataclass
class PipelineResult:
    """The refined poses of the frames new since the previous result (F = min(frames since then, 16): clip_stride in
    a steady stream, 16 after a start or reset): stamps_ns (F,) int64; refined_joints (F, 2, 21, 3) float32 metres
    (NaN for absent hands); refined_presence (F, 2). recognition None without an A-Block; prediction None when no
    hand is in view at the end."""

    frame_id: str
    stamps_ns: np.ndarray
    refined_joints: np.ndarray
    refined_presence: np.ndarray
    recognition: Recognition | None
    prediction: Prediction | None
    timings_ms: dict = field(default_factory=dict)


@dataclass
class PendingResult:
    """A due result before its forecast (StreamingPipeline.push_deferred); fields as the result they become."""

    frame_id: str
    stamps_ns: np.ndarray  # every frame of the observation
    refined_frames: int
    observation: EncodedObservation
    object_names: list
    refinement: Refinement
    recognition: Recognition | None
    scores: ActionScores | None
    timer: "_StageTimer"

    @property
    def predicts(self) -> bool:
        """A forecast is made when a hand is in view at the end of the observation."""
        return bool(self.observation.hand_present_at_end.any())


@dataclass
class _BufferedFrame:
    seq: int  # position in everything ever buffered by this pipeline (never reused, not even after a reset)
    stamp_ns: int
    joints: np.ndarray  # (2, 21, 3) finite; zeros for absent hands
    presence: np.ndarray  # (2,)
    real: bool  # False for a filled-in dropped frame
    object_label: str | None


def _check_frame(frame: FrameInput):
    if not isinstance(frame.stamp_ns, (int, np.integer)) or frame.stamp_ns < 0:
        raise ValueError(f"FrameInput.stamp_ns must be a non-negative integer, got {frame.stamp_ns!r}")
    joints = np.asarray(frame.joints, dtype=np.float32)
    if joints.shape != (NUM_HANDS, NUM_JOINTS, 3):
        raise ValueError(f"FrameInput.joints must be (2, 21, 3), got {joints.shape}")
    presence = np.asarray(frame.presence, dtype=bool).reshape(-1)
    if presence.shape != (NUM_HANDS,):
        raise ValueError(f"FrameInput.presence must have 2 entries, got {presence.shape}")
    confidence = np.ones(NUM_HANDS, np.float32)
    if frame.confidence is not None:
        confidence = np.asarray(frame.confidence, np.float32)
    if confidence.shape != (NUM_HANDS,) or not ((confidence >= 0) & (confidence <= 1)).all():
        raise ValueError(f"FrameInput.confidence must be 2 values in [0, 1], got {frame.confidence!r}")
    return joints, presence, confidence


def _clip_arrays(clips):
    """Consecutive lists of buffered frames -> the batch-of-one arrays of encode_observation: joints
    (1, K, N, 2, 21, 3), presence (1, K, N, 2), frame_valid (1, K, N)."""
    frames = [frame for clip in clips for frame in clip]
    shape = (1, len(clips), len(clips[0]))
    joints = np.stack([f.joints for f in frames]).reshape(*shape, NUM_HANDS, NUM_JOINTS, 3)
    presence = np.stack([f.presence for f in frames]).reshape(*shape, NUM_HANDS)
    frame_valid = np.array([f.real for f in frames]).reshape(shape)
    return joints, presence, frame_valid


def _clip_object(frames) -> str | None:
    """The most recent known object label within a clip."""
    for frame in reversed(frames):
        if frame.object_label:
            return frame.object_label
    return None


class _StageTimer:
    """Milliseconds per stage; waits for queued GPU work so each stage is charged its own time."""

    def __init__(self, device: torch.device):
        self.device = device
        self.timings: dict[str, float] = {}
        self._start = self._last = self._now()

    def _now(self) -> float:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return time.perf_counter()

    def lap(self, stage: str):
        now = self._now()
        self.timings[stage] = (now - self._last) * 1e3
        self._last = now

    def finish(self) -> dict[str, float]:
        self.timings["total"] = (self._now() - self._start) * 1e3
        return self.timings


class StreamingPipeline:
    """Ring buffer of the last max_clips * clip_len frames of one stream, and the model flows run on it."""

    def __init__(self, model: ModelCheckpoint, config: PipelineConfig | None = None,
                 device: str | torch.device | None = None):
        self.config = config or PipelineConfig()
        self.inference = GHTTInference(model, device)
        self._check_model(model)
        self.model_id = model.model_id
        self.stats = PipelineStats()
        self._plausibility = PlausibilityFilter()
        self._frames: deque[_BufferedFrame] = deque(maxlen=self.config.max_clips * self.config.clip_len)
        self._frames_since_result = 0  # since the last due result, published or skipped
        self._unrefined_frames = 0  # since the last published result: the next result refines these
        self._next_seq = 0
        # (seq of a clip's first frame, seq of its last frame) -> its encoding. Buffered frames never change and
        # their seqs are consecutive, so the key pins the clip's content: after a reset, filled-in dropped frames or
        # a shifted clip alignment (clip_stride != clip_len) a clip gets a key of its own.
        self._clip_cache: dict[tuple[int, int], ClipEncodings] = {}

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str | torch.device = "cpu",
                        config: PipelineConfig | None = None) -> "StreamingPipeline":
        config = config or PipelineConfig()
        require = KIND_FULL if config.mode == "action_guided" else KIND_POSE
        return cls(load_checkpoint(path, device, require=require), config, device)

    def _check_model(self, model: ModelCheckpoint):
        cfg = self.config
        if cfg.clip_len != model.config.pose.clip_len:
            raise ValueError(
                f"clip_len {cfg.clip_len} differs from the model's clip length {model.config.pose.clip_len}"
            )
        if model.action_block is None:
            if cfg.mode == "action_guided":
                raise ValueError("mode 'action_guided' needs a full checkpoint (P-Block + A-Block); use 'pose_only'")
            return
        capacity = model.config.action.max_clips
        if cfg.max_clips > capacity:
            raise ValueError(f"max_clips {cfg.max_clips} exceeds the A-Block capacity of {capacity} clips")
        if cfg.mode == "action_guided" and cfg.horizon_frames > (capacity + 1) * cfg.clip_len:
            raise ValueError(f"horizon_frames {cfg.horizon_frames} exceeds {(capacity + 1) * cfg.clip_len} frames "
                             f"(one decoded observed clip + {capacity} A-Dec clips)")
        if cfg.commanded_action:
            model.taxonomy.action_index(cfg.commanded_action)

    def reset(self):
        """Forget the history (the stats are kept)."""
        self._frames.clear()
        self._frames_since_result = 0
        self._unrefined_frames = 0
        self._clip_cache.clear()
        self._plausibility.reset()

    # ---- input -------------------------------------------------------------------------------------------------

    def push(self, frame: FrameInput, skip_result: bool = False) -> PipelineResult | None:
        """Add one frame (in stamp order). Returns a result when one is due (a full clip in the history and clip_stride
        frames since the previous one), else None.

        skip_result: a result due at this frame is not computed (counted in stats.results_skipped), so a caller that
        has fallen behind keeps the whole history but computes only the results still worth having; the frames it
        would have refined are refined by the next result (up to a clip of them)."""
        pending = self.push_deferred(frame, skip_result)
        return None if pending is None else self.complete(pending)

    def push_deferred(self, frame: FrameInput, skip_result: bool = False) -> PendingResult | None:
        """push, but a due result comes back with everything except its forecast computed, so that a caller serving
        several streams can run their forecasts in one pass (ghtt_core.stream_batch) before `complete`."""
        joints, presence, confidence = _check_frame(frame)
        self.stats.frames += 1
        if self._frames:
            previous_ns = self._frames[-1].stamp_ns
            gap_s = (int(frame.stamp_ns) - previous_ns) / _NS_PER_S
            if gap_s == 0:
                self.stats.duplicate_frames += 1
                return None
            if gap_s < 0 or gap_s > self.config.max_gap_s:
                self.stats.resets += 1
                self.reset()
            else:
                self._fill_dropped_frames(previous_ns, int(frame.stamp_ns))

        finite = np.isfinite(joints).all(axis=(1, 2))
        self.stats.invalid_hands += int((presence & ~finite).sum())
        presence = presence & finite & (confidence >= self.config.min_confidence)
        plausible = self._plausibility.check(int(frame.stamp_ns), joints, presence)
        self.stats.implausible_hands += int((presence & ~plausible).sum())
        joints = np.where(plausible[:, None, None], joints, 0.0).astype(np.float32)
        self._append(int(frame.stamp_ns), joints, plausible, True, frame.object_label or None)

        if len(self._frames) >= self.config.clip_len and self._frames_since_result >= self.config.clip_stride:
            self._frames_since_result = 0
            if skip_result:
                self.stats.results_skipped += 1
                return None
            self.stats.results += 1
            refined_frames = min(self._unrefined_frames, self.config.clip_len)
            self._unrefined_frames = 0
            return self._prepare(frame.frame_id, refined_frames)
        return None

    def _append(self, stamp_ns: int, joints: np.ndarray, presence: np.ndarray, real: bool, object_label: str | None):
        self._frames.append(_BufferedFrame(self._next_seq, stamp_ns, joints, presence, real, object_label))
        self._next_seq += 1
        self._frames_since_result += 1
        self._unrefined_frames += 1

    def _fill_dropped_frames(self, previous_ns: int, stamp_ns: int):
        """Masked frames at evenly spaced stamps for the camera frames missing before stamp_ns."""
        period_ns = self.config.frame_period_s * _NS_PER_S
        missing = max(0, round((stamp_ns - previous_ns) / period_ns) - 1)
        step_ns = (stamp_ns - previous_ns) / (missing + 1)
        for index in range(1, missing + 1):
            self._append(previous_ns + round(index * step_ns), np.zeros((NUM_HANDS, NUM_JOINTS, 3), np.float32),
                         np.zeros(NUM_HANDS, bool), False, None)
        self.stats.dropped_frames += missing

    # ---- output ------------------------------------------------------------------------------------------------

    def _generator(self, stamp_ns: int) -> torch.Generator:
        seed = (int(self.config.seed) * 1_000_003 + stamp_ns) % _SEED_MODULUS
        return torch.Generator(device=self.inference.device).manual_seed(seed)

    def _prepare(self, frame_id: str, refined_frames: int) -> PendingResult:
        cfg = self.config
        clip_len = cfg.clip_len
        num_clips = min(len(self._frames) // clip_len, cfg.max_clips)
        window = list(self._frames)[-num_clips * clip_len:]
        clips = [window[k * clip_len:(k + 1) * clip_len] for k in range(num_clips)]
        stamps = np.array([f.stamp_ns for f in window], np.int64)
        object_names = [[_clip_object(clip) for clip in clips]]

        timer = _StageTimer(self.inference.device)
        observation = self._encode(clips)
        timer.lap("encode")
        refinement = self.inference.refine_observation(observation, last_clips=1)
        timer.lap("refine")

        recognition, scores = None, None
        if self.inference.action_block is not None and bool(observation.clip_valid.any()):
            scores = self.inference.recognize(observation, object_names, top_k=cfg.top_k)
            recognition = Recognition(
                stamp_ns=int(stamps[-1]),
                frame_id=frame_id,
                observation_start_ns=int(stamps[0]),
                observation_end_ns=int(stamps[-1]),
                num_clips=int(observation.clip_valid.sum()),
                hypotheses=self._open_set_hypotheses(scores, clips[-1]),
                object_label=object_names[0][-1] or "",
                latent=scores.latent[0].float().cpu().numpy(),
            )
        timer.lap("recognize")
        return PendingResult(frame_id, stamps, refined_frames, observation, object_names, refinement, recognition,
                             scores, timer)

    def complete(self, pending: PendingResult, forecast: MotionForecast | None = None) -> PipelineResult:
        """The result of push_deferred, with its forecast computed here unless given (one stream's part of a batched
        pass with `forecast_options`, for a result where `batched_forecast` holds)."""
        cfg = self.config
        stamps, timer = pending.stamps_ns, pending.timer
        prediction = None
        if pending.predicts:
            if forecast is None:
                forecast, conditioning = self._forecast(pending.observation, pending.object_names, pending.scores,
                                                        int(stamps[-1]))
            else:
                conditioning = self._hypotheses(pending.scores)[0]
            prediction = Prediction(
                stamp_ns=int(stamps[-1]),
                frame_id=pending.frame_id,
                mode=cfg.mode,
                frame_period_s=cfg.frame_period_s,
                positions=forecast.joints[0].cpu().numpy(),
                hand_present=forecast.hand_present[0].cpu().numpy(),
                conditioning_action=conditioning,
                sampling_temperature=self.sampling_temperature,
                model_id=self.model_id,
                trust=None if forecast.trust is None else forecast.trust[0].cpu().numpy(),
            )
        timer.lap("predict")

        refined = pending.refined_frames
        return PipelineResult(
            frame_id=pending.frame_id,
            stamps_ns=stamps[-refined:],
            refined_joints=pending.refinement.joints[0, -1, -refined:].cpu().numpy(),
            refined_presence=pending.refinement.presence[0, -1, -refined:].cpu().numpy(),
            recognition=pending.recognition,
            prediction=prediction,
            timings_ms=timer.finish(),
        )

    def batched_forecast(self, pending: PendingResult) -> bool:
        """Whether this result's forecast is a plain P.b that a batched pass over several streams can compute
        (GHTTInference.predict_streams): action-guided, not commanded, with a recognition to reuse."""
        cfg = self.config
        return (pending.predicts and pending.scores is not None and cfg.mode == "action_guided"
                and not cfg.commanded_action)

    def forecast_options(self, stamp_ns: int) -> dict:
        """The sampling options of a forecast whose last observed frame is at stamp_ns."""
        cfg = self.config
        return dict(num_samples=cfg.num_samples, horizon_frames=cfg.horizon_frames,
                    temperature=self.sampling_temperature, generator=self._generator(stamp_ns))

    def _encode(self, clips: list[list[_BufferedFrame]]) -> EncodedObservation:
        """The observation of these consecutive clips; only clips without a cached encoding go through the P-Enc
        (in one batch). The same as inference.encode_observation on all their frames."""
        keys = [(clip[0].seq, clip[-1].seq) for clip in clips]
        new = [k for k, key in enumerate(keys) if key not in self._clip_cache]
        if new:
            encoded = self.inference.encode_clips(*_clip_arrays([clips[k] for k in new]))
            for position, k in enumerate(new):
                self._clip_cache[keys[k]] = encoded.clips(position, position + 1)
            self.stats.encoded_clips += len(new)
        # Clips that start before the observation can never be used again (alignments that recur with a
        # clip_stride shorter than a clip stay, so the cache holds at most max_clips entries per alignment).
        for key in [key for key in self._clip_cache if key[0] < keys[0][0]]:
            del self._clip_cache[key]
        return self.inference.observation_from_clips([self._clip_cache[key] for key in keys],
                                                     self.config.max_fill_frames)

    @property
    def sampling_temperature(self) -> float:
        """The temperature samples are drawn with: the configured one, or the checkpoint's calibrated one."""
        configured = self.config.sampling_temperature
        return configured if configured >= 0 else self.inference.default_temperature

    def _hypotheses(self, scores: ActionScores) -> list[Hypothesis]:
        return [self.inference.action_hypothesis(i, s)
                for s, i in zip(scores.scores[0].tolist(), scores.indices[0].tolist())]

    def _open_set_hypotheses(self, scores: ActionScores, newest_clip: list[_BufferedFrame]) -> list[Hypothesis]:
        cfg = self.config
        speed = hand_speed_m_s([f.joints for f in newest_clip], [f.presence for f in newest_clip], cfg.frame_period_s)
        return open_set_hypotheses(self._hypotheses(scores), speed, cfg.idle_speed_m_s, cfg.min_action_score)

    def _forecast(self, observation, object_names, scores, stamp_ns) -> tuple[MotionForecast, Hypothesis]:
        cfg = self.config
        options = self.forecast_options(stamp_ns)
        if cfg.mode == "pose_only":
            return self.inference.predict_pose_only(observation, **options), _NO_ACTION
        if cfg.commanded_action:
            forecast = self.inference.generate_for_action(observation, cfg.commanded_action,
                                                          object_names=object_names, **options)
            commanded = self.inference.model.taxonomy.action_index(cfg.commanded_action)
            return forecast, self.inference.action_hypothesis(commanded, 1.0)
        forecast = self.inference.predict_action_guided(observation, object_names=object_names,
                                                        action_encoding=scores.encoding, **options)
        return forecast, self._hypotheses(scores)[0]

