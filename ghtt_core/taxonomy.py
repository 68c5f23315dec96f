"""The action vocabulary: action labels with their verb and noun, and the object names, in class-index order.

One class for datasets (stored in their index) and models (stored in every checkpoint; the cached label embeddings
follow the same order).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple


class ActionLabel(NamedTuple):
    label: str
    verb: str
    noun: str


@dataclass(frozen=True)
class Taxonomy:
    """actions[i] is class i. objects: the object names (every action noun, maybe more); default: the sorted nouns."""

    actions: tuple[ActionLabel, ...] = ()
    objects: tuple[str, ...] = ()

    def __post_init__(self):
        actions = tuple(ActionLabel(*entry) for entry in self.actions)
        for action in actions:
            if not all(isinstance(part, str) and part for part in action):
                raise ValueError(f"taxonomy: each action needs non-empty label, verb and noun strings, got {action!r}")
        object.__setattr__(self, "actions", actions)
        object.__setattr__(self, "objects", tuple(self.objects) or tuple(sorted({a.noun for a in actions})))
        labels = self.labels
        if len(set(labels)) != len(labels):
            raise ValueError("taxonomy: action labels must be unique")
        if len(set(self.objects)) != len(self.objects):
            raise ValueError("taxonomy: object names must be unique")
        missing = sorted({action.noun for action in actions} - set(self.objects))
        if missing:
            raise ValueError(f"taxonomy: action nouns {missing} are not among the object names")

    @classmethod
    def from_segments(cls, segments) -> "Taxonomy":
        """Sorted, de-duplicated labels of ActionSegments. A label seen with two verb/noun pairs is an error."""
        by_label: dict[str, ActionLabel] = {}
        for segment in segments:
            action = ActionLabel(segment.label, segment.verb, segment.noun)
            known = by_label.setdefault(segment.label, action)
            if known != action:
                raise ValueError(f"action {segment.label!r} appears with two verb/noun pairs: {known} and {action}")
        return cls(tuple(by_label[label] for label in sorted(by_label)))

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(action.label for action in self.actions)

    @property
    def verbs(self) -> tuple[str, ...]:
        return tuple(sorted({action.verb for action in self.actions}))

    def action_index(self, label: str) -> int:
        return _index(self.labels, label, "action")

    def verb_index(self, verb: str) -> int:
        return _index(self.verbs, verb, "verb")

    def object_index(self, name: str) -> int:
        return _index(self.objects, name, "object")

    def to_dict(self) -> dict:
        return {
            "actions": [{"label": a.label, "verb": a.verb, "noun": a.noun} for a in self.actions],
            "objects": list(self.objects),
        }

    @classmethod
    def from_dict(cls, data: dict) -> "Taxonomy":
        try:
            actions = tuple(ActionLabel(a["label"], a["verb"], a["noun"]) for a in data["actions"])
            objects = tuple(data.get("objects", ()))
        except (KeyError, TypeError, AttributeError) as error:
            raise ValueError(f"taxonomy: malformed mapping ({error!r})") from error
        return cls(actions, objects)


def _index(names, name, kind):
    try:
        return names.index(name)
    except ValueError:
        raise ValueError(f"{kind} {name!r} is not in the taxonomy ({len(names)} {kind}s, e.g. "
                         f"{', '.join(map(repr, names[:3]))}): the labels and the model (or dataset) come from "
                         "different datasets; use a checkpoint trained on this dataset's actions") from None
