"""Recognition averaged over clip alignments (test-time averaging, issue 12.2).

The protocol cuts an action into 16-frame clips from its first frame, but where the clip boundaries fall is arbitrary
(a tracker starts at any frame, a live pipeline cuts wherever the stream is). Scoring the action also with its first
4, 8 and 12 frames left out (the clips then start a quarter, half and three quarters of a clip later) and averaging
the class scores (softmax over the taxonomy) removes that arbitrariness. The offsets were chosen on the validation
subjects (docs/training.md, recognition ablation); an action too short to keep a whole clip after an offset is scored
unshifted for that offset.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable, Protocol

import torch

from ghtt_core.evaluate.protocols import RecognitionSequences

DEFAULT_OFFSETS = (0, 4, 8, 12)


class ScoringRecognizer(Protocol):
    """A recognizer that also gives class scores: scores(sequences) -> (N, C), rows summing to 1."""

    name: str

    def scores(self, sequences: RecognitionSequences) -> torch.Tensor:
        ...


def parse_offsets(text: str) -> tuple[int, ...]:
    """'0,4,8,12' -> (0, 4, 8, 12); offsets are frames >= 0, without repeats."""
    try:
        offsets = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise ValueError(f"clip offsets must be comma-separated frame counts such as 0,4,8,12, got {text!r}") from None
    if any(offset < 0 for offset in offsets) or len(set(offsets)) != len(offsets):
        raise ValueError(f"clip offsets must be distinct frame counts >= 0, got {text!r}")
    return offsets


def shifted(actions: RecognitionSequences, offset: int) -> RecognitionSequences:
    """The actions with their first `offset` frames left out and re-cut into clips from there; the frames freed at the
    end are padding. Actions with fewer than offset + one clip of real frames stay as they are."""
    if offset == 0:
        return actions
    num_actions, num_clips, clip_frames = actions.frame_valid.shape
    frames = actions.frame_valid.flatten(1, 2)
    movable = frames.sum(dim=1) >= offset + clip_frames

    def shift(values: torch.Tensor, padding) -> torch.Tensor:
        flat = values.flatten(1, 2)
        moved = torch.cat([flat[:, offset:], torch.full_like(flat[:, :offset], padding)], dim=1)
        keep = movable.view(-1, *[1] * (flat.dim() - 1))
        return torch.where(keep, moved, flat).reshape(values.shape)

    return dataclasses.replace(
        actions,
        input_joints=shift(actions.input_joints, 0.0),
        input_presence=shift(actions.input_presence, False),
        truth_joints=shift(actions.truth_joints, 0.0),
        truth_presence=shift(actions.truth_presence, False),
        frame_valid=shift(actions.frame_valid, False),
    )


def averaged_scores(score: Callable[[RecognitionSequences], torch.Tensor], actions: RecognitionSequences,
                    offsets=DEFAULT_OFFSETS) -> torch.Tensor:
    """(N, C) mean of score(shifted(actions, offset)) over the offsets."""
    if not offsets:
        raise ValueError("at least one clip offset is needed")
    return torch.stack([score(shifted(actions, offset)) for offset in offsets]).mean(dim=0)


@dataclass
class OffsetAveragedRecognizer:
    """A scoring recognizer whose class scores are averaged over clip offsets (protocols.Recognizer)."""

    recognizer: ScoringRecognizer
    offsets: tuple = DEFAULT_OFFSETS

    @property
    def name(self) -> str:
        return f"{self.recognizer.name}, {len(self.offsets)} clip offsets"

    def recognize(self, sequences: RecognitionSequences) -> torch.Tensor:
        return averaged_scores(self.recognizer.scores, sequences, self.offsets).argmax(dim=1)
