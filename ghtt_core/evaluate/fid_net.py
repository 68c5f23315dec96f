"""The FID feature network (method-notes 9.3): an action-recognition encoder whose global token is the FID feature.

Per-frame input: the 153-d G-HTT feature (ghtt_core.representation.encode_features; the first frame of a sequence
is the base, so its velocity is the identity), embedded like the P-Block's frames. A learnable global token is put in
front, sinusoidal positions go on queries and keys (pre-norm encoder of ghtt_core.nn), and padded frames are masked.
Trained on GT sequences of up to `max_frames` frames: L1 between the global output and a learned projection of the
label's text embedding, plus a contrastive CE over all labels (tau 0.07). The feature is the global token's output.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ghtt_core.action_block import TextAlignment
from ghtt_core.config import TransformerConfig, from_dict
from ghtt_core.evaluate.metrics import top1_accuracy
from ghtt_core.nn import SinusoidalTable, TransformerEncoder
from ghtt_core.pose_block import FrameFeatureEmbedding
from ghtt_core.representation import encode_features
from ghtt_core.skeleton import NUM_HANDS, NUM_JOINTS

FORMAT = "ghtt-fid-net"
FORMAT_VERSION = 1


def _small_transformer() -> TransformerConfig:
    return TransformerConfig(d_model=128, n_heads=4, d_ff=256, n_enc_layers=2, n_dec_layers=1)


@dataclass
class FIDNetConfig:
    """Only the encoder fields of `transformer` are used (n_dec_layers is ignored). Default: the `small` size."""

    transformer: TransformerConfig = field(default_factory=_small_transformer)
    max_frames: int = 256
    text_dim: int = 384
    tau: float = 0.07

    def __post_init__(self):
        if self.max_frames < 1:
            raise ValueError(f"max_frames must be >= 1, got {self.max_frames}")
        if self.tau <= 0:
            raise ValueError(f"tau must be > 0, got {self.tau}")


FID_PRESETS = {
    "small": FIDNetConfig,
    # method-notes 9.3: 9 layers, d 512, 8 heads, FF 2048, GELU
    "paper": lambda: FIDNetConfig(transformer=TransformerConfig(n_enc_layers=9, n_dec_layers=1)),
}


def fid_preset(name: str, text_dim: int = 384) -> FIDNetConfig:
    if name not in FID_PRESETS:
        raise ValueError(f"unknown FID-net preset {name!r}; choose one of {sorted(FID_PRESETS)}")
    return dataclasses.replace(FID_PRESETS[name](), text_dim=text_dim)


@dataclass
class LabelledSequences:
    """GT sequences with one action label each.

    joints (N, T, 2, 21, 3) metres, presence (N, T, 2) bool, frame_valid (N, T) bool, labels (N,) long.
    """

    joints: torch.Tensor
    presence: torch.Tensor
    frame_valid: torch.Tensor
    labels: torch.Tensor

    def __post_init__(self):
        n, t = self.joints.shape[:2]
        if tuple(self.joints.shape[2:]) != (NUM_HANDS, NUM_JOINTS, 3):
            raise ValueError(f"joints must be (N, T, 2, 21, 3), got {tuple(self.joints.shape)}")
        if self.presence.shape != (n, t, NUM_HANDS) or self.frame_valid.shape != (n, t) or self.labels.shape != (n,):
            raise ValueError("presence (N, T, 2), frame_valid (N, T) and labels (N,) must match the joints")

    def __len__(self) -> int:
        return len(self.labels)


def action_sequences(sequences, taxonomy, max_frames: int = 256, stride: int | None = None) -> LabelledSequences:
    """Trimmed action windows of HandSequences: from every action's start, every `stride` frames (default
    max_frames), windows of at most max_frames frames that end at the action end. All windows are padded to the
    longest one (padding repeats the last frame and is invalid). taxonomy: ghtt_core.taxonomy.Taxonomy."""
    stride = stride or max_frames
    windows = []
    for sequence in sequences:
        for segment in sequence.actions:
            label = taxonomy.action_index(segment.label)
            for start in range(segment.start, segment.end, stride):
                windows.append((sequence, start, min(segment.end, start + max_frames), label))
    if not windows:
        raise ValueError("no action segments in the sequences")
    length = max(end - start for _, start, end, _ in windows)
    frame_offsets = np.arange(length)
    joints, presence, frame_valid = [], [], []
    for sequence, start, end, _ in windows:
        frames = np.minimum(start + frame_offsets, end - 1)
        valid = start + frame_offsets < end
        joints.append(torch.from_numpy(sequence.joints[frames]))
        presence.append(torch.from_numpy(sequence.presence[frames] & valid[:, None]))
        frame_valid.append(torch.from_numpy(valid))
    labels = torch.tensor([label for *_, label in windows], dtype=torch.long)
    return LabelledSequences(torch.stack(joints), torch.stack(presence), torch.stack(frame_valid), labels)


class FIDNet(nn.Module):
    def __init__(self, config: FIDNetConfig):
        super().__init__()
        self.config = config
        d_model = config.transformer.d_model
        self.embedding = FrameFeatureEmbedding(d_model)
        self.positions = SinusoidalTable(d_model, config.max_frames + 1)
        self.global_token = nn.Parameter(torch.randn(1, 1, d_model))
        self.encoder = TransformerEncoder(config.transformer)
        self.alignment = TextAlignment(config.text_dim, d_model, config.tau)

    @property
    def feature_dim(self) -> int:
        return self.config.transformer.d_model

    def forward(self, features, feature_mask, frame_valid) -> torch.Tensor:
        """features (B, T, 153) float, feature_mask (B, T, 153) bool, frame_valid (B, T) bool -> (B, d)."""
        batch, num_frames = features.shape[:2]
        if num_frames > self.config.max_frames:
            raise ValueError(f"sequences may have at most {self.config.max_frames} frames, got {num_frames}")
        if frame_valid.dtype != torch.bool or frame_valid.shape != (batch, num_frames):
            raise ValueError(f"frame_valid must be bool ({batch}, {num_frames}), got {tuple(frame_valid.shape)}")
        tokens = torch.cat([self.global_token.expand(batch, 1, -1), self.embedding(features, feature_mask)], dim=1)
        valid = torch.cat([frame_valid.new_ones(batch, 1), frame_valid], dim=1)  # the global token is never masked
        return self.encoder(tokens, self.positions(num_frames + 1), valid)[:, 0]

    def extract_features(self, joints, presence, frame_valid=None, batch_size: int = 64) -> torch.Tensor:
        """FID features (B, d) float32 of camera-space sequences joints (B, T, 2, 21, 3) metres, presence (B, T, 2),
        frame_valid (B, T) (None: all real). Hands that are absent (or in padded frames) may hold anything."""
        joints = torch.as_tensor(joints)
        presence = torch.as_tensor(presence)
        if frame_valid is None:
            frame_valid = torch.ones(joints.shape[:2], dtype=torch.bool)
        frame_valid = torch.as_tensor(frame_valid)
        was_training = self.training
        self.eval()
        try:
            with torch.no_grad():
                return torch.cat([
                    self(*_network_inputs(joints[i : i + batch_size], presence[i : i + batch_size],
                                          frame_valid[i : i + batch_size], self.global_token.device))
                    for i in range(0, len(joints), batch_size)
                ])
        finally:
            self.train(was_training)

    def predict_labels(self, global_features, label_embeddings) -> torch.Tensor:
        """(B, d) features, (C, text_dim) label embeddings -> (B,) index of the nearest projected label."""
        return self.alignment.top_k(global_features, label_embeddings, k=1)[1][:, 0]


def _network_inputs(joints, presence, frame_valid, device):
    """Encode in float64 (method-notes 1.4) and cast to float32 for the network."""
    frame_valid = frame_valid.to(device)
    encoded = encode_features(joints.to(device, torch.float64), presence.to(device), frame_valid)
    return encoded.features.float(), encoded.feature_mask, frame_valid


@dataclass
class FIDTrainingOptions:
    epochs: int = 30
    batch_size: int = 32
    learning_rate: float = 1e-4
    seed: int = 0

    def __post_init__(self):
        if self.epochs < 1 or self.batch_size < 1 or self.learning_rate <= 0:
            raise ValueError("epochs and batch_size must be >= 1 and learning_rate > 0")


@dataclass
class FIDTrainingReport:
    """Mean training loss (L1 + contrastive CE) per epoch and the top-1 recognition accuracy after training."""

    epoch_losses: list[float]
    train_accuracy: float
    val_accuracy: float | None


def recognition_accuracy(model: FIDNet, sequences: LabelledSequences, label_embeddings, batch_size: int = 64) -> float:
    """Top-1 accuracy (micro average) of the FID net's own action recognition."""
    features = model.extract_features(sequences.joints, sequences.presence, sequences.frame_valid, batch_size)
    with torch.no_grad():
        predicted = model.predict_labels(features, label_embeddings.to(features.device))
    return top1_accuracy(predicted.cpu(), sequences.labels)


