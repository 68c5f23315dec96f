"""Tiny datasets and configs for the training tests (CPU, a few seconds)."""

import numpy as np
import torch

from ghtt_core.checkpoint import LabelEmbeddings
from ghtt_core.config import ActionBlockConfig, FlattenedConfig, ModelConfig, PoseBlockConfig, TransformerConfig
from ghtt_core.data.sequence import ActionSegment, HandSequence
from ghtt_core.taxonomy import Taxonomy
from model_batches import moving_hands

TEXT_DIM = 16


def tiny_config() -> ModelConfig:
    def transformer():
        return TransformerConfig(d_model=32, n_heads=2, d_ff=64, n_enc_layers=1, n_dec_layers=1)

    return ModelConfig(
        pose=PoseBlockConfig(transformer=transformer()),
        action=ActionBlockConfig(transformer=transformer(), max_clips=4, text_dim=TEXT_DIM),
        flattened=FlattenedConfig(transformer=transformer(), text_dim=TEXT_DIM),
    )


class WindowList(torch.utils.data.Dataset):
    """32-frame windows in the PoseWindowDataset item layout."""

    def __init__(self, count: int, seed: int = 0, absent_left_every: int = 0, with_estimate: bool = False):
        joints = moving_hands(count, 32, seed)
        presence = torch.ones(count, 32, 2, dtype=torch.bool)
        if absent_left_every:
            presence[:, ::absent_left_every, 0] = False
        generator = torch.Generator().manual_seed(seed + 1)
        self.items = []
        for i in range(count):
            item = {"joints": joints[i], "presence": presence[i], "frame_valid": torch.ones(32, dtype=torch.bool)}
            if with_estimate:
                item["estimated_joints"] = joints[i] + 0.005 * torch.randn(joints[i].shape, generator=generator)
                item["estimated_presence"] = presence[i].clone()
            self.items.append(item)

    def __len__(self):
        return len(self.items)

    def __getitem__(self, index):
        return self.items[index]


ACTIONS = (("open box", "open", "box"), ("close box", "close", "box"), ("pour cup", "pour", "cup"))


def action_sequences(count: int = 3, seed: int = 0) -> list[HandSequence]:
    """Sequences of three 48-64-frame actions, each action with its own motion seed."""
    rng = np.random.default_rng(seed)
    sequences = []
    for s in range(count):
        parts, segments, start = [], [], 0
        for a, (label, verb, noun) in enumerate(ACTIONS):
            length = int(rng.integers(48, 65))
            parts.append(moving_hands(1, length, seed=100 * a + int(rng.integers(0, 3)))[0].numpy())
            segments.append(ActionSegment(start, start + length, label, verb, noun))
            start += length
        joints = np.concatenate(parts)
        sequences.append(HandSequence(f"seq{s}", joints, np.ones(joints.shape[:2], dtype=bool), actions=segments,
                                      estimated_joints=joints + rng.normal(0, 0.004, joints.shape).astype(np.float32),
                                      estimated_presence=np.ones(joints.shape[:2], dtype=bool)))
    return sequences


def taxonomy_and_embeddings(sequences, seed: int = 0):
    taxonomy = Taxonomy.from_segments(seg for seq in sequences for seg in seq.actions)
    generator = torch.Generator().manual_seed(seed)

    def unit(rows):
        return torch.nn.functional.normalize(torch.randn(rows, TEXT_DIM, generator=generator), dim=-1)

    return taxonomy, LabelEmbeddings("test:random", unit(len(taxonomy.actions)), unit(len(taxonomy.objects)))
