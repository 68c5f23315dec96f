"""Conversions between ghtt messages and numpy arrays, with validation.

Big arrays go into `float32[]` fields as array.array copies of their bytes (`_float32_field`), never per-value Python
loops. Every converter
raises ValueError with the field name when the input has the wrong shape, NaN where it is not allowed, or an unknown
enum value.
"""

import array
from dataclasses import dataclass

import numpy as np
from builtin_interfaces.msg import Duration, Time

from ghtt_core.results import Hypothesis, Prediction, Recognition, prediction_statistics
from ghtt.msg import (
    ActionHypothesis,
    ActionRecognition,
    HandPose,
    MotionPrediction,
    MotionPredictionSummary,
    TwoHandPose,
    TwoHandPoseArray,
)

NUM_JOINTS = 21
HAND_SIDES = (HandPose.LEFT, HandPose.RIGHT)
# ghtt_core mode names <-> MotionPrediction.mode constants.
MODE_TO_MSG = {"action_guided": MotionPrediction.MODE_ACTION_GUIDED, "pose_only": MotionPrediction.MODE_POSE_ONLY}
MODE_FROM_MSG = {value: name for name, value in MODE_TO_MSG.items()}


# ---- time -------------------------------------------------------------------------------------------------------

def stamp_to_ns(stamp):
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def ns_to_stamp(ns):
    ns = int(ns)
    if ns < 0:
        raise ValueError(f"stamp must be >= 0 ns, got {ns}")
    return Time(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)


def seconds_to_duration(seconds):
    if not np.isfinite(seconds) or seconds < 0:
        raise ValueError(f"duration must be finite and >= 0 s, got {seconds}")
    ns = int(round(seconds * 1e9))
    return Duration(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)


def duration_to_seconds(duration):
    return duration.sec + duration.nanosec * 1e-9


# ---- validation helpers -----------------------------------------------------------------------------------------

def _as_float32(name, value, shape):
    array = np.asarray(value, dtype=np.float32)
    if array.shape != tuple(shape):
        raise ValueError(f"{name}: expected shape {tuple(shape)}, got {array.shape}")
    return array


def _require_finite(name, values):
    if not np.isfinite(values).all():
        raise ValueError(f"{name}: contains NaN or inf where finite values are required")


def _float32_field(values) -> array.array:
    """Any float array -> the array.array('f') a `float32[]` field stores, in one copy of its bytes (an ndarray
    assigned as it is is converted value by value: 60 ms for the 240k positions of 20 samples x 96 frames)."""
    return array.array("f", np.ascontiguousarray(values, dtype=np.float32).tobytes())


def _check_confidence(name, confidence):
    if not (np.isfinite(confidence) and 0.0 <= confidence <= 1.0):
        raise ValueError(f"{name}: confidence must be in [0, 1], got {confidence}")


# ---- hands ------------------------------------------------------------------------------------------------------

@dataclass
class TwoHandArrays:
    """Array view of a TwoHandPose. joints (2, 21, 3) float32 metres [left, right]; absent hands are NaN."""

    stamp_ns: int
    frame_id: str
    joints: np.ndarray
    presence: np.ndarray
    confidence: np.ndarray
    object_label: str = ""


def hand_pose_to_msg(side, joints, present, confidence):
    if side not in HAND_SIDES:
        raise ValueError(f"HandPose.side: unknown value {side} (LEFT={HandPose.LEFT}, RIGHT={HandPose.RIGHT})")
    present = bool(present)
    confidence = float(confidence)
    _check_confidence("HandPose.confidence", confidence)
    joints = _as_float32("HandPose.joints", joints, (NUM_JOINTS, 3))
    if present:
        _require_finite("HandPose.joints (present hand)", joints)
    else:
        joints = np.full((NUM_JOINTS, 3), np.nan, np.float32)
    msg = HandPose(side=side, present=present, confidence=confidence if present else 0.0)
    msg.joints = _float32_field(joints)
    return msg


