"""The recurrent recognition baseline: a bidirectional GRU on the raw input joints (no G-HTT features, no text).

One implementation for the dataset card (`ghtt data card`), `ghtt benchmark` and `ghtt training-report`, so every
report compares G-HTT with the same baseline. Per frame (docs/benchmarks.md): each hand's joints relative to its
wrist (cm), its wrist velocity (cm per frame) and its presence, in the camera frame of the input; frames of absent
hands are zero. Each action is resampled to `frames` evenly spaced frames over its real frames (the velocities are
taken between resampled frames), so every action costs the same and the baseline trains in about a minute on a
laptop CPU. A 2-layer bidirectional GRU reads them; the mean of its outputs goes through a linear layer to the class
logits. Training: cross-entropy, AdamW (ghtt_core.evaluate.fitting), a fixed number of steps.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ghtt_core.evaluate.fitting import FitOptions, fit
from ghtt_core.evaluate.protocols import RecognitionSequences
from ghtt_core.skeleton import NUM_HANDS, NUM_JOINTS

FRAME_FEATURES = NUM_HANDS * (NUM_JOINTS * 3 + 3 + 1)  # 134


@dataclass
class GRUBaselineConfig:
    hidden: int = 128
    layers: int = 2
    bidirectional: bool = True
    frames: int = 32  # every action is resampled to this many frames


def frame_features(joints: torch.Tensor, presence: torch.Tensor) -> torch.Tensor:
    """joints (..., T, 2, 21, 3) metres, presence (..., T, 2) -> (..., T, 134) float32 GRU inputs."""
    joints = torch.nan_to_num(joints.float()) * presence[..., None, None]
    relative = (joints - joints[..., :1, :]) * 100.0
    wrist = joints[..., 0, :] * 100.0
    velocity = torch.diff(wrist, dim=-3, prepend=wrist[..., :1, :, :])
    # A hand appearing or vanishing is not a velocity.
    seen_twice = presence & torch.cat([presence[..., :1, :], presence[..., :-1, :]], dim=-2)
    velocity = velocity * seen_twice[..., None]
    return torch.cat([relative.flatten(-3), velocity.flatten(-2), presence.float()], dim=-1)


class GRUClassifier(nn.Module):
    def __init__(self, num_classes: int, cfg: GRUBaselineConfig | None = None):
        super().__init__()
        self.cfg = cfg or GRUBaselineConfig()
        directions = 2 if self.cfg.bidirectional else 1
        self.norm = nn.LayerNorm(FRAME_FEATURES)
        self.gru = nn.GRU(FRAME_FEATURES, self.cfg.hidden, num_layers=self.cfg.layers, batch_first=True,
                          bidirectional=self.cfg.bidirectional)
        self.head = nn.Linear(directions * self.cfg.hidden, num_classes)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """features (B, frames, 134) -> logits (B, classes)."""
        outputs, _ = self.gru(self.norm(features))
        return self.head(outputs.mean(dim=1))


def resampled_frames(lengths: torch.Tensor, frames: int) -> torch.Tensor:
    """(N,) real frames per action -> (N, frames) indices spread evenly from the first to the last real frame."""
    if (lengths < 1).any():
        raise ValueError("every action needs at least one frame")
    steps = torch.linspace(0.0, 1.0, frames)
    return (steps[None] * (lengths[:, None] - 1)).round().long()


def sequence_inputs(sequences: RecognitionSequences, frames: int) -> torch.Tensor:
    """The input poses of whole actions (padded at the end) -> resampled features (N, frames, 134)."""
    joints = sequences.input_joints.flatten(1, 2)
    presence = sequences.input_presence.flatten(1, 2) & sequences.frame_valid.flatten(1, 2)[..., None]
    index = resampled_frames(sequences.frame_valid.flatten(1, 2).sum(dim=1), frames)
    rows = torch.arange(len(index))[:, None]
    return frame_features(joints[rows, index], presence[rows, index])


def baseline_fit_options(steps: int, seed: int = 0) -> FitOptions:
    """The baseline's training recipe (batch 32, learning rate 2e-3) for a number of steps."""
    return FitOptions(steps=steps, batch_size=32, learning_rate=2e-3, seed=seed)


def train_gru_baseline(model: GRUClassifier, train: RecognitionSequences, options: FitOptions,
                       progress_label: str | None = None) -> list[float]:
    """Cross-entropy over whole training actions (labels outside the taxonomy are left out); returns the loss of
    every step."""
    return fit_gru_features(model, sequence_inputs(train, model.cfg.frames), train.labels, options, progress_label)


def fit_gru_features(model: GRUClassifier, features: torch.Tensor, labels: torch.Tensor, options: FitOptions,
                     progress_label: str | None = None) -> list[float]:
    """train_gru_baseline on ready inputs: features (N, frames, 134) (sequence_inputs), labels (N,) (-1 = outside
    the taxonomy, left out)."""
    known = labels >= 0
    features, labels = features[known], labels[known]
    if not len(labels):
        raise ValueError("no training action with a class of the taxonomy")

    def batch_loss(batch, generator):
        return nn.functional.cross_entropy(model(features[batch]), labels[batch])

    return fit(model, len(labels), batch_loss, options, progress_label)


@torch.no_grad()
def predict_classes(model: GRUClassifier, features: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """features (N, frames, 134) -> (N,) predicted class indices."""
    model.eval()
    return torch.cat([model(part).argmax(dim=-1) for part in features.split(batch_size)])


@dataclass
class GRURecognizer:
    """Adapter to the recognition protocol (ghtt_core.evaluate.protocols.Recognizer)."""

    model: GRUClassifier
    name: str = "BiGRU (raw joints)"

    def recognize(self, sequences: RecognitionSequences) -> torch.Tensor:
        return predict_classes(self.model, sequence_inputs(sequences, self.model.cfg.frames))

    @torch.no_grad()
    def scores(self, sequences: RecognitionSequences) -> torch.Tensor:
        """(N, C) softmax scores of every class."""
        self.model.eval()
        return self.model(sequence_inputs(sequences, self.model.cfg.frames)).softmax(dim=-1)
