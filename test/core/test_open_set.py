"""Open-set outcomes (ghtt_core.open_set): `idle` when no hand moves or none is in view, `unknown` when no class of
the taxonomy scores high enough, in place of a confident closed-set label; and the streaming pipeline reporting
them while its motion prediction stays conditioned on the closed-set class."""

import dataclasses

import numpy as np
import pytest
from model_batches import moving_hands
from tiny_models import tiny_model

from ghtt_core.open_set import IDLE, UNKNOWN, hand_speed_m_s, open_set_hypotheses
from ghtt_core.pipeline import FrameInput, PipelineConfig, StreamingPipeline
from ghtt_core.results import Hypothesis

PERIOD_S = 1 / 30
CLOSED = [Hypothesis("open jar", "open", "jar", 0.7), Hypothesis("pour cup", "pour", "cup", 0.2),
          Hypothesis("grab cup", "grab", "cup", 0.1)]


def _clip(velocity_m_s, noise_m=0.0, frames=16, seed=0):
    rng = np.random.default_rng(seed)
    start = rng.normal(0, 0.05, (2, 21, 3)) + np.array([0.0, 0.0, 0.5])
    times = np.arange(frames)[:, None, None, None] * PERIOD_S
    joints = start + times * np.asarray(velocity_m_s)[:, None] + rng.normal(0, noise_m, (frames, 2, 21, 3))
    return joints, np.ones((frames, 2), bool)


def test_hand_speed_is_the_fastest_hands_net_speed_and_ignores_estimation_noise():
    joints, presence = _clip([[0.2, 0.0, 0.0], [0.0, 0.0, 0.05]])
    assert hand_speed_m_s(joints, presence, PERIOD_S) == pytest.approx(0.2, rel=1e-6)
    still, presence = _clip([[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]], noise_m=0.005)  # 5 mm jitter per joint and frame
    assert hand_speed_m_s(still, presence, PERIOD_S) < 0.03
    presence[:, 0] = False
    presence[:6, 1] = False  # the right hand is present in 10 of 16 frames: still measured
    assert hand_speed_m_s(joints, presence, PERIOD_S) == pytest.approx(0.05, rel=1e-6)
    presence[:, 1] = False
    assert hand_speed_m_s(joints, presence, PERIOD_S) is None  # no hand in view


def test_idle_and_unknown_come_first_and_the_list_stays_sorted_and_a_sub_probability():
    idle = open_set_hypotheses(CLOSED, speed_m_s=0.0075, idle_speed_m_s=0.03, min_action_score=0.3)
    assert idle[0].label == IDLE and idle[0].score == pytest.approx(0.5 + 0.5 * 0.75)
    assert [h.label for h in idle[1:]] == [h.label for h in CLOSED]
    assert [h.score for h in idle[1:]] == pytest.approx([h.score * (1 - idle[0].score) for h in CLOSED])
    assert open_set_hypotheses(CLOSED, None, 0.03, 0.0)[0].score == 1.0  # no hand in view: idle
    weak = [Hypothesis(h.label, h.verb, h.noun, s) for h, s in zip(CLOSED, (0.25, 0.2, 0.1))]
    unknown = open_set_hypotheses(weak, speed_m_s=0.3, idle_speed_m_s=0.03, min_action_score=0.3)
    assert unknown[0].label == UNKNOWN and unknown[0].score == pytest.approx(0.75)
    for result in (idle, unknown):
        scores = [h.score for h in result]
        assert scores == sorted(scores, reverse=True) and sum(scores) <= 1.0 + 1e-9
    assert open_set_hypotheses(CLOSED, 0.3, 0.03, 0.3) == CLOSED  # moving, confident: unchanged
    assert open_set_hypotheses(weak, None, 0.0, 0.0) == weak  # both outcomes switched off


@pytest.fixture(scope="module")
def model():
    return tiny_model()


def _frames(joints, start_ns=1_000_000_000):
    return [FrameInput(stamp_ns=start_ns + round(i * PERIOD_S * 1e9), joints=joints[i], presence=np.ones(2, bool),
                       frame_id="camera") for i in range(len(joints))]


def test_the_pipeline_says_idle_for_still_hands_and_keeps_predicting_for_the_closed_set_class(model):
    # one result per clip: results 0, 1 end in the moving clips, 2, 3 in the still ones
    config = PipelineConfig(num_samples=2, horizon_frames=16, top_k=3, max_clips=4, clip_stride=16)
    moving = moving_hands(1, 32, 0)[0].numpy()
    still = np.repeat(moving[31:32], 32, axis=0)
    results = [r for r in map(StreamingPipeline(model, config).push, _frames(np.concatenate([moving, still])))
               if r is not None]
    labels = [r.recognition.hypotheses[0].label for r in results]
    assert labels[2:] == [IDLE, IDLE] and IDLE not in labels[:2]
    closed = [h.label for h in results[3].recognition.hypotheses[1:]]
    assert results[3].prediction.conditioning_action.label == closed[0]  # the forecast needs a real class
    off = dataclasses.replace(config, idle_speed_m_s=0.0)
    results = [r for r in map(StreamingPipeline(model, off).push, _frames(np.concatenate([moving, still])))
               if r is not None]
    assert IDLE not in [r.recognition.hypotheses[0].label for r in results]


def test_min_action_score_above_one_half_is_rejected():
    with pytest.raises(ValueError, match="min_action_score"):
        PipelineConfig(min_action_score=0.6)
