"""Process-group plumbing: the same code runs as one process or under `torchrun` (env:// rendezvous).
An already initialised process group is used as it is.

Backends: gloo on CPU, nccl on CUDA. Rank 0 alone writes logs and checkpoints.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
from torch import distributed as dist

DEVICE_CHOICES = ("auto", "cpu", "cuda")


@dataclass
class DistributedContext:
    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    owns_process_group: bool = False  # started by init_distributed (and so ended by shutdown_distributed)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def is_distributed(self) -> bool:
        return self.world_size > 1


def resolve_device(choice: str, local_rank: int = 0) -> torch.device:
    if choice not in DEVICE_CHOICES:
        raise ValueError(f"device must be one of {DEVICE_CHOICES}, got {choice!r}")
    if choice == "auto":
        choice = "cuda" if torch.cuda.is_available() else "cpu"
    if choice == "cuda":
        if not torch.cuda.is_available():
            raise ValueError("device 'cuda' requested but CUDA is not available")
        return torch.device("cuda", local_rank)
    return torch.device("cpu")


def init_distributed(device_choice: str = "auto") -> DistributedContext:
    """Read RANK / WORLD_SIZE / LOCAL_RANK (set by torchrun); start the process group when WORLD_SIZE > 1."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = resolve_device(device_choice, local_rank)
    owns = world_size > 1 and not dist.is_initialized()
    if owns:
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return DistributedContext(rank=rank, world_size=world_size, local_rank=local_rank, device=device,
                              owns_process_group=owns)


def shutdown_distributed(ctx: DistributedContext):
    """End the process group if init_distributed started it. A caller that runs several trainers in one process
    group (e.g. train-pose then train-action) starts the group itself; re-creating a group on the same rendezvous
    port races with the other ranks' teardown."""
    if ctx.owns_process_group and dist.is_initialized():
        dist.destroy_process_group()


def wrap_for_training(module: torch.nn.Module, ctx: DistributedContext) -> torch.nn.Module:
    """DDP around the module when running distributed; the module itself otherwise."""
    if not ctx.is_distributed:
        return module
    device_ids = [ctx.device.index] if ctx.device.type == "cuda" else None
    return torch.nn.parallel.DistributedDataParallel(module, device_ids=device_ids)


def sum_across_ranks(values: torch.Tensor, ctx: DistributedContext) -> torch.Tensor:
    if ctx.is_distributed:
        values = values.clone()
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values


def gather_objects(value, ctx: DistributedContext) -> list:
    """[value of rank 0, value of rank 1, ...] on every rank."""
    if not ctx.is_distributed:
        return [value]
    gathered = [None] * ctx.world_size
    dist.all_gather_object(gathered, value)
    return gathered


def barrier(ctx: DistributedContext):
    if ctx.is_distributed:
        dist.barrier()
