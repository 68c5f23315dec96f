"""Recognition-only baseline with HTT's two-level structure (method-notes 11.3), without generation.

HTT (Wen et al., CVPR 2023) stacks a short-span pose transformer over the frames of a clip and a long-span action
transformer over the clips. Here, on skeletons only (no image or object features):
- per frame: the 153-d G-HTT feature of the (estimated) input pose, each 16-frame clip encoded on its own (its first
  frame has the identity velocity), embedded like the P-Block's frames;
- P-transformer: [clip token, 16 frame tokens] + sinusoidal positions, padded frames masked -> clip token output;
- A-transformer: [action token, clip features + phase code] + positions, padded clips masked -> action feature;
- training: the A-Block's text alignment (L1 to the projected label embedding + contrastive CE, tau 0.07), no KL,
  no decoder. Prediction: the nearest projected label.
There is no VAE bottleneck and no generative objective, so it isolates what the generative hierarchy adds to (or
costs) recognition.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from ghtt_core.action_block import TextAlignment
from ghtt_core.config import TransformerConfig
from ghtt_core.evaluate.fitting import FitOptions, fit
from ghtt_core.evaluate.protocols import RecognitionSequences
from ghtt_core.nn import SinusoidalTable, TransformerEncoder
from ghtt_core.pose_block import FrameFeatureEmbedding
from ghtt_core.representation import encode_features


def _small_transformer() -> TransformerConfig:
    return TransformerConfig(d_model=128, n_heads=4, d_ff=256, n_enc_layers=2, n_dec_layers=1)


@dataclass
class HTTBaselineConfig:
    """Only the encoder fields of `transformer` are used; both levels share them (HTT: 2 + 2 layers)."""

    transformer: TransformerConfig = field(default_factory=_small_transformer)
    clip_len: int = 16
    max_clips: int = 16
    text_dim: int = 384
    tau: float = 0.07


class HTTBaseline(nn.Module):
    def __init__(self, cfg: HTTBaselineConfig):
        super().__init__()
        self.cfg = cfg
        d = cfg.transformer.d_model
        self.embedding = FrameFeatureEmbedding(d)
        self.clip_token = nn.Parameter(torch.randn(1, 1, d))
        self.action_token = nn.Parameter(torch.randn(1, 1, d))
        self.positions = SinusoidalTable(d, max(cfg.clip_len, cfg.max_clips) + 1)
        self.pose_transformer = TransformerEncoder(cfg.transformer)
        self.action_transformer = TransformerEncoder(cfg.transformer)
        self.alignment = TextAlignment(cfg.text_dim, d, cfg.tau)

    def forward(self, features, feature_mask, frame_valid) -> torch.Tensor:
        """features (B, K, N, 153), feature_mask (B, K, N, 153), frame_valid (B, K, N) -> action feature (B, d)."""
        batch, clips, frames = frame_valid.shape
        if clips > self.cfg.max_clips:
            raise ValueError(f"at most {self.cfg.max_clips} clips, got {clips}")
        tokens = self.embedding(features.flatten(0, 1), feature_mask.flatten(0, 1))
        frame_valid = frame_valid.flatten(0, 1)
        tokens = torch.cat([self.clip_token.expand(len(tokens), 1, -1), tokens], dim=1)
        valid = torch.cat([frame_valid.new_ones(len(tokens), 1), frame_valid], dim=1)
        clip_outputs = self.pose_transformer(tokens, self.positions(frames + 1), valid)[:, 0]
        clip_tokens = clip_outputs.unflatten(0, (batch, clips))
        clip_valid = frame_valid.unflatten(0, (batch, clips)).any(dim=-1)
        tokens = torch.cat([self.action_token.expand(batch, 1, -1), clip_tokens], dim=1)
        valid = torch.cat([clip_valid.new_ones(batch, 1), clip_valid], dim=1)
        return self.action_transformer(tokens, self.positions(clips + 1), valid)[:, 0]


def clip_features(sequences: RecognitionSequences):
    """Network inputs of the input poses: features float32 (N, K, N_f, 153), feature mask, frame validity."""
    encoded = encode_features(sequences.input_joints.double(), sequences.input_presence, sequences.frame_valid)
    return encoded.features.float(), encoded.feature_mask, sequences.frame_valid


def train_htt_baseline(model: HTTBaseline, train: RecognitionSequences, action_embeddings: torch.Tensor,
                       options: FitOptions) -> list[float]:
    """Fit L_dist + L_con over whole training actions; returns the loss of every step."""
    inputs = clip_features(train)

    def batch_loss(batch, generator):
        terms = model.alignment.losses(model(*(part[batch] for part in inputs)), action_embeddings, train.labels[batch])
        return terms["dist"] + terms["con"]

    return fit(model, len(train), batch_loss, options)


@dataclass
class HTTRecognizer:
    """Adapter to the recognition protocol (ghtt_core.evaluate.protocols.Recognizer)."""

    model: HTTBaseline
    action_embeddings: torch.Tensor
    name: str = "HTT (recognition only)"

    @torch.no_grad()
    def recognize(self, sequences: RecognitionSequences) -> torch.Tensor:
        self.model.eval()
        return self.model.alignment.top_k(self.model(*clip_features(sequences)), self.action_embeddings, k=1)[1][:, 0]
