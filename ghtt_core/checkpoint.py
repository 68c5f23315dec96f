"""One model file: typed config, P-Block (and A-Block) weights, taxonomy, cached label embeddings, training state.

Kinds: "pose" holds the P-Block only (written by `ghtt train-pose`); "full" holds P-Block + A-Block (written by
`ghtt train-action`). The text embeddings of every action label and object name are cached in the file, so inference
never needs the text encoder. Everything stored is plain python values or tensors, so the file is read with
`torch.load(..., weights_only=True)`, and the models are rebuilt from the stored config alone.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ghtt_core.action_block import ActionBlock
from ghtt_core.forecast_calibration import ForecastCalibration
from ghtt_core.config import ModelConfig
from ghtt_core.pose_block import PoseBlock
from ghtt_core.taxonomy import Taxonomy

FORMAT = "ghtt-model"
FORMAT_VERSION = 1
KIND_POSE = "pose"
KIND_FULL = "full"
KINDS = (KIND_POSE, KIND_FULL)


class CheckpointError(ValueError):
    """A checkpoint file that is missing, unreadable, of another format/version, or of the wrong kind."""


@dataclass
class LabelEmbeddings:
    """Text embeddings in taxonomy order: actions (C, D) and objects (O, D), from the encoder `encoder_id`."""

    encoder_id: str
    actions: torch.Tensor
    objects: torch.Tensor

    def __post_init__(self):
        if self.actions.dim() != 2 or self.objects.dim() != 2 or self.actions.shape[1] != self.objects.shape[1]:
            raise ValueError(
                f"label embeddings must be (C, D) and (O, D), got {tuple(self.actions.shape)} and "
                f"{tuple(self.objects.shape)}"
            )

    @property
    def dim(self) -> int:
        return self.actions.shape[1]

    def check_matches(self, taxonomy: Taxonomy):
        if len(self.actions) != len(taxonomy.actions) or len(self.objects) != len(taxonomy.objects):
            raise ValueError(
                f"label embeddings ({len(self.actions)} actions, {len(self.objects)} objects) do not match the "
                f"taxonomy ({len(taxonomy.actions)} actions, {len(taxonomy.objects)} objects)"
            )

    def to(self, device) -> "LabelEmbeddings":
        return LabelEmbeddings(self.encoder_id, self.actions.to(device), self.objects.to(device))


@dataclass
class TrainingState:
    """What `--resume` needs: the stage that wrote it, optimiser state, progress counters and RNG states."""

    stage: str  # "pose" or "action"
    step: int
    epoch: int
    batches_in_epoch: int  # batches of `epoch` already consumed
    optimizer: dict
    rng: dict
    run: dict = field(default_factory=dict)  # the training options of the run (plain values)


@dataclass
class ModelCheckpoint:
    config: ModelConfig
    pose_block: PoseBlock
    action_block: ActionBlock | None
    taxonomy: Taxonomy
    label_embeddings: LabelEmbeddings | None
    model_id: str
    training: TrainingState | None = None
    provenance: dict = field(default_factory=dict)
    calibration: ForecastCalibration | None = None  # fitted by `ghtt calibrate` (ghtt_core.calibration)

    @property
    def kind(self) -> str:
        return KIND_POSE if self.action_block is None else KIND_FULL


def config_hash(config: ModelConfig) -> str:
    """Short, stable hash of the config's plain-dict form."""
    text = json.dumps(config.to_dict(), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def model_id_for(path: str | Path, config: ModelConfig) -> str:
    return f"{Path(path).stem}-{config_hash(config)}"


def save_checkpoint(
    path: str | Path,
    config: ModelConfig,
    pose_block: PoseBlock,
    action_block: ActionBlock | None = None,
    taxonomy: Taxonomy | None = None,
    label_embeddings: LabelEmbeddings | None = None,
    training: TrainingState | None = None,
    provenance: dict | None = None,
    calibration: ForecastCalibration | None = None,
) -> str:
    """Write the checkpoint atomically (temporary file + rename) and return its model id.

    A full checkpoint (with an A-Block) needs the taxonomy and its label embeddings of the A-Block's text_dim.
    """
    path = Path(path)
    taxonomy = taxonomy or Taxonomy()
    if action_block is not None:
        if label_embeddings is None:
            raise ValueError("a checkpoint with an A-Block needs the cached label embeddings")
        if label_embeddings.dim != config.action.text_dim:
            raise ValueError(
                f"label embeddings are {label_embeddings.dim}-d but action.text_dim is {config.action.text_dim}"
            )
    if label_embeddings is not None:
        label_embeddings.check_matches(taxonomy)
    model_id = model_id_for(path, config)
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "kind": KIND_POSE if action_block is None else KIND_FULL,
        "model_id": model_id,
        "config": config.to_dict(),
        "state_dicts": {"pose": _cpu_state(pose_block)},
        "taxonomy": taxonomy.to_dict(),
        "label_embeddings": None,
        "training": None,
        "provenance": dict(provenance or {}),
        "calibration": None if calibration is None else calibration.to_dict(),
    }
    if action_block is not None:
        payload["state_dicts"]["action"] = _cpu_state(action_block)
    if label_embeddings is not None:
        payload["label_embeddings"] = {
            "encoder_id": label_embeddings.encoder_id,
            "actions": label_embeddings.actions.detach().cpu().float(),
            "objects": label_embeddings.objects.detach().cpu().float(),
        }
    if training is not None:
        payload["training"] = {
            "stage": training.stage,
            "step": int(training.step),
            "epoch": int(training.epoch),
            "batches_in_epoch": int(training.batches_in_epoch),
            "optimizer": training.optimizer,
            "rng": training.rng,
            "run": dict(training.run),
        }
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save(payload, partial)
    partial.replace(path)
    return model_id


