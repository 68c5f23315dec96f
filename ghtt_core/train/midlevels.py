"""Mid-level cache for A-Block training: the frozen P-Enc mu of every 16-frame clip of every trimmed action.

Clips start at the action's first frame and tile it (stride = clip length); the last clip is padded by repeating its
last frame, with those frames marked invalid. Each clip is encoded on its own (its first frame gets the identity
velocity, as at inference). Two mid-levels per clip: from the ground-truth joints (the A-Dec targets) and from the
encoder's input joints (estimated poses when the sequence has them and they are asked for; otherwise the truth).
On request the action's ground-truth joints are kept too, for the A-Block rollout loss (train.action).

Augmentation (training only, `augment_copies` > 0): each action also enters the cache that many more times, each
copy time-warped (played back at a speed drawn from `speed_range`, so velocities change as for a faster or slower
person) and, with probability `mirror_p`, mirrored (left and right hands swapped and reflected across the camera's
y-z plane, as if a left-handed person did it). The G-HTT features are invariant to rotations and translations of
the camera, so a rotation or shift augmentation would change nothing.
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


@dataclass(frozen=True)
class MidLevelAugmentation:
    copies: int = 0  # augmented copies per action (0 = none)
    speed_range: tuple = (0.8, 1.25)
    mirror_p: float = 0.5
    seed: int = 0

    def __post_init__(self):
        low, high = self.speed_range
        if self.copies < 0 or not 0 < low <= high or not 0.0 <= self.mirror_p <= 1.0:
            raise ValueError(f"bad augmentation {self}: copies >= 0, 0 < speed low <= high, mirror_p in [0, 1]")


def mirror_hands(joints: np.ndarray, presence: np.ndarray):
    """Swap left and right and reflect x: (T, 2, 21, 3), (T, 2) -> the same motion done with the other hands."""
    mirrored = joints[:, ::-1].copy()
    mirrored[..., 0] *= -1.0
    return mirrored, presence[:, ::-1].copy()


def time_warp(arrays, length: int, speed: float):
    """Frames of each (T, ...) array played back `speed` times as fast (nearest frame) -> (round(T / speed), ...)."""
    frames = np.minimum(np.round(np.arange(max(1, round(length / speed))) * speed).astype(int), length - 1)
    return [array[frames] for array in arrays]


def _augmented_actions(joints, presence, source_joints, source_presence, augment: MidLevelAugmentation, rng):
    """The action's frames (truth, encoder input) and `augment.copies` warped / mirrored copies of them."""
    yield joints, presence, source_joints, source_presence
    for _ in range(augment.copies):
        speed = rng.uniform(*augment.speed_range)
        parts = time_warp([joints, presence, source_joints, source_presence], len(joints), speed)
        if rng.random() < augment.mirror_p:
            parts = [*mirror_hands(parts[0], parts[1]), *mirror_hands(parts[2], parts[3])]
        yield tuple(parts)


def build_midlevel_cache(
    pose_block: PoseBlock,
    sequences,
    taxonomy: Taxonomy,
    use_estimated_input: bool = True,
    min_frames: int = 2,
    keep_truth_joints: bool = False,
    augment: MidLevelAugmentation | None = None,
) -> list[ActionMidLevels]:
    """Mid-levels of every action segment (of at least `min_frames` frames) of HandSequences, in one pass.

    All clips of all actions are encoded together in large batches; the P-Block is used in eval mode.
    keep_truth_joints: also keep each action's ground-truth joints and presence. augment: add time-warped / mirrored
    copies of every action (module docstring).
    """
    augment = augment or MidLevelAugmentation()
    rng = np.random.default_rng(augment.seed)
    was_training = pose_block.training
    pose_block.eval()
    clip_len = pose_block.cfg.clip_len
    truth_parts, input_parts, records = [[], [], []], [[], [], []], []
    for sequence in sequences:
        has_estimate = use_estimated_input and sequence.estimated_joints is not None
        for segment in sequence.actions:
            if segment.end - segment.start < min_frames:
                continue
            frames = slice(segment.start, segment.end)
            source_joints = (sequence.estimated_joints if has_estimate else sequence.joints)[frames]
            source_presence = (sequence.estimated_presence if has_estimate else sequence.presence)[frames]
            for joints, presence, input_joints, input_presence in _augmented_actions(
                    sequence.joints[frames], sequence.presence[frames], source_joints, source_presence, augment, rng):
                length = len(joints)
                truth = action_clips(joints, presence, 0, length, clip_len)
                source = action_clips(input_joints, input_presence, 0, length, clip_len)
                for parts, clips in ((truth_parts, truth), (input_parts, source)):
                    for part, array in zip(parts, clips):
                        part.append(array)
                truth_frames = (torch.from_numpy(np.ascontiguousarray(joints)).float(),
                                torch.from_numpy(np.ascontiguousarray(presence)).bool()) if keep_truth_joints \
                    else (None, None)
                records.append((len(truth[0]), taxonomy.action_index(segment.label),
                                taxonomy.object_index(segment.noun), sequence.name, segment.start, truth_frames))
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