def hand_pose_from_msg(msg):
    """HandPose -> (joints (21, 3) float32, present bool, confidence float)."""
    if msg.side not in HAND_SIDES:
        raise ValueError(f"HandPose.side: unknown value {msg.side}")
    joints = np.asarray(msg.joints, dtype=np.float32)
    if joints.size != NUM_JOINTS * 3:
        raise ValueError(f"HandPose.joints: expected {NUM_JOINTS * 3} values, got {joints.size}")
    joints = joints.reshape(NUM_JOINTS, 3)
    _check_confidence("HandPose.confidence", msg.confidence)
    if msg.present:
        _require_finite("HandPose.joints (present hand)", joints)
    else:
        joints = np.full((NUM_JOINTS, 3), np.nan, np.float32)
    return joints, bool(msg.present), float(msg.confidence)


def two_hand_pose_to_msg(hands: TwoHandArrays):
    joints = _as_float32("TwoHandPose joints", hands.joints, (2, NUM_JOINTS, 3))
    presence = np.asarray(hands.presence, dtype=bool).reshape(-1)
    confidence = np.asarray(hands.confidence, dtype=np.float32).reshape(-1)
    if presence.shape != (2,) or confidence.shape != (2,):
        raise ValueError(f"TwoHandPose: presence and confidence must have 2 entries, got {presence.shape}, "
                         f"{confidence.shape}")
    msg = TwoHandPose()
    msg.header.stamp = ns_to_stamp(hands.stamp_ns)
    msg.header.frame_id = hands.frame_id
    msg.left = hand_pose_to_msg(HandPose.LEFT, joints[0], presence[0], confidence[0])
    msg.right = hand_pose_to_msg(HandPose.RIGHT, joints[1], presence[1], confidence[1])
    msg.object_label = hands.object_label
    return msg


def two_hand_pose_from_msg(msg):
    if msg.left.side != HandPose.LEFT or msg.right.side != HandPose.RIGHT:
        raise ValueError(f"TwoHandPose: left/right fields carry sides {msg.left.side}/{msg.right.side}, "
                         f"expected LEFT={HandPose.LEFT}/RIGHT={HandPose.RIGHT}")
    left = hand_pose_from_msg(msg.left)
    right = hand_pose_from_msg(msg.right)
    return TwoHandArrays(
        stamp_ns=stamp_to_ns(msg.header.stamp),
        frame_id=msg.header.frame_id,
        joints=np.stack([left[0], right[0]]),
        presence=np.array([left[1], right[1]]),
        confidence=np.array([left[2], right[2]], np.float32),
        object_label=msg.object_label,
    )


def two_hand_pose_array_to_msg(frames, frame_period_s, frame_id=None):
    """frames: list of TwoHandArrays (time order). The array header takes the first frame's stamp and frame."""
    if not frames:
        raise ValueError("TwoHandPoseArray: needs at least one frame")
    msg = TwoHandPoseArray()
    msg.header.stamp = ns_to_stamp(frames[0].stamp_ns)
    msg.header.frame_id = frame_id if frame_id is not None else frames[0].frame_id
    msg.frame_period = seconds_to_duration(frame_period_s)
    msg.frames = [two_hand_pose_to_msg(frame) for frame in frames]
    return msg


def two_hand_pose_array_from_msg(msg):
    """-> (list of TwoHandArrays, frame period in s); every frame is checked as a TwoHandPose."""
    frames = []
    for index, frame in enumerate(msg.frames):
        try:
            frames.append(two_hand_pose_from_msg(frame))
        except ValueError as error:
            raise ValueError(f"TwoHandPoseArray.frames[{index}]: {error}") from None
    return frames, duration_to_seconds(msg.frame_period)


# ---- actions ----------------------------------------------------------------------------------------------------

def hypothesis_to_msg(hypothesis: Hypothesis):
    if not (np.isfinite(hypothesis.score) and 0.0 <= hypothesis.score <= 1.0):
        raise ValueError(f"ActionHypothesis.score must be in [0, 1], got {hypothesis.score}")
    return ActionHypothesis(label=hypothesis.label, verb=hypothesis.verb, noun=hypothesis.noun,
                            score=float(hypothesis.score))


def hypothesis_from_msg(msg):
    return Hypothesis(label=msg.label, verb=msg.verb, noun=msg.noun, score=float(msg.score))


