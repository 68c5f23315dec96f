"""Deterministic sample messages of every ghtt type, built identically in any process from a seed."""

import numpy as np

from ghtt_core.results import Hypothesis, Prediction, Recognition
from ghtt_ros import convert


def make_samples(seed=0):
    """-> dict: message type name -> message instance."""
    rng = np.random.default_rng(seed)
    joints = rng.normal(0, 0.1, (2, 21, 3)).astype(np.float32)
    hands = convert.TwoHandArrays(stamp_ns=1_700_000_000_123_456_789, frame_id="camera_color_optical_frame",
                                  joints=joints, presence=np.array([True, False]),
                                  confidence=np.array([0.9, 0.0], np.float32), object_label="bottle")
    pose = convert.two_hand_pose_to_msg(hands)
    array = convert.two_hand_pose_array_to_msg([hands] * 16, 1 / 30)
    hypothesis = Hypothesis("open bottle", "open", "bottle", 0.75)
    recognition = convert.action_recognition_to_msg(Recognition(
        stamp_ns=hands.stamp_ns, frame_id="cam", observation_start_ns=hands.stamp_ns - 500_000_000,
        observation_end_ns=hands.stamp_ns, num_clips=2,
        hypotheses=[hypothesis, Hypothesis("close bottle", "close", "bottle", 0.2)],
        object_label="bottle", latent=rng.normal(size=128).astype(np.float32)))
    positions = rng.normal(0, 0.1, (20, 96, 2, 21, 3)).astype(np.float32)
    prediction = convert.motion_prediction_to_msg(Prediction(
        stamp_ns=hands.stamp_ns, frame_id="cam", mode="action_guided", frame_period_s=1 / 30, positions=positions,
        hand_present=np.array([True, True]), conditioning_action=hypothesis, sampling_temperature=5.0,
        model_id="small-test"))
    return {
        "HandPose": pose.left,
        "TwoHandPose": pose,
        "TwoHandPoseArray": array,
        "ActionHypothesis": convert.hypothesis_to_msg(hypothesis),
        "ActionRecognition": recognition,
        "MotionPrediction": prediction,
        "MotionPredictionSummary": convert.motion_prediction_summary(prediction, 3),
    }


def assert_messages_equal(actual, expected, path="msg"):
    """Field-by-field equality (NaN == NaN in arrays). Serialized bytes cannot be compared: CDR padding bytes are
    not initialised by the serializer."""
    if hasattr(expected, "get_fields_and_field_types"):
        assert type(actual) is type(expected), path
        for name, field_type in expected.get_fields_and_field_types().items():
            if field_type == "float":  # a float32 field holds the unrounded Python float until serialized
                assert np.float32(getattr(actual, name)) == np.float32(getattr(expected, name)), f"{path}.{name}"
            else:
                assert_messages_equal(getattr(actual, name), getattr(expected, name), f"{path}.{name}")
    elif isinstance(expected, np.ndarray) or (isinstance(expected, (list, tuple)) and expected
                                              and not hasattr(expected[0], "get_fields_and_field_types")):
        np.testing.assert_array_equal(np.asarray(actual), np.asarray(expected), err_msg=path)
    elif isinstance(expected, (list, tuple)):
        assert len(actual) == len(expected), path
        for index, (a, b) in enumerate(zip(actual, expected)):
            assert_messages_equal(a, b, f"{path}[{index}]")
    else:
        assert actual == expected, path
