"""The recurrent recognition baseline: a bidirectional GRU on the raw input joints (no G-HTT features, no text).

One implementation for the dataset card (`ghtt data card`), `ghtt benchmark` and `ghtt training-report`, so every
report compares G-HTT with the same baseline. Per frame (docs/benchmarks.md): each hand's joints relative to its
wrist (cm), its wrist velocity (cm per frame) and its presence, in the camera frame of the input; frames of absent
hands are zero. A 2-layer bidirectional GRU reads the real frames of an action (packed, so padding is never seen
in either direction); the mean of its outputs over the real frames goes through a linear layer to the class logits.
Training: cross-entropy, AdamW (ghtt_core.evaluate.fitting), a fixed number of steps.
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

    def forward(self, features: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """features (B, T, 134), lengths (B,) real frames from the start -> logits (B, classes)."""
        if (lengths < 1).any():
            raise ValueError("every sequence needs at least one frame")
        packed = nn.utils.rnn.pack_padded_sequence(self.norm(features), lengths.cpu(), batch_first=True,
                                                   enforce_sorted=False)
        outputs, _ = self.gru(packed)
        outputs, _ = nn.utils.rnn.pad_packed_sequence(outputs, batch_first=True, total_length=features.shape[1])
        real = torch.arange(features.shape[1], device=features.device)[None] < lengths.to(features.device)[:, None]
        pooled = (outputs * real[..., None]).sum(dim=1) / lengths.to(outputs)[:, None]
        return self.head(pooled)


def sequence_inputs(sequences: RecognitionSequences) -> tuple[torch.Tensor, torch.Tensor]:
    """The input poses of whole actions -> features (N, K*16, 134), lengths (N,) (actions are padded at the end)."""
    joints = sequences.input_joints.flatten(1, 2)
    presence = sequences.input_presence.flatten(1, 2)
    valid = sequences.frame_valid.flatten(1, 2)
    return frame_features(joints, presence & valid[..., None]), valid.sum(dim=1)


def train_gru_baseline(model: GRUClassifier, train: RecognitionSequences, options: FitOptions) -> list[float]:
    """Cross-entropy over whole training actions; returns the loss of every step."""
    features, lengths = sequence_inputs(train)

    def batch_loss(batch, generator):
        return nn.functional.cross_entropy(model(features[batch], lengths[batch]), train.labels[batch])

    return fit(model, len(train), batch_loss, options)


@dataclass
class GRURecognizer:
    """Adapter to the recognition protocol (ghtt_core.evaluate.protocols.Recognizer)."""

    model: GRUClassifier
    name: str = "BiGRU (raw joints)"

    @torch.no_grad()
    def recognize(self, sequences: RecognitionSequences) -> torch.Tensor:
        self.model.eval()
        return self.model(*sequence_inputs(sequences)).argmax(dim=-1)