def action_recognition_to_msg(recognition: Recognition):
    if recognition.observation_start_ns > recognition.observation_end_ns:
        raise ValueError("ActionRecognition: observation_start is after observation_end")
    scores = [h.score for h in recognition.hypotheses]
    if scores != sorted(scores, reverse=True):
        raise ValueError("ActionRecognition.hypotheses must be sorted by decreasing score")
    msg = ActionRecognition()
    msg.header.stamp = ns_to_stamp(recognition.stamp_ns)
    msg.header.frame_id = recognition.frame_id
    msg.observation_start = ns_to_stamp(recognition.observation_start_ns)
    msg.observation_end = ns_to_stamp(recognition.observation_end_ns)
    msg.num_clips = int(recognition.num_clips)
    msg.object_label = recognition.object_label
    msg.hypotheses = [hypothesis_to_msg(h) for h in recognition.hypotheses]
    if recognition.latent is not None:
        latent = np.asarray(recognition.latent, dtype=np.float32).reshape(-1)
        _require_finite("ActionRecognition.latent", latent)
        msg.latent = _float32_field(latent)
    return msg


def action_recognition_from_msg(msg):
    """-> Recognition, with what a consumer indexes or draws checked (scores in [0, 1], a finite latent, the
    observation interval in order)."""
    for index, hypothesis in enumerate(msg.hypotheses):
        if not (np.isfinite(hypothesis.score) and 0.0 <= hypothesis.score <= 1.0):
            raise ValueError(f"ActionRecognition.hypotheses[{index}].score must be in [0, 1], got {hypothesis.score}")
    latent = np.asarray(msg.latent, dtype=np.float32)
    _require_finite("ActionRecognition.latent", latent)
    if stamp_to_ns(msg.observation_start) > stamp_to_ns(msg.observation_end):
        raise ValueError("ActionRecognition: observation_start is after observation_end")
    return Recognition(
        stamp_ns=stamp_to_ns(msg.header.stamp),
        frame_id=msg.header.frame_id,
        observation_start_ns=stamp_to_ns(msg.observation_start),
        observation_end_ns=stamp_to_ns(msg.observation_end),
        num_clips=int(msg.num_clips),
        hypotheses=[hypothesis_from_msg(h) for h in msg.hypotheses],
        object_label=msg.object_label,
        latent=latent if latent.size else None,
    )


# ---- prediction -------------------------------------------------------------------------------------------------

def motion_prediction_to_msg(prediction: Prediction):
    if prediction.mode not in MODE_TO_MSG:
        raise ValueError(f"MotionPrediction.mode: unknown mode {prediction.mode!r} (known: {sorted(MODE_TO_MSG)})")
    positions = np.asarray(prediction.positions, dtype=np.float32)
    if positions.ndim != 5 or positions.shape[2] != 2 or positions.shape[4] != 3 or 0 in positions.shape:
        raise ValueError(f"MotionPrediction.positions: expected (samples, frames, 2, joints, 3), got {positions.shape}")
    hand_present = np.asarray(prediction.hand_present, dtype=bool).reshape(-1)
    if hand_present.shape != (2,):
        raise ValueError(f"MotionPrediction.hand_present: expected 2 entries, got {hand_present.shape}")
    positions = positions.copy()
    _require_finite("MotionPrediction.positions (present hands)", positions[:, :, hand_present])
    positions[:, :, ~hand_present] = np.nan
    temperature = float(prediction.sampling_temperature)
    if not np.isfinite(temperature) or temperature < 0:
        raise ValueError(f"MotionPrediction.sampling_temperature must be finite and >= 0, got {temperature}")
    trust = np.ones(2, np.float32) if prediction.trust is None else np.asarray(prediction.trust, np.float32)
    if trust.shape != (2,) or not np.all((trust[hand_present] >= 0) & (trust[hand_present] <= 1)):
        raise ValueError(f"MotionPrediction.trust: expected 2 values in [0, 1] for the present hands, got {trust}")
    mean, spread = prediction_statistics(positions, hand_present)
    num_samples, num_frames, _, num_joints, _ = positions.shape
    msg = MotionPrediction()
    msg.header.stamp = ns_to_stamp(prediction.stamp_ns)
    msg.header.frame_id = prediction.frame_id
    msg.mode = MODE_TO_MSG[prediction.mode]
    msg.frame_period = seconds_to_duration(prediction.frame_period_s)
    msg.num_samples, msg.num_frames, msg.num_joints = num_samples, num_frames, num_joints
    msg.hand_present = hand_present.tolist()
    msg.conditioning_action = hypothesis_to_msg(prediction.conditioning_action)
    msg.sampling_temperature = temperature
    msg.positions = _float32_field(positions)
    msg.mean = _float32_field(mean)
    msg.spread = _float32_field(spread)
    msg.trust = _float32_field(np.where(hand_present, trust, np.nan))
    msg.model_id = prediction.model_id
    return msg