def _cpu_state(module: torch.nn.Module) -> dict:
    return {name: tensor.detach().cpu() for name, tensor in module.state_dict().items()}


def read_checkpoint_payload(path: str | Path) -> dict:
    """The raw stored mapping after format checks (no models built)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, pickle.UnpicklingError, EOFError, zipfile.BadZipFile) as error:
        raise CheckpointError(f"checkpoint {path} is corrupt or not a torch file: {error}") from error
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a ghtt model checkpoint (format tag {FORMAT!r} missing)")
    version = payload.get("format_version")
    if version != FORMAT_VERSION:
        raise CheckpointError(
            f"checkpoint {path} has format version {version}; this ghtt_core reads version {FORMAT_VERSION}"
        )
    if payload.get("kind") not in KINDS:
        raise CheckpointError(f"checkpoint {path} has unknown kind {payload.get('kind')!r}")
    return payload


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu", require: str | None = None) -> ModelCheckpoint:
    """Rebuild the models (eval mode, on `device`) from the stored config and weights.

    require: None (any kind), "pose" (a P-Block is enough: both kinds pass) or "full" (P-Block + A-Block).
    """
    if require not in (None, *KINDS):
        raise ValueError(f"require must be None or one of {KINDS}, got {require!r}")
    payload = read_checkpoint_payload(path)
    if require == KIND_FULL and payload["kind"] != KIND_FULL:
        raise CheckpointError(
            f"checkpoint {path} holds only the P-Block (written by `ghtt train-pose`); action recognition and "
            "action-guided prediction need a full checkpoint from `ghtt train-action`"
        )
    try:
        config = ModelConfig.from_dict(payload["config"])
        taxonomy = Taxonomy.from_dict(payload["taxonomy"])
        pose_block = _rebuild(PoseBlock(config.pose), payload["state_dicts"]["pose"], device)
        action_block = None
        if payload["kind"] == KIND_FULL:
            action_block = _rebuild(ActionBlock(config.action), payload["state_dicts"]["action"], device)
        label_embeddings = None
        if payload["label_embeddings"] is not None:
            stored = payload["label_embeddings"]
            label_embeddings = LabelEmbeddings(stored["encoder_id"], stored["actions"], stored["objects"])
            label_embeddings.check_matches(taxonomy)
        training = None if payload["training"] is None else TrainingState(**payload["training"])
        stored_calibration = payload.get("calibration")
        calibration = None if stored_calibration is None else ForecastCalibration.from_dict(stored_calibration)
    except (KeyError, TypeError, RuntimeError, ValueError) as error:
        raise CheckpointError(f"checkpoint {path} is inconsistent: {error}") from error
    return ModelCheckpoint(
        config=config,
        pose_block=pose_block,
        action_block=action_block,
        taxonomy=taxonomy,
        label_embeddings=label_embeddings,
        model_id=payload["model_id"],
        training=training,
        provenance=payload["provenance"],
        calibration=calibration,
    )


def _rebuild(module: torch.nn.Module, state: dict, device) -> torch.nn.Module:
    module.load_state_dict(state, strict=True)
    return module.to(device).eval()


def export_for_inference(source: str | Path, destination: str | Path) -> str:
    """Copy a checkpoint without its training state (about half the size); the model id follows the new name."""
    model = load_checkpoint(source)
    provenance = {**model.provenance, "exported_from": str(source),
                  "training_steps": None if model.training is None else model.training.step}
    return save_checkpoint(destination, model.config, model.pose_block, model.action_block, model.taxonomy,
                           model.label_embeddings, training=None, provenance=provenance,
                           calibration=model.calibration)
