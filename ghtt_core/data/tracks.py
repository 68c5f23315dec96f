"""Tracked hand poses (the .npz files `ghtt estimate` writes, docs/estimator.md) as a HandSequence.

A tracker's output has no ground truth and no labels: the tracked poses are taken as the sequence's joints (what a
forecast of the tracked future is scored against) and one action segment spans the frames from the first to the last
one with a hand, so that the prediction protocol's windows cover the recording. Frame rate and intrinsics are kept.
"""

from pathlib import Path

import numpy as np

from ghtt_core.data.sequence import ActionSegment, HandSequence


def sequence_from_tracks(path, label: str = "unlabelled", split: str = "test") -> HandSequence:
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"pose file not found: {path}")
    try:
        stored = np.load(path)
        joints, presence = stored["joints"], stored["presence"].astype(bool)
        fps = float(stored["fps"]) if "fps" in stored.files else 30.0
        intrinsics = stored["intrinsics"] if "intrinsics" in stored.files else None
    except (OSError, ValueError, KeyError) as error:
        raise ValueError(f"{path}: not a pose file written by `ghtt estimate` ({error})") from error
    if joints.ndim != 4 or joints.shape[1:] != (2, 21, 3) or presence.shape != joints.shape[:2]:
        raise ValueError(f"{path}: expected joints (T, 2, 21, 3) and presence (T, 2), got {joints.shape} and "
                         f"{presence.shape}")
    seen = np.flatnonzero(presence.any(axis=1))
    if not len(seen):
        raise ValueError(f"{path}: no frame with a hand")
    joints = np.where(presence[..., None, None], np.nan_to_num(joints), 0.0).astype(np.float32)
    segment = ActionSegment(int(seen[0]), int(seen[-1]) + 1, label, label, "unknown")
    return HandSequence(name=path.stem, joints=joints, presence=presence, fps=fps, actions=[segment],
                        subject=path.stem, view="camera", split=split, intrinsics=intrinsics)