def motion_prediction_from_msg(msg):
    """-> (Prediction, mean (T, 2, J, 3), spread (T, 2, J)) with layouts checked against the declared sizes."""
    if msg.mode not in MODE_FROM_MSG:
        raise ValueError(f"MotionPrediction.mode: unknown value {msg.mode}")
    k, t, j = int(msg.num_samples), int(msg.num_frames), int(msg.num_joints)
    if min(k, t, j) < 1:
        raise ValueError(f"MotionPrediction: num_samples, num_frames and num_joints must be >= 1, got {k}, {t}, {j}")
    if len(msg.hand_present) != 2:
        raise ValueError(f"MotionPrediction.hand_present: expected 2 entries, got {len(msg.hand_present)}")
    arrays = {}
    for name, shape in (("positions", (k, t, 2, j, 3)), ("mean", (t, 2, j, 3)), ("spread", (t, 2, j))):
        flat = np.asarray(getattr(msg, name), dtype=np.float32)
        if flat.size != int(np.prod(shape)):
            raise ValueError(f"MotionPrediction.{name}: {flat.size} values do not match the declared layout {shape}")
        arrays[name] = flat.reshape(shape)
    hand_present = np.asarray(msg.hand_present, dtype=bool)
    _require_finite("MotionPrediction.positions (present hands)", arrays["positions"][:, :, hand_present])
    prediction = Prediction(
        stamp_ns=stamp_to_ns(msg.header.stamp),
        frame_id=msg.header.frame_id,
        mode=MODE_FROM_MSG[msg.mode],
        frame_period_s=duration_to_seconds(msg.frame_period),
        positions=arrays["positions"],
        hand_present=hand_present,
        conditioning_action=hypothesis_from_msg(msg.conditioning_action),
        sampling_temperature=float(msg.sampling_temperature),
        model_id=msg.model_id,
        trust=np.asarray(msg.trust, dtype=np.float32),
    )
    return prediction, arrays["mean"], arrays["spread"]


def first_future_frame(prediction_stamp_ns, frame_period_s, num_frames, now_ns):
    """Index of the first predicted frame later than now_ns (frame i is at stamp + (i + 1) * period); num_frames when
    the whole prediction is in the past."""
    elapsed_periods = (int(now_ns) - int(prediction_stamp_ns)) / (frame_period_s * 1e9)
    return int(min(max(np.floor(elapsed_periods), 0), num_frames))


def motion_prediction_summary(msg: MotionPrediction, future_frame: int) -> MotionPredictionSummary:
    """The light summary of a MotionPrediction message: the same header, mean, spread and trust, no samples."""
    summary = MotionPredictionSummary(
        header=msg.header, frame_period=msg.frame_period, num_samples=msg.num_samples, num_frames=msg.num_frames,
        num_joints=msg.num_joints, first_future_frame=int(future_frame), hand_present=list(msg.hand_present),
        conditioning_action=msg.conditioning_action, model_id=msg.model_id)
    summary.mean = msg.mean
    summary.spread = msg.spread
    summary.trust = msg.trust
    return summary


def motion_prediction_summary_from_msg(msg: MotionPredictionSummary):
    """-> (mean (T, 2, J, 3), spread (T, 2, J)) checked against the declared sizes."""
    t, j = int(msg.num_frames), int(msg.num_joints)
    mean = np.asarray(msg.mean, dtype=np.float32)
    spread = np.asarray(msg.spread, dtype=np.float32)
    if mean.size != t * 2 * j * 3 or spread.size != t * 2 * j:
        raise ValueError(f"MotionPredictionSummary: mean ({mean.size}) / spread ({spread.size}) values do not match "
                         f"the declared {t} frames x {j} joints")
    if int(msg.first_future_frame) > t:
        raise ValueError(f"MotionPredictionSummary.first_future_frame {msg.first_future_frame} > num_frames {t}")
    return mean.reshape(t, 2, j, 3), spread.reshape(t, 2, j)
