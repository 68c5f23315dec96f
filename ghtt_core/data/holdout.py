"""Validation recordings held out of a training split (`--val-fraction`), for datasets without a validation split.

Whole recordings are held out (all their views), never frames or windows of one: windows of one recording are
strongly correlated, so a validation set cut from the same recordings as the training set would be flattering.
The choice is stratified by subject: each subject gives about `fraction` of its own recordings, so validation covers
the same people and the same mix as training; recordings without a subject form one group.
"""

from __future__ import annotations

import numpy as np


def held_out_recordings(entries, fraction: float, seed: int) -> list[str]:
    """Names of the recordings to hold out of `entries` (index.json rows of one split, with "name" and "subject").

    round(fraction x N) recordings of the N (at least 1, at most N - 1). Each subject's recordings are put in a
    seeded random order and recording i of a subject with n recordings gets the rank (i + 0.5) / n; the recordings
    of lowest rank are held out (ties in a random order), so every subject gives about `fraction` of its recordings.
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"--val-fraction must be in (0, 1), got {fraction}")
    names = [entry["name"] for entry in entries]
    if len(names) < 2:
        raise ValueError(f"holding out validation recordings needs at least 2 training recordings, got {len(names)}")
    rng = np.random.default_rng(seed)
    by_subject: dict[str, list[str]] = {}
    for entry in sorted(entries, key=lambda entry: entry["name"]):
        by_subject.setdefault(entry.get("subject") or "", []).append(entry["name"])
    ranked = []
    for subject in sorted(by_subject):
        group = by_subject[subject]
        for position, index in enumerate(rng.permutation(len(group))):
            ranked.append(((position + 0.5) / len(group), rng.random(), group[index]))
    count = min(max(1, round(fraction * len(names))), len(names) - 1)
    return sorted(name for _, _, name in sorted(ranked)[:count])
