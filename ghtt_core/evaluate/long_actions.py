"""Recognition of actions longer than the A-Block's capacity (`max_clips` clips of 16 frames).

The A-Enc reads at most `capacity` clips, so a longer action is scored in one of two ways (LONG_ACTION_MODES):
* "first" (the authors' evaluation, the default): its first `capacity` clips only (what
  protocols.recognition_sequences cuts);
* "sliding": windows of `capacity` clips every capacity // 2 clips, the last one ending at the action's last clip;
  each window gets the phases of its own clips since the action start (as in training, where windows start at any
  clip), and the class scores (softmax over the taxonomy) of the windows are averaged.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch

from ghtt_core.evaluate.protocols import CLIP_FRAMES, RecognitionSequences, class_scores, recognition_sequences

LONG_ACTION_MODES = ("first", "sliding")


@dataclass
class LongActions:
    """The actions longer than `capacity` clips: rows (L,) of them in protocols.recognition_sequences order (every
    action of the sequences, in order), and all their clips (no cut)."""

    rows: list[int]
    clips: RecognitionSequences | None  # None when there is no long action


def find_long_actions(sequences, taxonomy, capacity: int, clip_frames: int = CLIP_FRAMES) -> LongActions:
    """The actions of HandSequences longer than capacity x clip_frames frames, uncut."""
    max_frames = capacity * clip_frames
    rows, kept = [], []
    row = 0
    for sequence in sequences:
        long = [segment for segment in sequence.actions if segment.end - segment.start > max_frames]
        rows.extend(row + index for index, segment in enumerate(sequence.actions) if segment in long)
        row += len(sequence.actions)
        if long:
            kept.append(dataclasses.replace(sequence, actions=long))
    if not rows:
        return LongActions([], None)
    most_clips = max(-(-(segment.end - segment.start) // clip_frames) for s in kept for segment in s.actions)
    return LongActions(rows, recognition_sequences(kept, taxonomy, max_clips=most_clips, clip_frames=clip_frames))


def window_starts(num_clips: int, capacity: int) -> list[int]:
    """First clips of the windows of `capacity` clips over `num_clips` clips: every capacity // 2 clips, and one
    ending at the last clip."""
    if num_clips <= capacity:
        return [0]
    starts = list(range(0, num_clips - capacity + 1, max(1, capacity // 2)))
    if starts[-1] != num_clips - capacity:
        starts.append(num_clips - capacity)
    return starts


def sliding_window_scores(inference, actions: RecognitionSequences, capacity: int, nouns=None) -> torch.Tensor:
    """(L, C): per action, the mean class scores over its windows (module docstring). nouns: the object name of each
    action for the object token (None: the unknown-object token)."""
    rows = []
    for index in range(len(actions)):
        clips = int(actions.frame_valid[index].any(dim=-1).sum())
        starts = torch.tensor(window_starts(clips, capacity))
        window_clips = starts[:, None] + torch.arange(min(capacity, clips))  # (W, capacity) clip indices
        observation = inference.encode_observation(actions.input_joints[index][window_clips],
                                                   actions.input_presence[index][window_clips],
                                                   actions.frame_valid[index][window_clips])
        names = None if nouns is None else [[nouns[index]] * window_clips.shape[1]] * len(starts)
        rows.append(class_scores(inference, observation, names, phase=window_clips).mean(dim=0))
    return torch.stack(rows)
