"""Masks built explicitly from lengths and hand presence (ACTOR/TEMOS style)."""

import torch


def lengths_to_mask(lengths, max_len=None):
    """(B,) integer lengths -> (B, max_len) bool, True for real frames."""
    lengths = torch.as_tensor(lengths)
    if max_len is None:
        max_len = int(lengths.max()) if lengths.numel() else 0
    return torch.arange(max_len, device=lengths.device).expand(len(lengths), max_len) < lengths.unsqueeze(1)
