"""Stream scoring (ghtt_core.evaluate.stream_scoring): outputs matched to the ground truth by stamp, known answers for
refinement, recognition over time / at the end of actions, and prediction errors; run comparison."""

import numpy as np
import pytest

from ghtt_core.evaluate.metrics import mpjpe
from ghtt_core.evaluate.stream_scoring import (ActionSpan, GroundTruth, PoseStream, RefinedClip, StreamOutputs,
                                               score_differences, score_stream)
from ghtt_core.results import Hypothesis, Prediction, Recognition

PERIOD_NS = 33_333_333
FRAMES = 120
START_NS = 5 * 10**9


def stamps(count=FRAMES):
    return START_NS + np.arange(count, dtype=np.int64) * PERIOD_NS


def truth_poses(seed=0):
    rng = np.random.default_rng(seed)
    joints = rng.normal(0, 0.05, (FRAMES, 2, 21, 3)).astype(np.float32) + np.array([0, 0, 0.5], np.float32)
    presence = np.ones((FRAMES, 2), bool)
    presence[30:40, 1] = False
    return PoseStream(stamps(), joints, presence)


def recognition(frame, label):
    stamp = int(stamps()[frame])
    return Recognition(stamp, "", stamp, stamp, 1, [Hypothesis(label, "", "", 0.9)])


def prediction(frame, samples):
    return Prediction(stamp_ns=int(stamps()[frame]), frame_id="", mode="action_guided", frame_period_s=1 / 30,
                      positions=samples, hand_present=np.array([True, True]),
                      conditioning_action=Hypothesis("a", "", "", 0.9), sampling_temperature=5.0)


@pytest.fixture
def truth():
    return GroundTruth(truth_poses(), [ActionSpan(int(stamps()[0]), int(stamps()[49]), "open jar"),
                                       ActionSpan(int(stamps()[60]), int(stamps()[99]), "pour cup")])


def test_refined_clips_equal_to_the_truth_score_zero_and_inputs_score_their_own_error(truth):
    poses = truth.poses
    clips = [RefinedClip(poses.stamps_ns[i:i + 16], poses.joints[i:i + 16], poses.presence[i:i + 16])
             for i in range(0, FRAMES, 16)]
    noisy = poses.joints + np.float32(0.004)
    inputs = PoseStream(poses.stamps_ns, noisy, poses.presence)
    scores = score_stream(truth, StreamOutputs(refined=clips), inputs).scores
    refined = scores["refinement"]["refined"]
    assert refined["mpjpe"]["mean"] == [0.0, 0.0] and refined["mpjpe_pa"]["mean"][0] < 1e-6
    assert refined["mpjpe"]["count"] == [FRAMES, FRAMES - 10]
    expected = mpjpe(noisy, poses.joints, poses.presence).mean.tolist()
    assert scores["refinement"]["input"]["mpjpe"]["mean"] == pytest.approx(expected)
    assert scores["refinement"]["input"]["mpjpe"]["mean"][0] == pytest.approx(4 * np.sqrt(3), rel=1e-4)
    assert scores["prediction"] is None and scores["results"] == len(clips)


def test_recognition_is_judged_over_time_and_at_the_end_of_each_action(truth):
    recognitions = [recognition(10, "open jar"), recognition(45, "pour cup"), recognition(55, "open jar"),
                    recognition(70, "pour cup"), recognition(99, "pour cup")]
    scores = score_stream(truth, StreamOutputs(recognitions=recognitions)).scores["recognition"]
    assert scores["over_time"] == {"accuracy": 0.75, "count": 4}  # frame 55 lies between the actions
    assert [(a["label"], a["predicted"], a["correct"]) for a in scores["end_of_action"]["per_action"]] == [
        ("open jar", "pour cup", False), ("pour cup", "pour cup", True)]
    assert scores["end_of_action"]["accuracy"] == 0.5
    assert scores["by_progress"]["count"] == [0, 2, 0, 0, 2] and scores["by_progress"]["accuracy"][4] == 0.5


