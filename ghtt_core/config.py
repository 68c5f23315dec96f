"""Typed model configuration: transformer sizes, the P-Block, the A-Block, the flattened baseline and the text encoder.

Configs are plain dataclasses; `to_dict()` gives nested dicts of python scalars/strings only, so a config can be saved
inside a checkpoint that is loaded with `torch.load(..., weights_only=True)`, and `from_dict()` rebuilds it. Presets:
`paper` (the sizes of method-notes section 2) and `small` (trains on a 2-core CPU in minutes). Loss-weight choices are
explained in docs/model.md.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ACTIVATIONS = ("gelu", "relu")
TEXT_ENCODERS = ("minilm", "open_clip")


@dataclass
class TransformerConfig:
    d_model: int = 512
    n_heads: int = 8
    d_ff: int = 2048
    n_enc_layers: int = 9
    n_dec_layers: int = 9
    activation: str = "gelu"

    def __post_init__(self):
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model ({self.d_model}) must be divisible by n_heads ({self.n_heads})")
        # The 153-d frame embedding splits d_model into halves and quarters (126->d/2, 18->d/4, 9->d/4).
        if self.d_model % 4:
            raise ValueError(f"d_model must be a multiple of 4, got {self.d_model}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {self.activation!r}")
        if min(self.n_enc_layers, self.n_dec_layers) < 1:
            raise ValueError("a VAE block needs at least one encoder and one decoder layer")


@dataclass
class PoseBlockConfig:
    """P-Block: one 16-frame clip <-> a mid-level latent, plus refinement and next-clip prediction."""

    transformer: TransformerConfig = field(default_factory=TransformerConfig)
    clip_len: int = 16
    feature_dim: int = 153
    skip_prob: float = 0.5  # probability (per mini-batch) that the decoder also sees the encoder's frame tokens
    lambda_hand: float = 1.0  # weight of L_obs + L_pred + L_trj
    lambda_kl: float = 1e-4  # weight of KL(mu, logvar) (summed over latent dims, mean over batch)
    sample_factor: float = 5.0  # std multiplier when drawing test-time samples of the mid-level (P.a)
    # Forecast hand shapes continue the last observed one (its local joints plus the decoded change since the first
    # future frame) instead of the shape the P-Dec re-creates: a zero change means the observed hand, whatever the
    # hands it was trained on looked like (docs/forecasting.md, "Anchoring"). False: the authors' decoding.
    anchor_forecast_shape: bool = False

    def __post_init__(self):
        if self.feature_dim != 153:
            raise ValueError(f"the per-frame feature is 153-d (conventions.md), got feature_dim={self.feature_dim}")
        _check_probability("skip_prob", self.skip_prob)


@dataclass
class ActionBlockConfig:
    """A-Block: a sequence of clip mid-levels + object tokens <-> an action latent aligned with text."""

    transformer: TransformerConfig = field(default_factory=TransformerConfig)
    max_clips: int = 16  # capacity in clips (16 x 16 frames = 256 frames)
    text_dim: int = 384  # dimension of the text encoder's embeddings (MiniLM 384, OpenCLIP ViT-B-32 512)
    tau: float = 0.07
    noise_std: float = 1.0  # Gaussian noise on input mid-levels in training (authors' default)
    skip_prob: float = 0.5
    lambda_kl: float = 1e-4
    lambda_action: float = 1.0
    lambda_mid: float = 1.0
    # Beyond the authors' code (docs/model.md, "Rollout loss"): the predicted mid-levels of the first rollout_clips
    # future clips (at most max_clips) are decoded by the frozen P-Dec and their poses and integrated trajectory
    # compared with the truth.
    # 0 trains exactly as the authors did (L_mid only).
    lambda_rollout: float = 0.0
    rollout_clips: int = 5
    # Rollout as P.b runs it (docs/model.md): future clip 0 decoded from the last observed clip's mid-level (frozen
    # P-Dec) and every trajectory integrated from the last observed frame, instead of from the true future clip 0.
    rollout_from_observation: bool = False
    # Weight (inside lambda_rollout) of the mean joint distance of the decoded rollout, placed in the camera from the
    # rollout's base frame, to the true joints (decimetres): the quantity ADE scores. 0 = only L_pred + L_trj.
    rollout_joint_weight: float = 0.0
    label_smoothing: float = 0.0  # on L_con's cross-entropy over the taxonomy
    sample_factor: float = 5.0

    def __post_init__(self):
        _check_probability("skip_prob", self.skip_prob)
        if self.tau <= 0:
            raise ValueError(f"tau must be > 0, got {self.tau}")
        if self.noise_std < 0:
            raise ValueError(f"noise_std must be >= 0, got {self.noise_std}")
        if self.lambda_rollout < 0:
            raise ValueError(f"lambda_rollout must be >= 0, got {self.lambda_rollout}")
        if self.rollout_clips < 1:
            raise ValueError(f"rollout_clips must be >= 1, got {self.rollout_clips}")
        if self.rollout_joint_weight < 0:
            raise ValueError(f"rollout_joint_weight must be >= 0, got {self.rollout_joint_weight}")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {self.label_smoothing}")


@dataclass
class FlattenedConfig:
    """The single-VAE ablation (method-notes 11.2): frame-level tokens, one latent aligned with text."""

    transformer: TransformerConfig = field(default_factory=TransformerConfig)
    max_obs_frames: int = 256
    max_pred_frames: int = 112
    feature_dim: int = 153
    text_dim: int = 384
    tau: float = 0.07
    skip_prob: float = 0.5
    lambda_hand: float = 1.0
    lambda_kl: float = 1e-4
    lambda_action: float = 1.0
    sample_factor: float = 10.0

    def __post_init__(self):
        if self.feature_dim != 153:
            raise ValueError(f"the per-frame feature is 153-d (conventions.md), got feature_dim={self.feature_dim}")
        _check_probability("skip_prob", self.skip_prob)
        if self.tau <= 0:
            raise ValueError(f"tau must be > 0, got {self.tau}")


@dataclass
class TextConfig:
    encoder: str = "minilm"
    open_clip_model: str = "ViT-B-32"
    open_clip_weights: str = ""  # local weights file for open_clip; never downloaded
    cache_dir: str = ""  # disk cache of label embeddings; empty = memory cache only

    def __post_init__(self):
        if self.encoder not in TEXT_ENCODERS:
            raise ValueError(f"text encoder must be one of {TEXT_ENCODERS}, got {self.encoder!r}")


@dataclass
class ModelConfig:
    pose: PoseBlockConfig = field(default_factory=PoseBlockConfig)
    action: ActionBlockConfig = field(default_factory=ActionBlockConfig)
    flattened: FlattenedConfig = field(default_factory=FlattenedConfig)
    text: TextConfig = field(default_factory=TextConfig)

    def __post_init__(self):
        # The A-Block consumes P-Enc mu directly as its mid-level tokens.
        if self.pose.transformer.d_model != self.action.transformer.d_model:
            raise ValueError(
                f"pose.transformer.d_model ({self.pose.transformer.d_model}) must equal "
                f"action.transformer.d_model ({self.action.transformer.d_model})"
            )
        if self.action.text_dim != self.flattened.text_dim:
            raise ValueError("action.text_dim and flattened.text_dim must match (one text encoder)")

    def to_dict(self) -> dict:
        return to_dict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "ModelConfig":
        return from_dict(cls, data)


def to_dict(config) -> dict:
    """Nested dataclass -> nested dict of plain python values."""
    return dataclasses.asdict(config)


def from_dict(cls, data: dict):
    """Nested dict -> dataclass `cls`, recursing into dataclass-typed fields. Unknown keys raise ValueError."""
    if not isinstance(data, dict):
        raise ValueError(f"{cls.__name__}: expected a mapping, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ValueError(f"{cls.__name__}: unknown config keys {unknown}")
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for name, value in data.items():
        field_type = hints[name]
        kwargs[name] = from_dict(field_type, value) if dataclasses.is_dataclass(field_type) else value
    return cls(**kwargs)


def paper_preset() -> ModelConfig:
    """Sizes of the paper: d 512, 8 heads, FF 2048, GELU, 9 + 9 layers per block."""
    return ModelConfig()


def small_preset() -> ModelConfig:
    """A narrow, shallow model that trains on a 2-core CPU in minutes."""

    def transformer():
        return TransformerConfig(d_model=128, n_heads=4, d_ff=256, n_enc_layers=2, n_dec_layers=2)

    return ModelConfig(
        pose=PoseBlockConfig(transformer=transformer()),
        action=ActionBlockConfig(transformer=transformer()),
        flattened=FlattenedConfig(transformer=transformer()),
    )


def with_ghtt_improvements(config: ModelConfig) -> ModelConfig:
    """The A-Block training this project ships (docs/model.md, "What the ghtt presets change"): the rollout loss as
    P.b runs it, with the decoded joints' distance, and weaker input noise on the mid-levels; forecasts keep the
    observed hand shape. Everything else, and every size, stays the authors'."""
    config.action.lambda_rollout = 30.0
    config.action.rollout_from_observation = True
    config.action.rollout_joint_weight = 1.0
    config.action.noise_std = 0.3
    config.pose.anchor_forecast_shape = True
    return config


