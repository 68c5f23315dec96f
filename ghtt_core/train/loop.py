"""The optimisation loop shared by the P-Block and A-Block trainers.

A trainer hands over a `step module` (an nn.Module whose forward(batch) returns a dict of loss terms with "total"),
the datasets and the options; the loop owns AdamW, the (resumable, distributed) sampler, validation, the JSONL
metrics log, tqdm progress and periodic checkpoints. Under DDP every rank runs this loop on its shard of each batch.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import torch
from torch.utils.data import DataLoader, DistributedSampler

from ghtt_core.checkpoint import TrainingState
from ghtt_core.train.distributed import (
    DistributedContext,
    barrier,
    gather_objects,
    sum_across_ranks,
    wrap_for_training,
)
from ghtt_core.train.metrics_log import MetricsLog
from ghtt_core.train.rng import capture_rng_state, restore_rng_state, seed_everything


@dataclass
class LoopOptions:
    """Optimisation schedule. Exactly one of steps / epochs sets the length; batch_size is global (all ranks)."""

    lr: float = 1e-4
    weight_decay: float = 0.01
    batch_size: int = 64
    steps: int | None = None
    epochs: int | None = None
    seed: int = 0
    checkpoint_every: int = 500
    val_every: int = 500
    log_every: int = 10
    workers: int = 0
    grad_clip_norm: float = 1.0  # 0 disables clipping

    def __post_init__(self):
        if (self.steps is None) == (self.epochs is None):
            raise ValueError("give exactly one of steps or epochs")
        if (self.steps is not None and self.steps < 1) or (self.epochs is not None and self.epochs < 1):
            raise ValueError("steps / epochs must be >= 1")
        if self.lr <= 0 or self.weight_decay < 0 or self.batch_size < 1:
            raise ValueError("lr must be > 0, weight_decay >= 0 and batch_size >= 1")
        if min(self.checkpoint_every, self.val_every, self.log_every) < 1 or self.workers < 0:
            raise ValueError("checkpoint_every, val_every and log_every must be >= 1; workers >= 0")

    def per_rank_batch(self, world_size: int) -> int:
        if self.batch_size % world_size:
            raise ValueError(f"batch_size {self.batch_size} must be divisible by the {world_size} processes")
        return self.batch_size // world_size


class ResumableSampler(DistributedSampler):
    """DistributedSampler (also for one process) that can skip the batches of an epoch already trained on."""

    def __init__(self, dataset, ctx: DistributedContext, shuffle: bool, seed: int, drop_last: bool):
        super().__init__(dataset, num_replicas=ctx.world_size, rank=ctx.rank, shuffle=shuffle, seed=seed,
                         drop_last=drop_last)
        self.skip = 0

    def start_epoch(self, epoch: int, skip_samples: int = 0):
        self.set_epoch(epoch)
        self.skip = skip_samples

    def __iter__(self):
        return iter(list(super().__iter__())[self.skip:])

    def __len__(self):
        return super().__len__() - self.skip


def move_to_device(batch, device):
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {key: move_to_device(value, device) for key, value in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(move_to_device(value, device) for value in batch)
    return batch


@dataclass
class LoopResult:
    module: torch.nn.Module  # the trained step module (unwrapped), as on this rank
    step: int
    epoch: int
    last_train: dict
    last_val: dict
    best_val: dict | None = None  # {"step", "total"} of the best validation so far (also of resumed runs), or None


# Kept in TrainingState.run under this key: what a resumed run needs to continue its log and its best checkpoint.
PROGRESS_KEY = "progress"


def best_checkpoint_path(path: str | Path) -> Path:
    """Where the best-validation checkpoint of a run that writes `path` goes: <stem>_best<suffix> beside it."""
    path = Path(path)
    return path.with_name(f"{path.stem}_best{path.suffix}")


def run_training(
    step_module: torch.nn.Module,
    train_dataset,
    val_dataset,
    options: LoopOptions,
    ctx: DistributedContext,
    stage: str,
    save: Callable[[TrainingState], None],
    log: MetricsLog,
    resume: TrainingState | None = None,
    run_info: dict | None = None,
    collate_fn=None,
    progress: bool = True,
    save_best: Callable[[TrainingState], None] | None = None,
    resume_source: str = "",
) -> LoopResult:
    """Train `step_module` (already on ctx.device) and return where it stopped.

    save(TrainingState) is called on rank 0 every `checkpoint_every` steps and at the end; save_best(TrainingState)
    after each validation pass whose total loss is the lowest of the run so far. With `resume`, the optimiser,
    counters, RNG states, the log's clock and the best validation so far continue from that state (the weights must
    already be loaded); the log gets a "resume" row (resume_source: where the state came from).
    """
    per_rank_batch = options.per_rank_batch(ctx.world_size)
    if len(train_dataset) < options.batch_size:
        raise ValueError(f"the training set has {len(train_dataset)} samples, fewer than one batch ({options.batch_size})")
    sampler = ResumableSampler(train_dataset, ctx, shuffle=True, seed=options.seed, drop_last=True)
    batches_per_epoch = len(sampler) // per_rank_batch
    total_steps = options.steps if options.steps is not None else options.epochs * batches_per_epoch

    parameters = [p for p in step_module.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(parameters, lr=options.lr, weight_decay=options.weight_decay)
    model = wrap_for_training(step_module, ctx)

    step, epoch, batches_done = 0, 0, 0
    best_val = None
    if resume is not None:
        if resume.stage != stage:
            raise ValueError(f"cannot resume a {stage!r} run from a checkpoint of stage {resume.stage!r}")
        optimizer.load_state_dict(resume.optimizer)
        step, epoch, batches_done = resume.step, resume.epoch, resume.batches_in_epoch
        _restore_rank_rng(resume.rng, ctx, options.seed, step)
        resumed = resume.run.get(PROGRESS_KEY, {})
        best_val = resumed.get("best_val")
        log.resume(resumed.get("time_s", 0.0))
        log.write({"split": "resume", "stage": stage, "step": step, "epoch": epoch, "from": resume_source})
    else:
        seed_everything(options.seed + ctx.rank)

    def training_state() -> TrainingState:
        rng_states = gather_objects(capture_rng_state(), ctx)
        progress_so_far = {"time_s": round(log.elapsed(), 3), "best_val": best_val}
        return TrainingState(
            stage=stage, step=step, epoch=epoch, batches_in_epoch=batches_done, optimizer=optimizer.state_dict(),
            rng={"per_rank": rng_states}, run={**asdict(options), **(run_info or {}), PROGRESS_KEY: progress_so_far},
        )

    def checkpoint(writer):
        state = training_state()  # a collective: every rank takes part
        if ctx.is_main:
            writer(state)
        barrier(ctx)  # nobody moves on (e.g. to read the file) before rank 0 has written it

    val_loader = None
    if val_dataset is not None and len(val_dataset):
        val_sampler = ResumableSampler(val_dataset, ctx, shuffle=False, seed=options.seed, drop_last=False)
        val_loader = DataLoader(val_dataset, batch_size=per_rank_batch, sampler=val_sampler,
                                num_workers=options.workers, collate_fn=collate_fn,
                                generator=torch.Generator().manual_seed(options.seed))

    bar = _progress_bar(total_steps, step, stage, enabled=progress and ctx.is_main)
    last_train, last_val = {}, {}
    running: dict[str, float] = {}
    running_count = 0
    while step < total_steps:
        sampler.start_epoch(epoch, skip_samples=batches_done * per_rank_batch)
        # Its own generator: creating the loader's iterator must not consume the global RNG, or a resumed run
        # would diverge from an uninterrupted one.
        loader_generator = torch.Generator().manual_seed(options.seed * 1000003 + epoch * 1009 + ctx.rank)
        loader = DataLoader(train_dataset, batch_size=per_rank_batch, sampler=sampler, drop_last=True,
                            num_workers=options.workers, collate_fn=collate_fn, generator=loader_generator)
        for batch in loader:
            model.train()
            terms = model(move_to_device(batch, ctx.device))
            optimizer.zero_grad(set_to_none=True)
            terms["total"].backward()
            if options.grad_clip_norm > 0:
                torch.nn.utils.clip_grad_norm_(parameters, options.grad_clip_norm)
            optimizer.step()
            step += 1
            batches_done += 1
            for name, value in terms.items():
                running[name] = running.get(name, 0.0) + float(value.detach())
            running_count += 1
            bar.update(1)
            if step % options.log_every == 0 or step == total_steps:
                last_train = {name: total / running_count for name, total in running.items()}
                log.write({"split": "train", "stage": stage, "step": step, "epoch": epoch, **last_train})
                bar.set_postfix(loss=f"{last_train['total']:.4f}")
                running, running_count = {}, 0
            if val_loader is not None and (step % options.val_every == 0 or step == total_steps):
                last_val = evaluate_losses(model, val_loader, ctx)  # reduced over ranks: the same on every rank
                log.write({"split": "val", "stage": stage, "step": step, "epoch": epoch, **last_val})
                if best_val is None or last_val["total"] < best_val["total"]:
                    best_val = {"step": step, "total": last_val["total"]}
                    if save_best is not None:
                        checkpoint(save_best)
            if step % options.checkpoint_every == 0 or step == total_steps:
                checkpoint(save)
            if step >= total_steps:
                break
        else:
            epoch += 1
            batches_done = 0
    bar.close()
    return LoopResult(module=step_module, step=step, epoch=epoch, last_train=last_train, last_val=last_val,
                      best_val=best_val)


@torch.no_grad()
def evaluate_losses(model: torch.nn.Module, loader: DataLoader, ctx: DistributedContext) -> dict:
    """Sample-weighted mean of every loss term over the whole validation set (all ranks' shards)."""
    model.eval()
    names, sums, count = None, None, 0
    for batch in loader:
        batch = move_to_device(batch, ctx.device)
        terms = model(batch)
        size = _batch_size(batch)
        if names is None:
            names = sorted(terms)
            sums = torch.zeros(len(names), dtype=torch.float64, device=ctx.device)
        sums += torch.stack([terms[name].detach().double() for name in names]) * size
        count += size
    totals = sum_across_ranks(torch.cat([sums, torch.tensor([count], dtype=torch.float64, device=ctx.device)]), ctx)
    return {name: float(value) for name, value in zip(names, totals[:-1] / totals[-1])}


def _batch_size(batch) -> int:
    if isinstance(batch, dict):
        return _batch_size(next(iter(batch.values())))
    if isinstance(batch, (list, tuple)):
        return _batch_size(batch[0])
    return len(batch)


def _restore_rank_rng(rng: dict, ctx: DistributedContext, seed: int, step: int):
    """Each rank continues its own RNG stream; with a different process count, reseed deterministically."""
    states = rng.get("per_rank", [])
    if len(states) == ctx.world_size:
        restore_rng_state(states[ctx.rank])
    else:
        seed_everything(seed + 1000003 * step + ctx.rank)


def _progress_bar(total: int, initial: int, stage: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, desc=f"train-{stage}", disable=not enabled, mininterval=5.0,
                dynamic_ncols=True)
