"""One model file: typed config, P-Block (and A-Block) weights, taxonomy, cached label embeddings, training state.

Kinds: "pose" holds the P-Block only (written by `ghtt train-pose`); "full" holds P-Block + A-Block (written by
`ghtt train-action`). The text embeddings of every action label and object name are cached in the file, so inference
never needs the text encoder. Everything stored is plain python values or tensors, so the file is read with
`torch.load(..., weights_only=True)`, and the models are rebuilt from the stored config alone.

Integrity: a checksum of the whole stored payload is written with it and verified on load (torch's zip container
does not notice a zeroed or flipped block inside a tensor), and non-finite weights are refused on save and on load.
Identity: the model id names the file, the training data and a digest of the config and weights
(`ghtt_small-synthetic-1a2b3c4d`), so two models trained with the same config on other data or to other weights never
share an id. Every problem is one CheckpointError line naming the file.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import re
import warnings
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
FORMAT_VERSION = 2  # 2: checksum, weights digest in the model id, training data name
LEGACY_FORMAT_VERSIONS = (1,)  # read without an integrity check (written before checksums)
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
    data_name: str = ""
    calibration: ForecastCalibration | None = None  # fitted by `ghtt calibrate` (ghtt_core.forecast_calibration)

    @property
    def kind(self) -> str:
        return KIND_POSE if self.action_block is None else KIND_FULL


def config_hash(config: ModelConfig) -> str:
    """Short, stable hash of the config's plain-dict form."""
    text = json.dumps(config.to_dict(), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def data_name_of(data: str | Path | None) -> str:
    """The training data's name as it appears in model ids: the dataset folder's name, reduced to [A-Za-z0-9_.-]."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(str(data or "")).name).strip("_.")
    return name or "unknown-data"


def _digest(value, hasher):
    """Feed a stored value (nested dicts, lists, tensors, plain scalars) into hasher, in a canonical order."""
    if isinstance(value, torch.Tensor):
        tensor = value.detach().cpu().contiguous().reshape(-1)
        hasher.update(f"tensor:{tensor.dtype}:{tuple(value.shape)}:".encode())
        hasher.update(tensor.view(torch.uint8).numpy().tobytes())
    elif isinstance(value, dict):
        hasher.update(f"dict:{len(value)}:".encode())
        for key in sorted(value, key=repr):
            hasher.update(f"{key!r}=".encode())
            _digest(value[key], hasher)
    elif isinstance(value, (list, tuple)):
        hasher.update(f"{type(value).__name__}:{len(value)}:".encode())
        for item in value:
            _digest(item, hasher)
    else:
        hasher.update(f"{type(value).__name__}:{value!r};".encode())


def payload_checksum(payload: dict) -> str:
    """sha256 of everything stored except the checksum itself (the integrity check)."""
    hasher = hashlib.sha256()
    _digest({key: value for key, value in payload.items() if key != "checksum"}, hasher)
    return hasher.hexdigest()


def weights_digest(payload: dict) -> str:
    """sha256 of what makes the model behave as it does: config, weights, taxonomy, label embeddings and the forecast
    calibration (not the training state, so a run and its exported copy share it)."""
    hasher = hashlib.sha256()
    _digest({key: payload.get(key) for key in ("config", "state_dicts", "taxonomy", "label_embeddings",
                                               "calibration")}, hasher)
    return hasher.hexdigest()


def model_id_for(path: str | Path, data_name: str, digest: str) -> str:
    return f"{Path(path).stem}-{data_name}-{digest[:8]}"


def _non_finite(payload: dict) -> list[str]:
    """Names of the stored weights (and label embeddings) holding NaN or inf."""
    tensors = {f"{block}.{name}": tensor for block, state in payload["state_dicts"].items()
               for name, tensor in state.items()}
    if payload.get("label_embeddings"):
        embeddings = payload["label_embeddings"]
        tensors.update({f"label_embeddings.{name}": embeddings[name] for name in ("actions", "objects")})
    return [name for name, tensor in tensors.items()
            if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all())]


def _describe(names: list[str]) -> str:
    shown = ", ".join(names[:3])
    return f"{shown} (and {len(names) - 3} more)" if len(names) > 3 else shown


def save_checkpoint(
    path: str | Path,
    config: ModelConfig,
    pose_block: PoseBlock,
    action_block: ActionBlock | None = None,
    taxonomy: Taxonomy | None = None,
    label_embeddings: LabelEmbeddings | None = None,
    training: TrainingState | None = None,
    provenance: dict | None = None,
    data_name: str | None = None,
    calibration: ForecastCalibration | None = None,
) -> str:
    """Write the checkpoint atomically (temporary file + rename) and return its model id.

    A full checkpoint (with an A-Block) needs the taxonomy and its label embeddings of the A-Block's text_dim.
    data_name: the training data's name for the model id (default: the folder named by provenance["data"]).
    Non-finite weights are refused (CheckpointError): a diverged model must not be shipped.
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
    provenance = dict(provenance or {})
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "kind": KIND_POSE if action_block is None else KIND_FULL,
        "data_name": data_name_of(data_name or provenance.get("data")),
        "config": config.to_dict(),
        "state_dicts": {"pose": _cpu_state(pose_block)},
        "taxonomy": taxonomy.to_dict(),
        "label_embeddings": None,
        "training": None,
        "provenance": provenance,
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
    non_finite = _non_finite(payload)
    if non_finite:
        raise CheckpointError(f"refusing to write {path}: non-finite weights in {_describe(non_finite)}")
    model_id = model_id_for(path, payload["data_name"], weights_digest(payload))
    payload["model_id"] = model_id
    payload["checksum"] = payload_checksum(payload)
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
    if version not in (FORMAT_VERSION, *LEGACY_FORMAT_VERSIONS):
        raise CheckpointError(
            f"checkpoint {path} has format version {version}; this ghtt_core reads versions "
            f"{sorted((FORMAT_VERSION, *LEGACY_FORMAT_VERSIONS))}"
        )
    missing = [key for key in _REQUIRED_KEYS[version] if key not in payload]
    if missing:
        raise CheckpointError(f"checkpoint {path} is incomplete: missing {', '.join(missing)}")
    if payload["kind"] not in KINDS:
        raise CheckpointError(f"checkpoint {path} has unknown kind {payload['kind']!r}")
    if not isinstance(payload["state_dicts"], dict) or not all(
            isinstance(state, dict) and all(isinstance(t, torch.Tensor) for t in state.values())
            for state in payload["state_dicts"].values()):
        raise CheckpointError(f"checkpoint {path} is inconsistent: state_dicts must map block names to tensors")
    if version in LEGACY_FORMAT_VERSIONS:
        _upgrade_legacy(path, payload)
    elif payload["checksum"] != payload_checksum(payload):
        raise CheckpointError(f"checkpoint {path} is corrupt: its contents do not match the checksum stored when it "
                              "was written (a damaged copy or an edited file); copy or export it again")
    non_finite = _non_finite(payload)
    if non_finite:
        raise CheckpointError(f"checkpoint {path} holds non-finite weights in {_describe(non_finite)}")
    return payload


_REQUIRED_KEYS = {
    1: ("kind", "model_id", "config", "state_dicts", "taxonomy", "label_embeddings", "training", "provenance"),
    2: ("kind", "model_id", "data_name", "config", "state_dicts", "taxonomy", "label_embeddings", "training",
        "provenance", "checksum"),
}


def _upgrade_legacy(path: Path, payload: dict):
    """A version-1 file has no checksum to verify; its id hashed the config only, so it gets a current one."""
    warnings.warn(f"checkpoint {path} was written before checksums (format version 1): its integrity cannot be "
                  "verified; `ghtt export-model` writes a verified copy", stacklevel=3)
    payload["data_name"] = data_name_of(payload["provenance"].get("data"))
    payload["model_id"] = model_id_for(path, payload["data_name"], weights_digest(payload))


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
        pose_block = _rebuild(PoseBlock(config.pose), payload["state_dicts"]["pose"], device, "P-Block")
        action_block = None
        if payload["kind"] == KIND_FULL:
            action_block = _rebuild(ActionBlock(config.action), payload["state_dicts"]["action"], device, "A-Block")
        label_embeddings = None
        if payload["label_embeddings"] is not None:
            stored = payload["label_embeddings"]
            label_embeddings = LabelEmbeddings(stored["encoder_id"], stored["actions"], stored["objects"])
            label_embeddings.check_matches(taxonomy)
        training = None if payload["training"] is None else TrainingState(**payload["training"])
        stored_calibration = payload.get("calibration")
        calibration = None if stored_calibration is None else ForecastCalibration.from_dict(stored_calibration)
    except KeyError as error:
        raise CheckpointError(f"checkpoint {path} is inconsistent: missing entry {error}") from error
    except (TypeError, RuntimeError, ValueError) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise CheckpointError(f"checkpoint {path} is inconsistent: {first_line}") from error
    return ModelCheckpoint(
        config=config,
        pose_block=pose_block,
        action_block=action_block,
        taxonomy=taxonomy,
        label_embeddings=label_embeddings,
        model_id=payload["model_id"],
        training=training,
        provenance=payload["provenance"],
        data_name=payload["data_name"],
        calibration=calibration,
    )


def _rebuild(module: torch.nn.Module, state: dict, device, block: str) -> torch.nn.Module:
    """load_state_dict with the mismatch reported in one line (torch's message lists every key on many lines)."""
    expected = module.state_dict()
    missing = [name for name in expected if name not in state]
    unexpected = [name for name in state if name not in expected]
    reshaped = [name for name in expected if name in state and state[name].shape != expected[name].shape]
    problems = [f"{label} {_describe(names)}" for label, names in (("missing", missing), ("unexpected", unexpected),
                                                                  ("wrong shape", reshaped)) if names]
    if problems:
        raise ValueError(f"{block} weights do not fit its config: " + "; ".join(problems))
    module.load_state_dict(state, strict=True)
    return module.to(device).eval()


def export_for_inference(source: str | Path, destination: str | Path) -> str:
    """Copy a checkpoint without its training state (about half the size); the model id follows the new name and
    keeps the training data's name and the weights digest."""
    model = load_checkpoint(source)
    provenance = {**model.provenance, "exported_from": str(source),
                  "training_steps": None if model.training is None else model.training.step}
    return save_checkpoint(destination, model.config, model.pose_block, model.action_block, model.taxonomy,
                           model.label_embeddings, training=None, provenance=provenance, data_name=model.data_name,
                           calibration=model.calibration)
