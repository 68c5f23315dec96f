"""Dataset API for the models: P-Block windows over untrimmed sequences and A-Block clip sequences over actions.

Both datasets take HandSequences from any source and yield joints + masks only (the model side computes features).
Random choices use torch's global generator, so DataLoader workers get distinct, seedable streams.
"""

import math

import numpy as np
import torch
from torch.utils.data import Dataset, default_collate

from ghtt_core.taxonomy import Taxonomy


def _gather(sequence, frames, valid, with_estimated):
    """Pick frames (already clamped into the sequence) and mask hands in invalid frames as absent."""
    sample = {
        "joints": torch.from_numpy(sequence.joints[frames]),
        "presence": torch.from_numpy(sequence.presence[frames] & valid[..., None]),
    }
    if with_estimated:
        if sequence.estimated_joints is None:
            raise ValueError(f"{sequence.name}: estimated poses requested but the sequence has none")
        sample["estimated_joints"] = torch.from_numpy(np.ascontiguousarray(sequence.estimated_joints[frames]))
        sample["estimated_presence"] = torch.from_numpy(sequence.estimated_presence[frames] & valid[..., None])
    return sample


class PoseWindowDataset(Dataset):
    """Windows of obs_frames observed + pred_frames future frames starting every `stride` frames of each sequence.

    Frames past the sequence end repeat the last frame and are invalid. With probability obs_len_augment_p the
    window keeps only obs_len ~ U{2..obs_frames} valid observed frames: the remaining observed slots repeat the last
    valid frame (invalid) and the future starts right after it (method-notes sections 7 and 10.4).
    Items: joints (L, 2, 21, 3) float32, presence (L, 2) bool, frame_valid (L,) bool, obs_len int, with
    L = obs_frames + pred_frames, plus estimated_joints / estimated_presence when with_estimated.
    """

    def __init__(self, sequences, obs_frames=16, pred_frames=16, stride=1, obs_len_augment_p=0.0,
                 with_estimated=False):
        if obs_frames < 2 or pred_frames < 1 or stride < 1:
            raise ValueError(f"need obs_frames >= 2, pred_frames >= 1, stride >= 1; got {obs_frames}, "
                             f"{pred_frames}, {stride}")
        if not 0.0 <= obs_len_augment_p <= 1.0:
            raise ValueError(f"obs_len_augment_p must be a probability, got {obs_len_augment_p}")
        self.sequences = list(sequences)
        self.obs_frames, self.pred_frames = obs_frames, pred_frames
        self.obs_len_augment_p = obs_len_augment_p
        self.with_estimated = with_estimated
        self.windows = [(i, start) for i, seq in enumerate(self.sequences) for start in range(0, seq.num_frames, stride)]

    def __len__(self):
        return len(self.windows)

    def __getitem__(self, index):
        seq_index, start = self.windows[index]
        sequence = self.sequences[seq_index]
        obs_len = self.obs_frames
        if self.obs_len_augment_p > 0 and torch.rand(()) < self.obs_len_augment_p:
            obs_len = int(torch.randint(2, self.obs_frames + 1, ()))
        slots = np.arange(self.obs_frames + self.pred_frames)
        observed = slots < self.obs_frames
        offsets = np.where(observed, np.minimum(slots, obs_len - 1), obs_len + slots - self.obs_frames)
        raw = start + offsets
        valid = (raw < sequence.num_frames) & (~observed | (slots < obs_len))
        sample = _gather(sequence, np.minimum(raw, sequence.num_frames - 1), valid, self.with_estimated)
        sample["frame_valid"] = torch.from_numpy(valid)
        sample["obs_len"] = obs_len
        return sample


