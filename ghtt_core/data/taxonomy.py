"""Action taxonomy: action labels with their verb and noun, and stable integer indices for each."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Taxonomy:
    """actions[i] = (label, verb, noun); verbs and nouns are sorted unique lists."""

    actions: tuple

    def __post_init__(self):
        labels = [a[0] for a in self.actions]
        if len(set(labels)) != len(labels):
            raise ValueError("taxonomy: duplicate action labels")
        for entry in self.actions:
            if len(entry) != 3 or not all(isinstance(x, str) and x for x in entry):
                raise ValueError(f"taxonomy: each action must be (label, verb, noun) strings, got {entry!r}")

    @classmethod
    def from_segments(cls, segments):
        """Taxonomy of every distinct (label, verb, noun) among ActionSegments, sorted by label."""
        entries = {(s.label, s.verb, s.noun) for s in segments}
        return cls(tuple(sorted(entries)))

    @property
    def labels(self):
        return tuple(a[0] for a in self.actions)

    @property
    def verbs(self):
        return tuple(sorted({a[1] for a in self.actions}))

    @property
    def nouns(self):
        return tuple(sorted({a[2] for a in self.actions}))

    def action_index(self, label: str) -> int:
        try:
            return self.labels.index(label)
        except ValueError:
            raise ValueError(f"action {label!r} is not in the taxonomy") from None

    def verb_index(self, verb: str) -> int:
        if verb not in self.verbs:
            raise ValueError(f"verb {verb!r} is not in the taxonomy")
        return self.verbs.index(verb)

    def noun_index(self, noun: str) -> int:
        if noun not in self.nouns:
            raise ValueError(f"noun {noun!r} is not in the taxonomy")
        return self.nouns.index(noun)

    def to_dict(self):
        return {"actions": [{"label": l, "verb": v, "noun": n} for l, v, n in self.actions]}

    @classmethod
    def from_dict(cls, data):
        return cls(tuple((a["label"], a["verb"], a["noun"]) for a in data["actions"]))
