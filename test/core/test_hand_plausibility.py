"""Degenerate and implausible hands (collapsed palm, bones no hand has, a jump faster than a hand) are masked for
that frame only: one bad frame in a 30 Hz stream costs no result and puts no NaN into any result."""

import dataclasses

import numpy as np
import pytest
from model_batches import moving_hands
from tiny_models import tiny_model

from ghtt_core.hand_plausibility import MAX_WRIST_SPEED_M_S, PlausibilityFilter, implausible_shape
from ghtt_core.pipeline import PipelineConfig, StreamingPipeline
from test_pipeline import PERIOD_NS, START_NS, push_all, stream

BOTH = np.array([True, True])


def _hands(frames=40, seed=0):
    return moving_hands(1, frames, seed)[0].numpy().astype(np.float64)


def _degenerate(joints, kind):
    bad = joints.copy()
    if kind == "all_equal":
        bad[0] = bad[0, 5]  # every joint of the left hand at one point
    elif kind == "all_zero":
        bad[0] = 0.0
    elif kind == "collapsed_palm":
        bad[0, 5:] = bad[0, :1] + np.linspace(0, 1, 16)[:, None] * (bad[0, 9] - bad[0, 0])  # palm on a line
    elif kind == "giant":
        bad[0] = bad[0, :1] + 5.0 * (bad[0] - bad[0, :1])  # bones five times human length
    return bad


def test_real_looking_hands_pass_and_degenerate_shapes_fail():
    hands = _hands()
    assert not implausible_shape(hands).any()
    for kind in ("all_equal", "all_zero", "collapsed_palm", "giant"):
        flags = implausible_shape(_degenerate(hands[0], kind))
        assert flags.tolist() == [True, False], kind


def test_a_one_frame_jump_is_masked_and_a_real_move_costs_one_frame():
    hands = _hands(12)
    checker = PlausibilityFilter()
    stamps = [START_NS + i * PERIOD_NS for i in range(12)]
    jump = 2 * MAX_WRIST_SPEED_M_S * PERIOD_NS / 1e9 * np.array([1.0, 0.0, 0.0])
    moved = hands.copy()
    moved[4, 1] += jump  # frame 4: one outlier of the right hand
    moved[8:, 1] += jump  # from frame 8 on: the right hand is somewhere else for good
    kept = [checker.check(stamps[i], moved[i], BOTH).tolist() for i in range(12)]
    assert [i for i, k in enumerate(kept) if k != [True, True]] == [4, 8]
    assert all(k[0] for k in kept)


def test_poses_stamped_on_delivery_after_a_stall_are_not_jumps():
    """A tracker that stamps on delivery sends a stalled backlog 1 ms apart: 3 cm per frame is then 30 m/s on paper."""
    hands = _hands(10)
    hands[:, :] += np.arange(10)[:, None, None, None] * np.array([0.03, 0.0, 0.0])
    checker = PlausibilityFilter()
    kept = [checker.check(START_NS + i * 1_000_000, hands[i], BOTH).all() for i in range(10)]
    assert all(kept)


@pytest.mark.parametrize("kind", ["all_equal", "all_zero", "collapsed_palm", "giant", "jump"])
def test_one_degenerate_frame_in_a_30_hz_stream_loses_no_result(kind):
    model = tiny_model()
    config = PipelineConfig(num_samples=3, horizon_frames=32, top_k=3, max_clips=4, clip_stride=16)  # one per clip
    clean = stream(6 * 16)
    faulty = list(clean)
    index = 37  # inside the third clip
    joints = faulty[index].joints.astype(np.float64)
    bad = joints.copy()
    bad[0, :] += 1.0 if kind == "jump" else 0.0
    if kind != "jump":
        bad = _degenerate(joints, kind)
    faulty[index] = dataclasses.replace(faulty[index], joints=bad.astype(np.float32))

    expected = push_all(StreamingPipeline(model, config), clean)
    pipeline = StreamingPipeline(model, config)
    results = push_all(pipeline, faulty)
    assert [i for i, _ in results] == [i for i, _ in expected] == [15, 31, 47, 63, 79, 95]
    assert pipeline.stats.implausible_hands == 1 and pipeline.stats.resets == 0
    for _, result in results:
        assert np.isfinite(result.refined_joints[result.refined_presence]).all()
        present = result.prediction.hand_present
        assert np.isfinite(result.prediction.positions[:, :, present]).all()
        assert all(np.isfinite(h.score) for h in result.recognition.hypotheses)
    # the masked frame is the only difference: results before it are identical
    np.testing.assert_array_equal(results[1][1].refined_joints, expected[1][1].refined_joints)
