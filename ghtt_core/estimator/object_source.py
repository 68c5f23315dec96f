"""Where the A-Block's object input comes from, chosen by configuration.

Every source answers, once per clip, with an object name or None. None means "unknown object": the action model has a
learned token for it, so a robot without object recognition still runs.
- "none":       always None.
- "label":      a name set from outside (a ROS topic or parameter, or a fixed config value).
- "aggregator": the clip's per-frame object features (ResNet estimator) aggregated and snapped to the nearest name.
"""

from dataclasses import dataclass
from typing import Protocol

import torch

from ghtt_core.estimator.object_embedding import label_embedding_tensor

OBJECT_SOURCE_KINDS = ("none", "label", "aggregator")


class ObjectSource(Protocol):
    def object_for_clip(self, frame_object_features=None, frame_valid=None) -> str | None:
        """frame_object_features: (T, D) per-frame object features of the clip, or None when there are none.
        frame_valid: (T,) bool."""


class NoObjectSource:
    def object_for_clip(self, frame_object_features=None, frame_valid=None):
        return None


class LabelObjectSource:
    """The most recent label given from outside; None until one arrives or after clear()."""

    def __init__(self, label=None, known_labels=None):
        self.known_labels = None if known_labels is None else frozenset(known_labels)
        self._label = None
        self.set_label(label)

    def set_label(self, label):
        """Set the current object (None or '' = unknown). With known_labels, an unknown name is an error rather
        than a silent mismatch with the text embeddings."""
        label = label or None
        if label is not None and self.known_labels is not None and label not in self.known_labels:
            raise ValueError(f"object label {label!r} is not in the taxonomy ({len(self.known_labels)} names)")
        self._label = label

    def clear(self):
        self._label = None

    def object_for_clip(self, frame_object_features=None, frame_valid=None):
        return self._label


class AggregatedObjectSource:
    """Aggregator feature snapped to the nearest object name; None when the clip has no valid frame features."""

    def __init__(self, aggregator, label_names, label_embeddings):
        embeddings = label_embedding_tensor(label_embeddings)
        if len(label_names) != len(embeddings):
            raise ValueError(f"{len(label_names)} label names but {len(embeddings)} label embeddings")
        self.aggregator = aggregator.eval()
        self.label_names = list(label_names)
        self.label_embeddings = embeddings

    def object_for_clip(self, frame_object_features=None, frame_valid=None):
        if frame_object_features is None:
            return None
        features = torch.as_tensor(frame_object_features, dtype=torch.float32)
        if features.ndim != 2:
            raise ValueError(f"frame_object_features must be (T, D), got shape {tuple(features.shape)}")
        valid = (torch.ones(len(features), dtype=torch.bool) if frame_valid is None
                 else torch.as_tensor(frame_valid, dtype=torch.bool))
        if not valid.any():
            return None
        max_frames = self.aggregator.config.max_frames
        # The aggregator sees one clip; use its most recent frames.
        features, valid = features[-max_frames:], valid[-max_frames:]
        return self.aggregator.nearest_object(features[None], self.label_names, self.label_embeddings, valid[None])[0]


@dataclass(frozen=True)
class ObjectSourceConfig:
    kind: str = "none"
    label: str | None = None  # initial / fixed label for kind "label"
    aggregator_checkpoint: str | None = None  # for kind "aggregator"

    def __post_init__(self):
        if self.kind not in OBJECT_SOURCE_KINDS:
            raise ValueError(f"object source kind must be one of {OBJECT_SOURCE_KINDS}, got {self.kind!r}")
        if self.kind == "aggregator" and not self.aggregator_checkpoint:
            raise ValueError("object source 'aggregator' needs aggregator_checkpoint")


def build_object_source(config, label_names=None, label_embeddings=None):
    """The configured source. label_names / label_embeddings: the object taxonomy and its text embeddings (needed for
    'aggregator'; for 'label' the names, when given, are used to reject unknown labels)."""
    if config.kind == "none":
        return NoObjectSource()
    if config.kind == "label":
        return LabelObjectSource(config.label, known_labels=label_names)
    from ghtt_core.estimator.object_aggregator import load_object_aggregator

    if label_names is None or label_embeddings is None:
        raise ValueError("object source 'aggregator' needs the object label names and their embeddings")
    return AggregatedObjectSource(load_object_aggregator(config.aggregator_checkpoint), label_names, label_embeddings)