class ActionClipDataset(Dataset):
    """Trimmed actions cut into clips of clip_frames, for the A-Block (method-notes section 10.4).

    Windows start every `stride` frames inside each action. Training: n_obs ~ U{1..min(capacity, action clips)},
    n_pred ~ U{1..min(capacity, remaining)} (0 if none). Evaluation: n_obs = eval_obs_clips and n_pred =
    min(eval_pred_clips + 1, remaining), the last loaded future clip marked invalid (nothing follows it to decode into).
    Future frames run to the action end (trimmed=True) or to the sequence end; padding repeats the last valid frame.
    Items: obs_joints (capacity, N, 2, 21, 3), obs_presence (capacity, N, 2), obs_frame_valid (capacity, N),
    obs_clip_valid (capacity,), obs_phase (capacity,) clip index since the action start; fut_* the same with
    capacity + 1 clip slots; action, verb, noun (taxonomy indices), n_obs, n_pred.
    """

    def __init__(self, sequences, taxonomy: Taxonomy, clip_frames=16, capacity=16, stride=16, train=True,
                 eval_obs_clips=1, eval_pred_clips=6, trimmed=True, min_action_frames_left=1, with_estimated=False):
        if clip_frames < 1 or capacity < 1 or stride < 1:
            raise ValueError("clip_frames, capacity and stride must be positive")
        self.sequences = list(sequences)
        self.taxonomy = taxonomy
        self.clip_frames, self.capacity = clip_frames, capacity
        self.train, self.trimmed = train, trimmed
        self.eval_obs_clips, self.eval_pred_clips = eval_obs_clips, eval_pred_clips
        self.with_estimated = with_estimated
        self.windows = [
            (i, a, start)
            for i, seq in enumerate(self.sequences)
            for a, segment in enumerate(seq.actions)
            for start in range(segment.start, segment.end, stride)
            if segment.end - start >= min_action_frames_left
        ]

    def __len__(self):
        return len(self.windows)

    def _clips(self, sequence, first_frame, count, slots, end_frame, phase0):
        frames = first_frame + np.arange(slots)[:, None] * self.clip_frames + np.arange(self.clip_frames)[None]
        valid = (frames < end_frame) & (np.arange(slots)[:, None] < count)
        last_valid = max(min(first_frame + count * self.clip_frames, end_frame) - 1, first_frame)
        sample = _gather(sequence, np.minimum(frames, min(last_valid, sequence.num_frames - 1)), valid,
                         self.with_estimated)
        sample["frame_valid"] = torch.from_numpy(valid)
        sample["clip_valid"] = torch.from_numpy(np.arange(slots) < count)
        sample["phase"] = torch.from_numpy(phase0 + np.arange(slots))
        return sample

    def __getitem__(self, index):
        seq_index, action_index, start = self.windows[index]
        sequence = self.sequences[seq_index]
        segment = sequence.actions[action_index]
        action_clips = math.ceil((segment.end - start) / self.clip_frames)
        if self.train:
            n_obs = int(torch.randint(1, min(self.capacity, action_clips) + 1, ()))
            remaining = action_clips - n_obs
            n_pred = int(torch.randint(1, min(self.capacity, remaining) + 1, ())) if remaining > 0 else 0
            n_pred_valid = n_pred
        else:
            n_obs = min(self.eval_obs_clips, action_clips)
            remaining = action_clips - n_obs
            n_pred = min(self.eval_pred_clips + 1, remaining)
            n_pred_valid = max(n_pred - 1, 0)
        phase0 = (start - segment.start) // self.clip_frames
        end_frame = segment.end if self.trimmed else sequence.num_frames
        observed = self._clips(sequence, start, n_obs, self.capacity, segment.end, phase0)
        future = self._clips(sequence, start + n_obs * self.clip_frames, n_pred, self.capacity + 1, end_frame,
                             phase0 + n_obs)
        future["clip_valid"][n_pred_valid:] = False
        sample = {f"obs_{k}": v for k, v in observed.items()}
        sample.update({f"fut_{k}": v for k, v in future.items()})
        sample.update(
            action=self.taxonomy.action_index(segment.label),
            verb=self.taxonomy.verb_index(segment.verb),
            noun=self.taxonomy.object_index(segment.noun),
            n_obs=n_obs,
            n_pred=n_pred,
        )
        return sample


def collate_samples(batch):
    """Stack a list of samples from either dataset into a batch (tensors stacked, ints -> LongTensor)."""
    if not batch:
        raise ValueError("collate_samples: empty batch")
    keys = set(batch[0])
    if any(set(sample) != keys for sample in batch):
        raise ValueError("collate_samples: samples have different keys (mixed with_estimated settings?)")
    return default_collate(batch)