def train_fid_net(
    model: FIDNet,
    train: LabelledSequences,
    label_embeddings: torch.Tensor,
    options: FIDTrainingOptions,
    val: LabelledSequences | None = None,
    on_epoch: Callable[[int, float], None] | None = None,
) -> FIDTrainingReport:
    """Train in place with Adam on the GT sequences; label_embeddings (C, text_dim) in class-index order.
    on_epoch(epoch, mean_loss) is called after every epoch (progress/logging)."""
    device = model.global_token.device
    label_embeddings = label_embeddings.to(device)
    inputs = [torch.cat(parts) for parts in zip(*(
        _network_inputs(train.joints[i : i + 256], train.presence[i : i + 256], train.frame_valid[i : i + 256], device)
        for i in range(0, len(train), 256)
    ))]
    labels = train.labels.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=options.learning_rate)
    generator = torch.Generator().manual_seed(options.seed)
    epoch_losses = []
    model.train()
    for epoch in range(options.epochs):
        total, count = 0.0, 0
        for batch in torch.randperm(len(train), generator=generator).split(options.batch_size):
            batch = batch.to(device)
            global_features = model(*(part[batch] for part in inputs))
            losses = model.alignment.losses(global_features, label_embeddings, labels[batch])
            loss = losses["dist"] + losses["con"]
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(batch)
            count += len(batch)
        epoch_losses.append(total / count)
        if on_epoch is not None:
            on_epoch(epoch, epoch_losses[-1])
    return FIDTrainingReport(
        epoch_losses,
        recognition_accuracy(model, train, label_embeddings),
        None if val is None else recognition_accuracy(model, val, label_embeddings),
    )


