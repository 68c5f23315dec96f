"""Property tests: array -> message -> array is exact, and bad input raises a clear ValueError."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from ghtt.msg import HandPose, TwoHandPose
from ghtt_core.results import (PREDICTION_MODES, Hypothesis, Prediction, Recognition,
                                prediction_statistics)
from ghtt_ros import convert

finite_f32 = st.floats(-10.0, 10.0, width=32, allow_nan=False)
stamps = st.integers(0, 2**40)


@st.composite
def two_hand_arrays(draw):
    presence = draw(hnp.arrays(bool, (2,)))
    joints = draw(hnp.arrays(np.float32, (2, 21, 3), elements=finite_f32))
    joints[~presence] = np.nan
    confidence = draw(hnp.arrays(np.float32, (2,), elements=st.floats(0, 1, width=32)))
    confidence[~presence] = 0.0
    return convert.TwoHandArrays(
        stamp_ns=draw(stamps), frame_id=draw(st.text(max_size=12)), joints=joints, presence=presence,
        confidence=confidence, object_label=draw(st.text(max_size=12)))


def assert_hands_equal(a, b):
    assert a.stamp_ns == b.stamp_ns and a.frame_id == b.frame_id and a.object_label == b.object_label
    np.testing.assert_array_equal(a.presence, b.presence)
    np.testing.assert_array_equal(a.joints, b.joints)  # NaN == NaN for assert_array_equal
    np.testing.assert_array_equal(a.confidence, b.confidence)


@settings(max_examples=60, deadline=None)
@given(two_hand_arrays())
def test_two_hand_pose_round_trip_is_exact(hands):
    assert_hands_equal(convert.two_hand_pose_from_msg(convert.two_hand_pose_to_msg(hands)), hands)


@settings(max_examples=20, deadline=None)
@given(st.lists(two_hand_arrays(), min_size=1, max_size=5), st.floats(0.001, 1.0))
def test_two_hand_pose_array_round_trip(frames, period):
    decoded, decoded_period = convert.two_hand_pose_array_from_msg(convert.two_hand_pose_array_to_msg(frames, period))
    assert len(decoded) == len(frames)
    for a, b in zip(decoded, frames):
        assert_hands_equal(a, b)
    assert abs(decoded_period - period) < 1e-9


hypotheses = st.builds(Hypothesis, label=st.text(max_size=20), verb=st.text(max_size=8),
                       noun=st.text(max_size=8), score=st.floats(0, 1, width=32))


@settings(max_examples=40, deadline=None)
@given(st.lists(hypotheses, max_size=5), stamps, stamps, st.integers(1, 16),
       st.one_of(st.none(), hnp.arrays(np.float32, st.integers(1, 64), elements=finite_f32)))
def test_action_recognition_round_trip(hyps, t0, t1, num_clips, latent):
    hyps = sorted(hyps, key=lambda h: -h.score)
    start, end = sorted((t0, t1))
    recognition = Recognition(stamp_ns=end, frame_id="cam", observation_start_ns=start,
                                      observation_end_ns=end, num_clips=num_clips, hypotheses=hyps,
                                      object_label="cup", latent=latent)
    decoded = convert.action_recognition_from_msg(convert.action_recognition_to_msg(recognition))
    assert decoded.hypotheses == hyps
    assert (decoded.observation_start_ns, decoded.observation_end_ns, decoded.num_clips) == (start, end, num_clips)
    if latent is None:
        assert decoded.latent is None
    else:
        np.testing.assert_array_equal(decoded.latent, latent)


@st.composite
def predictions(draw):
    k, t, j = draw(st.integers(1, 4)), draw(st.integers(1, 8)), draw(st.sampled_from([21, 5]))
    positions = draw(hnp.arrays(np.float32, (k, t, 2, j, 3), elements=finite_f32))
    present = draw(hnp.arrays(bool, (2,)))
    positions[:, :, ~present] = np.nan
    return Prediction(
        stamp_ns=draw(stamps), frame_id="cam", mode=draw(st.sampled_from(PREDICTION_MODES)),
        frame_period_s=1 / 30, positions=positions, hand_present=present,
        conditioning_action=draw(hypotheses), sampling_temperature=draw(st.floats(0, 10, width=32)), model_id="m",
        trust=draw(hnp.arrays(np.float32, (2,), elements=st.floats(0, 1, width=32))))


@settings(max_examples=40, deadline=None)
@given(predictions())
def test_motion_prediction_round_trip_is_exact(prediction):
    decoded, mean, spread = convert.motion_prediction_from_msg(convert.motion_prediction_to_msg(prediction))
    np.testing.assert_array_equal(decoded.positions, prediction.positions)
    np.testing.assert_array_equal(decoded.hand_present, prediction.hand_present)
    np.testing.assert_array_equal(decoded.trust[prediction.hand_present], prediction.trust[prediction.hand_present])
    assert np.isnan(decoded.trust[~prediction.hand_present]).all()
    assert decoded.mode == prediction.mode and decoded.conditioning_action == prediction.conditioning_action
    expected_mean, expected_spread = prediction_statistics(prediction.positions, prediction.hand_present)
    np.testing.assert_array_equal(mean, expected_mean)
    np.testing.assert_array_equal(spread, expected_spread)


def test_prediction_spread_is_rms_distance_to_mean():
    positions = np.zeros((2, 1, 2, 21, 3), np.float32)
    positions[0, ..., 0] = 1.0
    positions[1, ..., 0] = -1.0
    mean, spread = prediction_statistics(positions, np.array([True, True]))
    np.testing.assert_allclose(mean, 0.0)
    np.testing.assert_allclose(spread, 1.0)


def _hands(**overrides):
    values = dict(stamp_ns=1, frame_id="cam", joints=np.zeros((2, 21, 3), np.float32),
                  presence=np.array([True, True]), confidence=np.array([1.0, 1.0], np.float32))
    values.update(overrides)
    return convert.TwoHandArrays(**values)


@pytest.mark.parametrize("overrides, message", [
    (dict(joints=np.zeros((2, 20, 3))), "shape"),
    (dict(joints=np.full((2, 21, 3), np.nan)), "NaN"),
    (dict(confidence=np.array([1.5, 0.2])), "confidence"),
    (dict(presence=np.array([True, True, False])), "2 entries"),
    (dict(stamp_ns=-5), ">= 0"),
])
def test_two_hand_pose_rejects_bad_input(overrides, message):
    with pytest.raises(ValueError, match=message):
        convert.two_hand_pose_to_msg(_hands(**overrides))


def test_nan_is_allowed_for_an_absent_hand_only():
    joints = np.zeros((2, 21, 3), np.float32)
    joints[0] = np.nan
    decoded = convert.two_hand_pose_from_msg(convert.two_hand_pose_to_msg(
        _hands(joints=joints, presence=np.array([False, True]))))
    assert not decoded.presence[0] and np.isnan(decoded.joints[0]).all()
    with pytest.raises(ValueError, match="NaN"):
        convert.two_hand_pose_to_msg(_hands(joints=joints))


def test_incoming_messages_are_validated():
    msg = convert.two_hand_pose_to_msg(_hands())
    msg.left.side = 7
    with pytest.raises(ValueError, match="side"):
        convert.two_hand_pose_from_msg(msg)
    msg = convert.two_hand_pose_to_msg(_hands())
    msg.right.joints[5] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        convert.two_hand_pose_from_msg(msg)
    swapped = TwoHandPose(left=msg.right, right=msg.left)
    with pytest.raises(ValueError, match="sides"):
        convert.two_hand_pose_from_msg(swapped)
    with pytest.raises(ValueError, match="side"):
        convert.hand_pose_to_msg(3, np.zeros((21, 3)), True, 1.0)
    assert HandPose.LEFT != HandPose.RIGHT


def test_prediction_rejects_bad_input():
    good = Prediction(stamp_ns=0, frame_id="cam", mode="action_guided",
                              frame_period_s=1 / 30, positions=np.zeros((2, 3, 2, 21, 3), np.float32),
                              hand_present=np.array([True, True]),
                              conditioning_action=Hypothesis("pour milk", "pour", "milk", 0.5),
                              sampling_temperature=5.0)
    with pytest.raises(ValueError, match="mode"):
        convert.motion_prediction_to_msg(Prediction(**{**good.__dict__, "mode": "sideways"}))
    with pytest.raises(ValueError, match="positions"):
        convert.motion_prediction_to_msg(Prediction(**{**good.__dict__, "positions": np.zeros((3, 2, 21, 3))}))
    nan_positions = good.positions.copy()
    nan_positions[0, 0, 1, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        convert.motion_prediction_to_msg(Prediction(**{**good.__dict__, "positions": nan_positions}))
    with pytest.raises(ValueError, match="trust"):
        convert.motion_prediction_to_msg(Prediction(**{**good.__dict__, "trust": np.array([1.5, 0.5])}))
    assert np.array_equal(convert.motion_prediction_to_msg(good).trust, [1.0, 1.0])  # None = fully trusted
    msg = convert.motion_prediction_to_msg(good)
    msg.num_frames = 4
    with pytest.raises(ValueError, match="layout"):
        convert.motion_prediction_from_msg(msg)
    msg = convert.motion_prediction_to_msg(good)
    msg.mode = 42
    with pytest.raises(ValueError, match="mode"):
        convert.motion_prediction_from_msg(msg)
