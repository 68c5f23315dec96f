"""A model's vocabulary: action labels with their verb/noun, and object names (the nouns), in class-index order.

Stored inside every checkpoint; the cached label embeddings follow the same order. Datasets carry their own
`ghtt_core.data.taxonomy.Taxonomy`; `from_dataset_taxonomy` converts it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ActionLabel:
    label: str
    verb: str
    noun: str


@dataclass(frozen=True)
class Taxonomy:
    actions: tuple[ActionLabel, ...] = ()
    objects: tuple[str, ...] = ()

    def __post_init__(self):
        labels = [action.label for action in self.actions]
        if len(set(labels)) != len(labels):
            raise ValueError("taxonomy: action labels must be unique")
        if len(set(self.objects)) != len(self.objects):
            raise ValueError("taxonomy: object names must be unique")
        missing = sorted({action.noun for action in self.actions} - set(self.objects))
        if missing:
            raise ValueError(f"taxonomy: action nouns {missing} are not among the object names")

    @classmethod
    def from_segments(cls, segments) -> "Taxonomy":
        """Sorted, de-duplicated labels and nouns of ActionSegments. A label seen with two verb/noun pairs is an error."""
        by_label: dict[str, ActionLabel] = {}
        for segment in segments:
            action = ActionLabel(segment.label, segment.verb, segment.noun)
            known = by_label.setdefault(segment.label, action)
            if known != action:
                raise ValueError(f"action {segment.label!r} appears with two verb/noun pairs: {known} and {action}")
        actions = tuple(by_label[label] for label in sorted(by_label))
        return cls(actions, tuple(sorted({action.noun for action in actions})))

    @classmethod
    def from_dataset_taxonomy(cls, dataset_taxonomy) -> "Taxonomy":
        """From ghtt_core.data.taxonomy.Taxonomy (actions = (label, verb, noun) tuples; objects = its nouns)."""
        actions = tuple(ActionLabel(*entry) for entry in dataset_taxonomy.actions)
        return cls(actions, tuple(dataset_taxonomy.nouns))

    @property
    def action_labels(self) -> list[str]:
        return [action.label for action in self.actions]

    def action_index(self, label: str) -> int:
        for index, action in enumerate(self.actions):
            if action.label == label:
                return index
        raise ValueError(f"action {label!r} is not in the taxonomy ({len(self.actions)} actions)")

    def object_index(self, name: str) -> int:
        if name not in self.objects:
            raise ValueError(f"object {name!r} is not in the taxonomy ({len(self.objects)} objects)")
        return self.objects.index(name)

    def to_dict(self) -> dict:
        return {
            "actions": [{"label": a.label, "verb": a.verb, "noun": a.noun} for a in self.actions],
            "objects": list(self.objects),
        }

    @classmethod
    def from_dict(cls, data: dict) -> "Taxonomy":
        try:
            actions = tuple(ActionLabel(a["label"], a["verb"], a["noun"]) for a in data["actions"])
            objects = tuple(data["objects"])
        except (KeyError, TypeError) as error:
            raise ValueError(f"taxonomy: malformed mapping ({error!r})") from error
        return cls(actions, objects)