def test_prediction_errors_match_the_future_ground_truth_and_stop_at_the_end_of_the_stream(truth):
    poses = truth.poses
    horizon = 32
    last_observed = 100  # 19 future frames exist, 13 lie after the end of the stream
    future = poses.joints[last_observed + 1:]
    exact = np.concatenate([future, np.repeat(future[-1:], horizon - len(future), axis=0)])
    samples = np.stack([exact, exact + np.float32(0.01 / np.sqrt(3))])
    scores = score_stream(truth, StreamOutputs(predictions=[prediction(last_observed, samples)])).scores["prediction"]
    assert scores["ade_sample0"]["mean"] == pytest.approx([0.0, 0.0], abs=1e-6)
    assert scores["ade_best"]["mean"] == pytest.approx([0.0, 0.0], abs=1e-6)
    assert scores["ade_mean"]["mean"] == pytest.approx([5.0, 5.0], rel=1e-4)
    assert scores["fde_mean"]["mean"] == pytest.approx([5.0, 5.0], rel=1e-4)
    assert scores["apd"]["mean"] == pytest.approx([10.0, 10.0], rel=1e-4)
    evaluation = score_stream(truth, StreamOutputs(predictions=[prediction(last_observed, samples)]))
    horizon_curve = np.array(evaluation.series["error_by_horizon"], dtype=float)
    assert np.isfinite(horizon_curve[:FRAMES - last_observed - 1]).all()
    assert np.isnan(horizon_curve[FRAMES - last_observed - 1:]).all()


def test_zero_velocity_row_holds_each_hands_last_input_pose_on_the_same_frames(truth):
    poses = truth.poses
    inputs = PoseStream(poses.stamps_ns, poses.joints + np.float32(0.002), np.ones((FRAMES, 2), bool))
    inputs.presence[36:40, 1] = False  # the right hand's last input up to frame 39 is frame 35
    horizon = 24
    held = np.stack([inputs.joints[39, 0], inputs.joints[35, 1]])  # (2, 21, 3)
    held_forecast = np.repeat(held[None, None], horizon, axis=1)  # a "model" that predicts exactly zero velocity
    moving = held_forecast + np.float32(0.02)
    outputs = StreamOutputs(predictions=[prediction(39, held_forecast), prediction(60, np.repeat(
        np.stack([inputs.joints[60, 0], inputs.joints[60, 1]])[None, None], horizon, axis=1))])
    scores = score_stream(truth, outputs, inputs).scores["prediction"]
    for row in ("ade", "fde"):
        assert scores[f"zero_velocity_{row}"]["mean"] == pytest.approx(scores[f"{row}_mean"]["mean"], rel=1e-6)
        assert scores[f"zero_velocity_{row}"]["count"] == scores[f"{row}_mean"]["count"]
    worse = score_stream(truth, StreamOutputs(predictions=[prediction(39, moving)]), inputs).scores["prediction"]
    assert worse["ade_mean"]["mean"][0] > worse["zero_velocity_ade"]["mean"][0]
    assert score_stream(truth, outputs).scores["prediction"].get("zero_velocity_ade") is None  # needs the inputs


def test_score_differences_find_changed_numbers_and_ignore_timing(truth):
    outputs = StreamOutputs(recognitions=[recognition(10, "open jar")], latencies_ms=[5.0])
    a = score_stream(truth, outputs, truth.poses).scores
    outputs.latencies_ms = [50.0]
    b = score_stream(truth, outputs, truth.poses).scores
    assert score_differences(a, b, 0.0) == []
    b["refinement"]["input"]["mpjpe"]["mean"][1] = 1e-3
    assert score_differences(a, b, 1e-6) == ["scores.refinement.input.mpjpe.mean[1]: 0.0 != 0.001"]
    assert score_differences(a, b, 1e-2) == []


def test_pose_streams_reject_unordered_stamps():
    with pytest.raises(ValueError, match="strictly increasing"):
        PoseStream(np.array([2, 1]), np.zeros((2, 2, 21, 3)), np.ones((2, 2), bool))
    frames = PoseStream.from_frames([(2, np.ones((2, 21, 3)), [True, True]), (1, np.zeros((2, 21, 3)), [True, False])])
    assert frames.stamps_ns.tolist() == [1, 2] and frames.presence.tolist() == [[True, False], [True, True]]
