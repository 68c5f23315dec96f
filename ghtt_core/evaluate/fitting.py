"""A minimal optimisation loop for the benchmark's baselines (single process; the G-HTT blocks use ghtt_core.train)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch


@dataclass
class FitOptions:
    steps: int = 2000
    batch_size: int = 32
    learning_rate: float = 3e-4
    seed: int = 0
    grad_clip_norm: float = 1.0

    def __post_init__(self):
        if self.steps < 1 or self.batch_size < 1 or self.learning_rate <= 0:
            raise ValueError("steps and batch_size must be >= 1 and learning_rate > 0")


def fit(model: torch.nn.Module, num_items: int, batch_loss: Callable[[torch.Tensor, torch.Generator], torch.Tensor],
        options: FitOptions, progress_label: str | None = None) -> list[float]:
    """AdamW over shuffled mini-batches of item indices for options.steps steps; batch_loss(indices, generator)
    returns the scalar loss of a batch. Returns the loss of every step; the model is left in eval mode.
    progress_label: show a tqdm bar (stderr) over the steps with this label (None: no bar)."""
    from tqdm import tqdm

    bar = tqdm(total=options.steps, desc=progress_label, unit="step", disable=progress_label is None,
               mininterval=5.0, dynamic_ncols=True)
    generator = torch.Generator().manual_seed(options.seed)
    torch.manual_seed(options.seed)  # the model's own randomness (latent draws, dropout of memories)
    optimizer = torch.optim.AdamW(model.parameters(), lr=options.learning_rate)
    losses = []
    model.train()
    while len(losses) < options.steps:
        for batch in torch.randperm(num_items, generator=generator).split(options.batch_size):
            loss = batch_loss(batch, generator)
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), options.grad_clip_norm)
            optimizer.step()
            losses.append(loss.item())
            bar.update(1)
            if len(losses) == options.steps:
                break
    bar.close()
    model.eval()
    return losses
