"""Mid-level cache for A-Block training: the frozen P-Enc mu of every 16-frame clip of every trimmed action.

Clips start at the action's first frame and tile it (stride = clip length); the last clip is padded by repeating its
last frame, with those frames marked invalid. Each clip is encoded on its own (its first frame gets the identity
velocity, as at inference). Two mid-levels per clip: from the ground-truth joints (the A-Dec targets) and from the
encoder's input joints (estimated poses when the sequence has them and they are asked for; otherwise the truth).
On request the action's ground-truth joints are kept too, for the A-Block rollout loss (train.action).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ghtt_core.pose_block import PoseBlock
from ghtt_core.representation import encode_features
from ghtt_core.taxonomy import Taxonomy


@dataclass
class ActionMidLevels:
    """One trimmed action: input and target mid-levels (K, d) with their clip validity (K,), class and object."""

    input_mids: torch.Tensor
    target_mids: torch.Tensor
    input_valid: torch.Tensor
    target_valid: torch.Tensor
    label: int
    noun: int
    sequence: str
    start: int
    truth_joints: torch.Tensor | None = None  # (F, 2, 21, 3) float32 metres, the action's frames
    truth_presence: torch.Tensor | None = None  # (F, 2) bool


def action_clips(joints: np.ndarray, presence: np.ndarray, start: int, end: int, clip_len: int):
    """Frames [start, end) tiled into clips: joints (K, N, 2, 21, 3), presence (K, N, 2), frame_valid (K, N)."""
    num_clips = -(-(end - start) // clip_len)
    frames = start + np.arange(num_clips * clip_len)
    frame_valid = frames < end
    frames = np.minimum(frames, end - 1)  # padding repeats the last real frame
    shape = (num_clips, clip_len)
    return (
        joints[frames].reshape(*shape, *joints.shape[1:]),
        presence[frames].reshape(*shape, 2),
        frame_valid.reshape(shape),
    )


@torch.no_grad()
def encode_clip_mids(pose_block: PoseBlock, joints, presence, frame_valid, batch_size: int = 512):
    """P-Enc mu of clips: joints (K, N, 2, 21, 3), presence (K, N, 2), frame_valid (K, N) -> mids (K, d) and
    clip validity (K,), on the CPU. As at inference, the encoder attends to real frames showing at least one hand;
    a clip without any such frame is invalid (zero mid-level)."""
    device = next(pose_block.parameters()).device
    mids, valid_clips = [], []
    for first in range(0, len(joints), batch_size):
        chunk = slice(first, first + batch_size)
        clip_joints = torch.as_tensor(joints[chunk], dtype=torch.float64)
        features = encode_features(clip_joints, torch.as_tensor(presence[chunk]), torch.as_tensor(frame_valid[chunk]))
        encoder_valid = features.presence.any(dim=-1)
        mids.append(pose_block.encode_clips(features.features.float()[None].to(device),
                                            features.feature_mask[None].to(device),
                                            encoder_valid[None].to(device))[0].cpu())
        valid_clips.append(encoder_valid.any(dim=-1))
    if not mids:
        return torch.zeros(0, pose_block.d_model), torch.zeros(0, dtype=torch.bool)
    return torch.cat(mids), torch.cat(valid_clips)


def build_midlevel_cache(
    pose_block: PoseBlock,
    sequences,
    taxonomy: Taxonomy,
    use_estimated_input: bool = True,
    min_frames: int = 2,
    keep_truth_joints: bool = False,
) -> list[ActionMidLevels]:
    """Mid-levels of every action segment (of at least `min_frames` frames) of HandSequences, in one pass.

    All clips of all actions are encoded together in large batches; the P-Block is used in eval mode.
    keep_truth_joints: also keep each action's ground-truth joints and presence.
    """
    was_training = pose_block.training
    pose_block.eval()
    clip_len = pose_block.cfg.clip_len
    truth_parts, input_parts, records = [[], [], []], [[], [], []], []
    for sequence in sequences:
        has_estimate = use_estimated_input and sequence.estimated_joints is not None
        for segment in sequence.actions:
            if segment.end - segment.start < min_frames:
                continue
            truth = action_clips(sequence.joints, sequence.presence, segment.start, segment.end, clip_len)
            if has_estimate:
                source = action_clips(sequence.estimated_joints, sequence.estimated_presence, segment.start,
                                      segment.end, clip_len)
            else:
                source = truth
            for parts, clips in ((truth_parts, truth), (input_parts, source)):
                for part, array in zip(parts, clips):
                    part.append(array)
            frames = slice(segment.start, segment.end)
            truth_frames = (torch.from_numpy(sequence.joints[frames]).float(),
                            torch.from_numpy(sequence.presence[frames]).bool()) if keep_truth_joints else (None, None)
            records.append((len(truth[0]), taxonomy.action_index(segment.label), taxonomy.object_index(segment.noun),
                            sequence.name, segment.start, truth_frames))
    if not records:
        pose_block.train(was_training)
        return []
    truth_mids, truth_valid = encode_clip_mids(pose_block, *(np.concatenate(part) for part in truth_parts))
    input_mids, input_valid = encode_clip_mids(pose_block, *(np.concatenate(part) for part in input_parts))
    pose_block.train(was_training)
    cache, first = [], 0
    for num_clips, label, noun, name, start, (truth_joints, truth_presence) in records:
        clips = slice(first, first + num_clips)
        cache.append(ActionMidLevels(input_mids[clips], truth_mids[clips], input_valid[clips], truth_valid[clips],
                                     label, noun, name, start, truth_joints, truth_presence))
        first += num_clips
    return cache
