"""A-Block training with the P-Block frozen (method-notes sections 4, 7, 10.4, Appendix B).

The frozen P-Enc turns every clip of every trimmed action into a mid-level once (train.midlevels). A sample is a
window of an action starting at one of its clips: n_obs ~ U{1..min(capacity, clips left)} observed clips and
n_pred ~ U{1..min(capacity, clips after them)} future clips (0 when none are left). Object tokens are the text
embedding of the action's noun, replaced by the learned unknown-object token with probability
`object_drop_prob` per sample, so recognition also works from motion alone. Gaussian noise (action.noise_std) is
added to the input mid-levels inside ActionBlock.forward during training.

Rollout loss (action.lambda_rollout > 0, beyond the authors' code): the predicted mid-levels of future clips
0..R-1 (R = action.rollout_clips) go through the frozen P-Dec into future clips 1..R, as in P.b, and their poses and
their trajectory, integrated from the last frame of the (true) future clip 0, are compared with the truth by the
P-Block's own L_pred / L_trj terms. L_mid alone matches mid-levels, not where the decoded hands end up. With
action.rollout_from_observation the rollout is P.b exactly: future clip 0 is decoded from the last observed clip's
input mid-level and the trajectory starts at the last observed frame, so the A-Block learns to continue the P-Dec's
own first clip instead of a true one it never gets at test time. action.rollout_joint_weight adds the mean distance
of the decoded joints to the true ones (placed from the rollout's base frame), the quantity ADE scores.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn

from ghtt_core.action_block import ActionBlock, ActionInputs
from ghtt_core.checkpoint import KIND_FULL, LabelEmbeddings, load_checkpoint, save_checkpoint
from ghtt_core.config import ModelConfig
from ghtt_core import geometry
from ghtt_core.nn import masked_l1, masked_mean
from ghtt_core.pose_block import PoseBlock, trajectory_from_features
from ghtt_core.representation import decode_features, encode_features, local2base, local2base_mask
from ghtt_core.skeleton import USED_JOINTS
from ghtt_core.taxonomy import Taxonomy
from ghtt_core.train.distributed import init_distributed, shutdown_distributed
from ghtt_core.train.loop import LoopOptions, LoopResult, best_checkpoint_path, run_training
from ghtt_core.train.metrics_log import MetricsLog
from ghtt_core.train.midlevels import ActionMidLevels, MidLevelAugmentation, build_midlevel_cache

STAGE = "action"


@dataclass
class ActionTrainingOptions:
    loop: LoopOptions
    object_drop_prob: float = 0.3
    use_estimated_input: bool = True
    augment: MidLevelAugmentation = field(default_factory=MidLevelAugmentation)  # training actions only

    def __post_init__(self):
        if not 0.0 <= self.object_drop_prob <= 1.0:
            raise ValueError(f"object_drop_prob must be in [0, 1], got {self.object_drop_prob}")


class ActionWindowDataset(torch.utils.data.Dataset):
    """Windows over cached actions, one per (action, start clip). Tensors are padded to `capacity` clips.

    random_lengths=True draws n_obs / n_pred per item (training); False uses half the clips left (at least one) as
    observation and the rest (up to capacity) as future (a fixed validation set).
    rollout_clips > 0 (needs a cache with truth joints) adds the rollout targets: "rollout_joints" (1 + R N, 2, 21, 3)
    from the last frame of future clip 0 on, "rollout_presence" (1 + R N, 2) and "rollout_valid" (1 + R N,): frames
    inside the action whose clip is decoded from a predicted mid-level of the window (clip j + 1 from mid j < n_pred).
    rollout_from_observation: the targets start one clip earlier, at the last observed frame (1 + (R + 1) N frames),
    future clip 0 counts too, and "rollout_first_mid" (d,) is the last observed clip's input mid-level it is decoded
    from.
    """

    def __init__(self, cache: list[ActionMidLevels], capacity: int, random_lengths: bool, rollout_clips: int = 0,
                 clip_len: int = 16, rollout_from_observation: bool = False):
        self.cache = cache
        self.capacity = capacity
        self.random_lengths = random_lengths
        self.rollout_clips = rollout_clips
        self.clip_len = clip_len
        self.rollout_from_observation = rollout_from_observation
        if rollout_clips and any(action.truth_joints is None for action in cache):
            raise ValueError("rollout targets need a mid-level cache built with keep_truth_joints=True")
        self.index = [(a, s) for a, action in enumerate(cache) for s in range(len(action.input_mids))]

    def __len__(self):
        return len(self.index)

    def _lengths(self, clips_left: int) -> tuple[int, int]:
        if self.random_lengths:
            n_obs = int(torch.randint(1, min(self.capacity, clips_left) + 1, ()))
            remaining = clips_left - n_obs
            n_pred = int(torch.randint(1, min(self.capacity, remaining) + 1, ())) if remaining else 0
        else:
            n_obs = min(self.capacity, max(1, clips_left // 2))
            n_pred = min(self.capacity, clips_left - n_obs)
        return n_obs, n_pred

    def __getitem__(self, item: int) -> dict:
        action_index, start = self.index[item]
        action = self.cache[action_index]
        n_obs, n_pred = self._lengths(len(action.input_mids) - start)
        slots = torch.arange(self.capacity)
        observed, future = slice(start, start + n_obs), slice(start + n_obs, start + n_obs + n_pred)
        clip_valid = _padded(action.input_valid[observed], self.capacity)
        # The A-Enc needs one valid clip; a window whose observed clips show no hand keeps its first (zero) clip.
        clip_valid[0] |= not clip_valid.any()
        item = {
            "mids": _padded(action.input_mids[observed], self.capacity),
            "clip_valid": clip_valid,
            # Phases keep counting through padded clips (method-notes 4.1).
            "phase": start + slots,
            "future_mids": _padded(action.target_mids[future], self.capacity),
            "future_valid": _padded(action.target_valid[future], self.capacity),
            "future_phase": start + n_obs + slots,
            "label": torch.tensor(action.label),
            "noun": torch.tensor(action.noun),
        }
        if self.rollout_clips:
            item.update(self._rollout_targets(action, start + n_obs, n_pred))
            if self.rollout_from_observation:
                item["rollout_first_mid"] = action.input_mids[start + n_obs - 1]
        return item

    def _rollout_targets(self, action: ActionMidLevels, first_future_clip: int, n_pred: int) -> dict:
        n = self.clip_len
        lead = int(self.rollout_from_observation)  # clips decoded before the one from predicted mid-level 0
        base = (first_future_clip + 1 - lead) * n - 1  # last observed frame, or last frame of future clip 0
        offsets = torch.arange(1 + (self.rollout_clips + lead) * n)
        frames = base + offsets
        # The predicted mid-level whose decoding holds each frame (-1: the last observed clip's mid-level).
        decoded_from = (offsets - 1).div(n, rounding_mode="floor") - lead
        num_frames = len(action.truth_joints)
        valid = (frames < num_frames) & (decoded_from < n_pred)
        valid[0] = base < num_frames
        frames = frames.clamp(max=num_frames - 1)  # padding repeats the last real frame: sound geometry, masked
        return {"rollout_joints": action.truth_joints[frames], "rollout_presence": action.truth_presence[frames],
                "rollout_valid": valid}


def _padded(rows: torch.Tensor, length: int) -> torch.Tensor:
    """(n, ...) -> (length, ...) with zeros (False) after the n rows."""
    out = rows.new_zeros(length, *rows.shape[1:])
    out[: len(rows)] = rows
    return out


def rollout_loss_terms(pose_block: PoseBlock, predicted_mids: torch.Tensor, batch: dict,
                       with_joints: bool = False) -> dict[str, torch.Tensor]:
    """L_pred and L_trj of the P-Block (pose_block.hand_loss_terms) on the P-Dec decoding of predicted_mids[:, :R]
    (after the decoding of "rollout_first_mid" when the batch has it) against the batch's rollout targets
    (ActionWindowDataset); trajectories start at the rollout's base frame. with_joints adds "roll_joints": the mean
    distance (decimetres) of the used joints, decoded and placed from the base frame's true palm frame and size, to
    the true joints."""
    truth = encode_features(batch["rollout_joints"].double(), batch["rollout_presence"].bool(),
                            batch["rollout_valid"].bool())
    num_clips = (truth.features.shape[1] - 1) // pose_block.cfg.clip_len
    mids = predicted_mids
    if "rollout_first_mid" in batch:
        mids = torch.cat([batch["rollout_first_mid"].unsqueeze(1).to(mids.dtype), mids], dim=1)
    decoded = pose_block.decode_mid(mids[:, :num_clips]).flatten(1, 2)  # (B, R N, 153)
    trajectory = local2base(truth.R_cam2local, truth.t_cam2local, 0)[:, 1:].float()
    trajectory_mask = local2base_mask(truth.presence, 0)[:, 1:]
    terms = {
        "roll_pred": masked_l1(decoded, truth.features[:, 1:].float(), truth.feature_mask[:, 1:]),
        "roll_trj": masked_l1(trajectory_from_features(decoded), trajectory, trajectory_mask),
    }
    if with_joints:
        R_base2cam, t_base2cam = geometry.invert_transform(truth.R_cam2local[:, 0], truth.t_cam2local[:, 0])
        joints = decode_features(decoded.double(), R_base2cam, t_base2cam,
                                 truth.palm_size[:, 0])
        used = list(USED_JOINTS)
        distance = (joints[..., used, :] - batch["rollout_joints"][:, 1:, :, used].double()).norm(dim=-1).mean(-1)
        counted = truth.presence[:, 1:] & truth.presence[:, :1]  # (B, T, 2): at the base and at the frame
        terms["roll_joints"] = masked_mean(distance.float() * 10.0, counted)
    return terms


class ActionTrainingStep(nn.Module):
    """forward(batch of ActionWindowDataset items) -> A-Block loss terms (see ActionBlock.loss), plus the rollout
    terms when the config's lambda_rollout > 0 (the frozen pose_block is then required)."""

    def __init__(self, action_block: ActionBlock, label_embeddings: LabelEmbeddings, object_drop_prob: float,
                 pose_block: PoseBlock | None = None):
        super().__init__()
        self.action_block = action_block
        self.register_buffer("action_embeddings", label_embeddings.actions.clone().float())
        self.register_buffer("object_embeddings", label_embeddings.objects.clone().float())
        self.object_drop_prob = object_drop_prob
        self.lambda_rollout = action_block.cfg.lambda_rollout
        self.rollout_joint_weight = action_block.cfg.rollout_joint_weight
        if self.lambda_rollout > 0 and pose_block is None:
            raise ValueError("lambda_rollout > 0 needs the frozen P-Block to decode the predicted mid-levels")
        # Kept outside the module tree: the P-Block is frozen, stays in eval mode and belongs to no optimiser.
        self._frozen_pose_block = (pose_block.eval().requires_grad_(False),) if pose_block is not None else ()

    def forward(self, batch: dict) -> dict[str, torch.Tensor]:
        mids = batch["mids"]
        batch_size, clips = mids.shape[:2]
        objects = self.object_embeddings[batch["noun"]].unsqueeze(1).expand(batch_size, clips, -1)
        if self.training:
            known = torch.rand(batch_size, device=mids.device) >= self.object_drop_prob
        else:
            known = torch.ones(batch_size, dtype=torch.bool, device=mids.device)
        inputs = ActionInputs(
            mids=mids,
            clip_valid=batch["clip_valid"],
            phase=batch["phase"],
            object_embeddings=objects,
            object_known=known.unsqueeze(1).expand(batch_size, clips),
        )
        output = self.action_block(inputs, batch["future_phase"], batch["future_valid"])
        terms = self.action_block.loss(
            output, self.action_embeddings, batch["label"], batch["future_mids"], batch["future_valid"]
        )
        if self.lambda_rollout > 0:
            rollout = rollout_loss_terms(self._frozen_pose_block[0], output.predicted_mids, batch,
                                         with_joints=self.rollout_joint_weight > 0)
            terms.update(rollout)
            rollout_total = rollout["roll_pred"] + rollout["roll_trj"]
            if self.rollout_joint_weight > 0:
                rollout_total = rollout_total + self.rollout_joint_weight * rollout["roll_joints"]
            terms["total"] = terms["total"] + self.lambda_rollout * rollout_total
        return terms


