"""P-Block windows and A-Block clip sequences: frame selection, padding, augmentation, sampling, collation."""

import numpy as np
import pytest
import torch

from ghtt_core.data.sequence import ActionSegment, HandSequence
from ghtt_core.taxonomy import Taxonomy
from ghtt_core.data.windows import ActionClipDataset, PoseWindowDataset, collate_samples


def frame_coded_sequence(num_frames=100, actions=(), estimated=True):
    """joints[t] == t everywhere, so every sample says which frames it took."""
    joints = np.broadcast_to(np.arange(num_frames, dtype=np.float32)[:, None, None, None], (num_frames, 2, 21, 3))
    presence = np.ones((num_frames, 2), dtype=bool)
    presence[10:20, 0] = False
    return HandSequence("coded", joints.copy(), presence, actions=list(actions),
                        estimated_joints=joints + 0.5 if estimated else None,
                        estimated_presence=presence.copy() if estimated else None)


def frames_of(joints):
    return joints[:, 0, 0, 0].numpy().astype(int)


def test_pose_windows_cover_the_sequence_and_pad_past_the_end():
    dataset = PoseWindowDataset([frame_coded_sequence(100)], stride=16, with_estimated=True)
    assert len(dataset) == 7  # starts 0, 16, ..., 96
    first = dataset[0]
    assert first["joints"].shape == (32, 2, 21, 3) and first["presence"].shape == (32, 2)
    assert np.array_equal(frames_of(first["joints"]), np.arange(32))
    assert first["frame_valid"].all() and first["obs_len"] == 16
    assert not first["presence"][10:20, 0].any() and first["presence"][10:20, 1].all()
    assert torch.allclose(first["estimated_joints"], first["joints"] + 0.5)
    last = dataset[6]
    assert np.array_equal(frames_of(last["joints"]), np.minimum(np.arange(96, 128), 99))
    assert last["frame_valid"].sum() == 4 and not last["presence"][4:].any()


def test_observation_length_augmentation():
    torch.manual_seed(0)
    dataset = PoseWindowDataset([frame_coded_sequence(100)], stride=1, obs_len_augment_p=1.0)
    lengths = set()
    for index in range(0, 60, 3):
        sample = dataset[index]
        obs_len = sample["obs_len"]
        lengths.add(obs_len)
        frames = frames_of(sample["joints"]) - index
        assert np.array_equal(frames[:16], np.minimum(np.arange(16), obs_len - 1))  # repeats the last valid frame
        assert np.array_equal(frames[16:], obs_len + np.arange(16))  # future starts right after it
        assert np.array_equal(sample["frame_valid"][:16].numpy(), np.arange(16) < obs_len)
    assert min(lengths) >= 2 and max(lengths) <= 16 and len(lengths) > 4


def test_pose_window_arguments_are_checked():
    with pytest.raises(ValueError, match="obs_len_augment_p"):
        PoseWindowDataset([frame_coded_sequence()], obs_len_augment_p=2.0)
    with pytest.raises(ValueError, match="estimated poses"):
        PoseWindowDataset([frame_coded_sequence(estimated=False)], with_estimated=True)[0]


ACTIONS = [ActionSegment(5, 75, "open jar", "open", "jar"), ActionSegment(80, 200, "stir cup", "stir", "cup")]
TAXONOMY = Taxonomy.from_segments(ACTIONS)


def test_action_clips_in_evaluation_mode():
    dataset = ActionClipDataset([frame_coded_sequence(220, ACTIONS)], TAXONOMY, capacity=8, train=False,
                                eval_obs_clips=1, eval_pred_clips=3)
    assert len(dataset) == 5 + 8  # windows every 16 frames inside each action
    sample = dataset[0]  # "open jar" from frame 5: 70 frames = 5 clips
    assert sample["action"] == TAXONOMY.action_index("open jar")
    assert sample["verb"] == TAXONOMY.verb_index("open") and sample["noun"] == TAXONOMY.object_index("jar")
    assert sample["n_obs"] == 1 and sample["n_pred"] == 4
    assert sample["obs_joints"].shape == (8, 16, 2, 21, 3) and sample["fut_joints"].shape == (9, 16, 2, 21, 3)
    assert np.array_equal(frames_of(sample["obs_joints"][0]), np.arange(5, 21))
    assert sample["obs_clip_valid"].tolist() == [True] + [False] * 7
    # four future clips loaded, the last one is there only to be decoded into: three valid clips
    assert sample["fut_clip_valid"].tolist() == [True] * 3 + [False] * 6
    assert np.array_equal(frames_of(sample["fut_joints"][3]), np.minimum(np.arange(69, 85), 74))
    assert sample["fut_frame_valid"][3].sum() == 6  # trimmed: the action ends at frame 75
    assert sample["fut_phase"][:4].tolist() == [1, 2, 3, 4]
    later = dataset[2]  # window from frame 37 has 3 clips left
    assert later["obs_phase"][0] == 2 and later["n_pred"] == 2


def test_action_clips_training_sampling_and_untrimmed_future():
    torch.manual_seed(1)
    dataset = ActionClipDataset([frame_coded_sequence(220, ACTIONS)], TAXONOMY, capacity=4, trimmed=False)
    seen = set()
    for index in range(len(dataset)):
        for _ in range(3):
            sample = dataset[index]
            n_obs, n_pred = sample["n_obs"], sample["n_pred"]
            seen.add((n_obs, n_pred))
            assert 4 >= n_obs >= 1 and 4 >= n_pred >= 0
            assert sample["obs_clip_valid"].sum() == n_obs and sample["fut_clip_valid"].sum() == n_pred
            assert sample["obs_frame_valid"][n_obs:].sum() == 0
    assert len(seen) > 6
    # untrimmed: future frames after the action end stay valid up to the sequence end
    dataset.train = False
    sample = dataset[3]  # "open jar" window from frame 53: one observed clip, the next runs past the action end
    assert sample["n_pred"] == 1
    assert np.array_equal(frames_of(sample["fut_joints"][0]), np.arange(69, 85))
    assert sample["fut_frame_valid"][0].all()
    assert dataset[4]["n_pred"] == 0  # window from frame 69: a single clip, nothing left to predict


def test_collate_batches_both_kinds_of_sample():
    windows = PoseWindowDataset([frame_coded_sequence(100)], stride=16)
    batch = collate_samples([windows[i] for i in range(4)])
    assert batch["joints"].shape == (4, 32, 2, 21, 3) and batch["obs_len"].dtype == torch.int64
    clips = ActionClipDataset([frame_coded_sequence(220, ACTIONS)], TAXONOMY, capacity=4, train=False)
    batch = collate_samples([clips[i] for i in range(3)])
    assert batch["fut_joints"].shape == (3, 5, 16, 2, 21, 3) and batch["action"].shape == (3,)
    with_estimates = PoseWindowDataset([frame_coded_sequence(100)], stride=16, with_estimated=True)
    with pytest.raises(ValueError, match="different keys"):
        collate_samples([windows[0], with_estimates[0]])
