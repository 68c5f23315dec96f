"""The BiGRU recognition baseline (ghtt_core.evaluate.gru_baseline): inputs, resampling, and that it learns."""

import torch

from ghtt_core.evaluate.fitting import FitOptions
from ghtt_core.evaluate.gru_baseline import (GRUClassifier, GRUBaselineConfig, GRURecognizer, frame_features,
                                             resampled_frames, train_gru_baseline)
from ghtt_core.evaluate.protocols import RecognitionSequences


def test_resampling_spans_the_real_frames_of_each_action():
    index = resampled_frames(torch.tensor([1, 17, 256]), 5)
    assert index.tolist() == [[0] * 5, [0, 4, 8, 12, 16], [0, 64, 128, 191, 255]]


def test_frame_features_zero_absent_hands_and_velocities_across_a_gap():
    joints = torch.randn(4, 2, 21, 3)
    presence = torch.tensor([[True, True], [True, False], [True, True], [True, True]])
    features = frame_features(joints, presence)
    assert features.shape == (4, 134)
    right_joints = slice(63, 126)
    assert torch.equal(features[1, right_joints], torch.zeros(63))
    velocity = features[:, 126:132].view(4, 2, 3)
    assert torch.equal(velocity[2, 1], torch.zeros(3))  # the right hand came back: not a velocity
    torch.testing.assert_close(velocity[2, 0], (joints[2, 0, 0] - joints[1, 0, 0]) * 100)
    assert features[:, -2:].tolist() == presence.float().tolist()


def _two_class_actions(count, seed):
    """Class 0: both hands still; class 1: both hands move steadily along x."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.arange(count) % 2
    shape = torch.randn(1, 1, 1, 2, 21, 3, generator=torch.Generator().manual_seed(7)) * 0.05
    base = shape + torch.randn(count, 1, 1, 2, 21, 3, generator=generator) * 0.002
    frames = torch.arange(32, dtype=torch.float32).view(1, 2, 16, 1, 1, 1)
    motion = labels.view(-1, 1, 1, 1, 1, 1).float() * frames * torch.tensor([0.01, 0.0, 0.0])
    joints = base + motion
    presence = torch.ones(count, 2, 16, 2, dtype=torch.bool)
    valid = torch.ones(count, 2, 16, dtype=torch.bool)
    valid[::3, 1, 8:] = False  # some actions are shorter
    return RecognitionSequences(joints, presence, joints, presence, valid, labels, ["v"] * count)


def test_the_baseline_learns_a_separable_problem():
    torch.manual_seed(0)
    model = GRUClassifier(2, GRUBaselineConfig(hidden=16, frames=12))
    losses = train_gru_baseline(model, _two_class_actions(32, 0), FitOptions(steps=60, batch_size=16,
                                                                             learning_rate=1e-2))
    assert losses[-1] < 0.5 * losses[0]
    test = _two_class_actions(20, 1)
    assert (GRURecognizer(model).recognize(test) == test.labels).float().mean() == 1.0
