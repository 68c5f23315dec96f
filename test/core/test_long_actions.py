"""Recognition of actions longer than the A-Block's capacity (ghtt_core.evaluate.long_actions)."""

import numpy as np
import torch
from model_batches import moving_hands
from tiny_models import TAXONOMY, tiny_model

from ghtt_core.data.sequence import ActionSegment, HandSequence
from ghtt_core.evaluate.long_actions import class_scores, find_long_actions, sliding_window_scores, window_starts
from ghtt_core.evaluate.protocols import recognition_sequences
from ghtt_core.inference import GHTTInference

CAPACITY = 4  # clips the A-Enc reads in these tests


def _inference():
    model = tiny_model(seed=1)
    model.config.action.max_clips = CAPACITY
    return GHTTInference(model)


def _sequence(lengths):
    """One sequence of consecutive "open jar" / "pour cup" actions of the given lengths (frames)."""
    joints = moving_hands(1, sum(lengths), seed=2)[0].numpy()
    segments, start = [], 0
    for index, length in enumerate(lengths):
        label, verb, noun = ("open jar", "open", "jar") if index % 2 == 0 else ("pour cup", "pour", "cup")
        segments.append(ActionSegment(start, start + length, label, verb, noun))
        start += length
    return HandSequence("seq", joints, np.ones(joints.shape[:2], dtype=bool), actions=segments)


def test_windows_of_capacity_clips_every_half_capacity_and_one_at_the_end():
    assert window_starts(3, 4) == [0]
    assert window_starts(4, 4) == [0]
    assert window_starts(8, 4) == [0, 2, 4]
    assert window_starts(9, 4) == [0, 2, 4, 5]
    assert window_starts(26, 16) == [0, 8, 10]


def test_long_actions_are_found_uncut_in_recognition_order():
    sequences = [_sequence([40, 100]), _sequence([70, 30, 65])]
    long = find_long_actions(sequences, TAXONOMY, CAPACITY)  # longer than 64 frames
    assert long.rows == [1, 2, 4]
    assert long.clips.frame_valid.sum(dim=(1, 2)).tolist() == [100, 70, 65]
    assert long.clips.frame_valid.shape[1] == 7  # all clips of the longest (100 frames)
    assert find_long_actions([_sequence([40, 64])], TAXONOMY, CAPACITY).clips is None


def test_sliding_scores_average_the_windows_with_their_own_phases():
    inference = _inference()
    actions = find_long_actions([_sequence([150])], TAXONOMY, CAPACITY).clips  # 10 clips: windows at 0, 2, 4, 6
    scores = sliding_window_scores(inference, actions, CAPACITY, nouns=["jar"])
    expected = []
    for start in (0, 2, 4, 6):
        clips = slice(start, start + CAPACITY)
        observation = inference.encode_observation(actions.input_joints[:, clips], actions.input_presence[:, clips],
                                                   actions.frame_valid[:, clips])
        phase = torch.arange(start, start + CAPACITY)[None]
        expected.append(class_scores(inference, observation, [["jar"] * CAPACITY], phase=phase))
    torch.testing.assert_close(scores, torch.cat(expected).mean(dim=0, keepdim=True))
    assert torch.allclose(scores.sum(dim=1), torch.ones(1))


def test_an_action_that_fits_gets_the_scores_of_one_pass():
    inference = _inference()
    actions = recognition_sequences([_sequence([50])], TAXONOMY, max_clips=CAPACITY)
    observation = inference.encode_observation(actions.input_joints, actions.input_presence, actions.frame_valid)
    torch.testing.assert_close(sliding_window_scores(inference, actions, CAPACITY), class_scores(inference, observation))