def encode_taxonomy(taxonomy: Taxonomy, text_encoder) -> LabelEmbeddings:
    """Embed every action label and object name once (text_encoder: ghtt_core.text.TextEncoder)."""
    return LabelEmbeddings(
        encoder_id=text_encoder.encoder_id,
        actions=text_encoder.encode(taxonomy.labels),
        objects=text_encoder.encode(list(taxonomy.objects)),
    )


def train_action(
    pose_checkpoint: str | Path,
    train_sequences,
    val_sequences,
    taxonomy: Taxonomy,
    label_embeddings: LabelEmbeddings,
    options: ActionTrainingOptions,
    out_path: str | Path,
    log_path: str | Path | None = None,
    resume_path: str | Path | None = None,
    device: str = "auto",
    action_overrides: dict | None = None,
    provenance: dict | None = None,
    progress: bool = True,
) -> LoopResult:
    """Train the A-Block on top of the frozen P-Block of `pose_checkpoint`; write a "full" checkpoint to out_path,
    and the one of the lowest validation loss so far to loop.best_checkpoint_path(out_path).

    action_overrides: fields of the config's `action` section to change (e.g. {"noise_std": 0.5}); the P-Block
    config is the checkpoint's. resume_path: a full checkpoint written by this function (its A-Block continues).
    """
    ctx = init_distributed(device)
    try:
        resume = None
        if resume_path is not None:
            stored = load_checkpoint(resume_path, require=KIND_FULL)
            if stored.training is None or stored.training.stage != STAGE:
                raise ValueError(f"{resume_path} holds no A-Block training state to resume from")
            config, resume, action_block = stored.config, stored.training, stored.action_block
            pose_block = stored.pose_block
        else:
            stored = load_checkpoint(pose_checkpoint)
            pose_block = stored.pose_block
            config = stored.config
            if action_overrides:
                config = ModelConfig.from_dict({**config.to_dict(),
                                                "action": {**config.to_dict()["action"], **action_overrides}})
            torch.manual_seed(options.loop.seed)  # the same initial weights on every rank
            action_block = ActionBlock(config.action)
        if label_embeddings.dim != config.action.text_dim:
            raise ValueError(
                f"label embeddings are {label_embeddings.dim}-d but action.text_dim is {config.action.text_dim}"
            )
        label_embeddings.check_matches(taxonomy)
        pose_block.to(ctx.device).requires_grad_(False)
        action_block.to(ctx.device)

        capacity = config.action.max_clips
        rollout_clips = min(config.action.rollout_clips, capacity) if config.action.lambda_rollout > 0 else 0
        train_cache, val_cache = (
            build_midlevel_cache(pose_block, sequences or [], taxonomy, options.use_estimated_input,
                                 keep_truth_joints=rollout_clips > 0, augment=augment)
            for sequences, augment in ((train_sequences, options.augment), (val_sequences, None)))
        if not train_cache:
            raise ValueError("no trimmed actions in the training sequences")
        step_module = ActionTrainingStep(action_block, label_embeddings.to(ctx.device), options.object_drop_prob,
                                         pose_block)
        clip_len = config.pose.clip_len

        def saver(path):
            return lambda state: save_checkpoint(path, config, pose_block, action_block, taxonomy, label_embeddings,
                                                 state, provenance={**stored.provenance, **(provenance or {})})

        return run_training(
            step_module,
            ActionWindowDataset(train_cache, capacity, random_lengths=True, rollout_clips=rollout_clips,
                                clip_len=clip_len, rollout_from_observation=config.action.rollout_from_observation),
            ActionWindowDataset(val_cache, capacity, random_lengths=False, rollout_clips=rollout_clips,
                                clip_len=clip_len, rollout_from_observation=config.action.rollout_from_observation)
            if val_cache else None,
            options.loop,
            ctx,
            STAGE,
            saver(out_path),
            MetricsLog(log_path, enabled=ctx.is_main),
            resume=resume,
            run_info={"object_drop_prob": options.object_drop_prob, "augment": asdict(options.augment),
                      "use_estimated_input": options.use_estimated_input, "kind": KIND_FULL,
                      "train_actions": len(train_cache)},
            progress=progress,
            save_best=saver(best_checkpoint_path(out_path)),
            resume_source=str(resume_path or ""),
        )
    finally:
        shutdown_distributed(ctx)
