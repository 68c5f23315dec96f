"""Recognition averaged over clip alignments: what a shift does to an action, and how scores are averaged."""

import pytest
import torch

from ghtt_core.evaluate.clip_offsets import OffsetAveragedRecognizer, averaged_scores, parse_offsets, shifted
from ghtt_core.evaluate.protocols import RecognitionSequences

CLIP = 16


def actions(lengths, clips=3):
    """Actions whose joints hold their frame number, padded to `clips` clips."""
    frames = clips * CLIP
    number = torch.arange(frames, dtype=torch.float32).view(1, frames, 1, 1, 1).expand(len(lengths), frames, 2, 21, 3)
    valid = torch.arange(frames)[None] < torch.tensor(lengths)[:, None]
    presence = valid[..., None].expand(-1, -1, 2).clone()
    shape = (len(lengths), clips, CLIP)
    joints = number.reshape(*shape, 2, 21, 3).clone()
    return RecognitionSequences(
        input_joints=joints, input_presence=presence.reshape(*shape, 2), truth_joints=joints.double(),
        truth_presence=presence.reshape(*shape, 2), frame_valid=valid.reshape(shape),
        labels=torch.arange(len(lengths)), views=["v"] * len(lengths))


def test_a_shift_leaves_out_the_first_frames_and_pads_the_end():
    moved = shifted(actions([40]), 4)
    first_frames = moved.input_joints.flatten(1, 2)[0, :, 0, 0, 0]
    assert first_frames[:36].tolist() == list(range(4, 40))
    assert moved.frame_valid.flatten(1, 2)[0].sum() == 36
    assert not moved.input_presence.flatten(1, 2)[0, 36:].any()
    assert moved.truth_joints.flatten(1, 2)[0, 0, 0, 0, 0] == 4
    assert moved.input_joints.shape == (1, 3, CLIP, 2, 21, 3)


def test_an_action_too_short_for_the_shift_stays_as_it_is():
    original = actions([40, 19])
    moved = shifted(original, 4)  # 19 - 4 < one clip
    assert torch.equal(moved.input_joints[1], original.input_joints[1])
    assert torch.equal(moved.frame_valid[1], original.frame_valid[1])
    assert moved.input_joints.flatten(1, 2)[0, 0, 0, 0, 0] == 4
    assert shifted(original, 0) is original


def test_scores_are_averaged_over_the_offsets_and_the_recognizer_takes_the_best_class():
    def first_frame_scores(sequences):  # class 0 when the action starts at an even frame, else class 1
        first = sequences.input_joints[:, 0, 0, 0, 0, 0]
        odd = (first % 2 == 1).float()
        return torch.stack([1 - odd, odd], dim=1)

    sequences = actions([48])
    assert averaged_scores(first_frame_scores, sequences, (0, 1, 3)).tolist() == [[pytest.approx(1 / 3),
                                                                                  pytest.approx(2 / 3)]]

    class Scorer:
        name = "fake"
        scores = staticmethod(first_frame_scores)

    recognizer = OffsetAveragedRecognizer(Scorer(), (0, 1, 3))
    assert recognizer.name == "fake, 3 clip offsets"
    assert recognizer.recognize(sequences).tolist() == [1]
    assert OffsetAveragedRecognizer(Scorer(), (0, 2)).recognize(sequences).tolist() == [0]


def test_offsets_are_parsed_and_bad_ones_rejected():
    assert parse_offsets("0,4,8,12") == (0, 4, 8, 12)
    assert parse_offsets("0") == (0,)
    for text in ("0,a", "0,-4", "4,4", ""):
        with pytest.raises(ValueError, match="clip offsets"):
            parse_offsets(text)
    with pytest.raises(ValueError, match="at least one"):
        averaged_scores(lambda s: s.labels, actions([20]), ())