@dataclass
class StoredFIDNet:
    model: FIDNet
    action_labels: list[str]
    label_embeddings: torch.Tensor  # (C, text_dim), the order of action_labels
    accuracy: dict  # e.g. {"train": 0.9, "val": 0.8}


def save_fid_net(path: str | Path, model: FIDNet, action_labels: list[str], label_embeddings: torch.Tensor,
                 accuracy: dict):
    if len(action_labels) != len(label_embeddings):
        raise ValueError(f"{len(action_labels)} labels but {len(label_embeddings)} label embeddings")
    torch.save({
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "config": dataclasses.asdict(model.config),
        "state": {name: value.detach().cpu() for name, value in model.state_dict().items()},
        "action_labels": list(action_labels),
        "label_embeddings": label_embeddings.detach().cpu(),
        "accuracy": {name: float(value) for name, value in accuracy.items()},
    }, Path(path))


def load_fid_net(path: str | Path, device: str | torch.device = "cpu") -> StoredFIDNet:
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"FID net file not found: {path}")
    payload = torch.load(path, map_location="cpu", weights_only=True)
    if payload.get("format") != FORMAT or payload.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{path} is not a {FORMAT} v{FORMAT_VERSION} file")
    model = FIDNet(from_dict(FIDNetConfig, payload["config"]))
    model.load_state_dict(payload["state"])
    model.to(device).eval()
    return StoredFIDNet(model, payload["action_labels"], payload["label_embeddings"], payload["accuracy"])