def ghtt_preset() -> ModelConfig:
    """The paper's sizes with this project's A-Block training (the default sizes of a GPU deployment)."""
    return with_ghtt_improvements(paper_preset())


def ghtt_small_preset() -> ModelConfig:
    """The small sizes with this project's A-Block training: the shipped model's configuration."""
    return with_ghtt_improvements(small_preset())


# paper / small: the authors' settings at two sizes; ghtt / ghtt_small: the same sizes as trained and shipped here.
PRESETS = {"paper": paper_preset, "small": small_preset, "ghtt": ghtt_preset, "ghtt_small": ghtt_small_preset}


def preset(name: str) -> ModelConfig:
    if name not in PRESETS:
        raise ValueError(f"unknown model preset {name!r}; choose one of {sorted(PRESETS)}")
    return PRESETS[name]()


def merge_overrides(base: dict, overrides: dict) -> dict:
    """Recursive dict update: nested mappings merge, everything else replaces."""
    merged = dict(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_overrides(merged[key], value)
        else:
            merged[key] = value
    return merged


def config_from_mapping(data: dict[str, Any]) -> ModelConfig:
    """A mapping with an optional `preset` key (default `paper`) and overrides of any nested field."""
    data = dict(data or {})
    base = preset(data.pop("preset", "paper")).to_dict()
    return ModelConfig.from_dict(merge_overrides(base, data))


def load_config(path: str | Path) -> ModelConfig:
    """Load a ModelConfig from YAML, e.g. `preset: small` plus `action: {noise_std: 0.5}`."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"model config file not found: {path}")
    with path.open() as handle:
        data = yaml.safe_load(handle)
    if data is not None and not isinstance(data, dict):
        raise ValueError(f"{path}: a model config must be a YAML mapping")
    return config_from_mapping(data or {})


def _check_probability(name, value):
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {value}")
