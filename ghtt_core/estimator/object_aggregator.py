"""Clip-wise object aggregator (method-notes 8.2, "POEnc"): the per-frame object features of a clip -> one object
feature in the text-embedding space, read from a learnable global token of a small pre-norm transformer."""

from dataclasses import asdict, dataclass

import torch
from torch import nn

from ghtt_core.config import TransformerConfig
from ghtt_core.estimator.object_embedding import nearest_label_index
from ghtt_core.nn import SinusoidalTable, TransformerEncoder


@dataclass(frozen=True)
class ObjectAggregatorConfig:
    feature_dim: int = 512
    num_layers: int = 2
    num_heads: int = 8
    feedforward_dim: int = 2048
    max_frames: int = 16
    # Gaussian noise on the input features while training (paper: N(0, 0.01^2)).
    train_noise_std: float = 0.01

    def __post_init__(self):
        if self.feature_dim % self.num_heads:
            raise ValueError(f"feature_dim {self.feature_dim} must be divisible by num_heads {self.num_heads}")
        if self.num_layers < 1 or self.max_frames < 1:
            raise ValueError(f"need num_layers >= 1 and max_frames >= 1, got {self.num_layers}, {self.max_frames}")


class ObjectAggregator(nn.Module):
    def __init__(self, config=None):
        super().__init__()
        self.config = config or ObjectAggregatorConfig()
        dim = self.config.feature_dim
        self.global_token = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
        # The shared pre-norm encoder (positions on queries/keys, dropout 0, final LayerNorm); no decoder is built.
        self.encoder = TransformerEncoder(TransformerConfig(
            d_model=dim, n_heads=self.config.num_heads, d_ff=self.config.feedforward_dim,
            n_enc_layers=self.config.num_layers, n_dec_layers=1, activation="relu",
        ))
        self.positions = SinusoidalTable(dim, self.config.max_frames + 1)

    def forward(self, frame_features, frame_valid=None):
        """frame_features: (B, T, D) per-frame object features; frame_valid: (B, T) bool, True = real frame.
        Returns (B, D). A clip needs at least one valid frame."""
        batch, frames, dim = frame_features.shape
        if dim != self.config.feature_dim or frames > self.config.max_frames:
            raise ValueError(
                f"expected (B, T <= {self.config.max_frames}, {self.config.feature_dim}) features, got "
                f"{tuple(frame_features.shape)}"
            )
        if frame_valid is None:
            frame_valid = torch.ones(batch, frames, dtype=torch.bool, device=frame_features.device)
        if not frame_valid.any(dim=1).all():
            raise ValueError("every clip needs at least one valid frame")
        if self.training and self.config.train_noise_std > 0:
            frame_features = frame_features + torch.randn_like(frame_features) * self.config.train_noise_std
        tokens = torch.cat([self.global_token.expand(batch, -1, -1), frame_features], dim=1)
        valid = torch.cat([frame_valid.new_ones(batch, 1), frame_valid], dim=1)
        return self.encoder(tokens, self.positions(frames + 1).unsqueeze(0), valid)[:, 0]

    @torch.no_grad()
    def nearest_object(self, frame_features, label_names, label_embeddings, frame_valid=None):
        """Aggregate clips and snap each to the most similar object name (the paper's use inside G-HTT)."""
        aggregated = self(frame_features, frame_valid)
        return [label_names[i] for i in nearest_label_index(aggregated, label_embeddings).tolist()]


def save_object_aggregator(aggregator, path):
    torch.save({"config": asdict(aggregator.config), "model": aggregator.state_dict()}, path)


def load_object_aggregator(path, device="cpu"):
    state = torch.load(path, map_location=device, weights_only=True)
    aggregator = ObjectAggregator(ObjectAggregatorConfig(**state["config"]))
    aggregator.load_state_dict(state["model"])
    return aggregator.to(device).eval()
