"""On-disk dataset format: one compressed .npz per recording plus index.json (taxonomy, splits, provenance).

Exact layout: docs/dataset.md. Loading turns recordings back into per-view HandSequences for the dataset API.
"""

import json
from pathlib import Path

import numpy as np

from ghtt_core.data.recording import Recording, ViewData, world_to_camera
from ghtt_core.data.sequence import ActionSegment
from ghtt_core.taxonomy import Taxonomy

FORMAT_NAME = "ghtt-hands"
FORMAT_VERSION = 1
INDEX_FILE = "index.json"
RECORDINGS_DIR = "recordings"


def save_recording(path, recording: Recording):
    """Write one recording as a compressed .npz (estimates stored as float16 residuals to the ground truth)."""
    arrays = {
        "joints_world": recording.joints_world.astype(np.float32),
        "fps": np.float64(recording.fps),
        "view_names": np.array(list(recording.views), dtype=str),
        "action_frames": np.array([[a.start, a.end] for a in recording.actions], dtype=np.int64).reshape(-1, 2),
        "action_names": np.array([[a.label, a.verb, a.noun] for a in recording.actions], dtype=str).reshape(-1, 3),
        "object_names": np.array(list(recording.objects), dtype=str),
    }
    if recording.objects:
        arrays["object_poses"] = np.stack(list(recording.objects.values())).astype(np.float32)
    for name, view in recording.views.items():
        arrays[f"{name}.cam_from_world"] = np.asarray(view.cam_from_world, dtype=np.float32)
        arrays[f"{name}.presence"] = np.asarray(view.presence, dtype=bool)
        if view.intrinsics is not None:
            arrays[f"{name}.intrinsics"] = np.asarray(view.intrinsics, dtype=np.float32)
        if view.estimated_joints is not None:
            truth = world_to_camera(recording.joints_world, view.cam_from_world)
            arrays[f"{name}.estimated_residual"] = (view.estimated_joints - truth).astype(np.float16)
            arrays[f"{name}.estimated_presence"] = np.asarray(view.estimated_presence, dtype=bool)
    np.savez_compressed(path, **arrays)


def load_recording(path, name=None, subject="", split="") -> Recording:
    with np.load(path, allow_pickle=False) as data:
        joints_world = data["joints_world"]
        views = {}
        for view in data["view_names"]:
            cam_from_world = data[f"{view}.cam_from_world"]
            estimated = estimated_presence = None
            if f"{view}.estimated_residual" in data:
                truth = world_to_camera(joints_world, cam_from_world)
                estimated = truth + data[f"{view}.estimated_residual"].astype(np.float32)
                estimated_presence = data[f"{view}.estimated_presence"]
            views[str(view)] = ViewData(
                cam_from_world=cam_from_world,
                intrinsics=data[f"{view}.intrinsics"] if f"{view}.intrinsics" in data else None,
                presence=data[f"{view}.presence"],
                estimated_joints=estimated,
                estimated_presence=estimated_presence,
            )
        actions = [
            ActionSegment(int(s), int(e), str(l), str(v), str(n))
            for (s, e), (l, v, n) in zip(data["action_frames"], data["action_names"])
        ]
        objects = {}
        if "object_poses" in data:
            objects = {str(n): pose for n, pose in zip(data["object_names"], data["object_poses"])}
        return Recording(
            name=name or Path(path).stem,
            joints_world=joints_world,
            views=views,
            fps=float(data["fps"]),
            actions=actions,
            subject=subject,
            split=split,
            objects=objects,
        )


def write_dataset(root, recordings, taxonomy: Taxonomy | None = None, provenance=None, view_splits=None):
    """Write recordings (any iterable) under `root`; returns the index dict also saved as root/index.json.

    taxonomy: defaults to the labels found in the recordings. provenance: free JSON (generator config and seed, or the
    source dataset). view_splits: e.g. {"train": ["front", "left"], "test": ["right", "top"]} for cross-view protocols.
    """
    root = Path(root)
    (root / RECORDINGS_DIR).mkdir(parents=True, exist_ok=True)
    entries, segments = [], []
    for recording in recordings:
        file = f"{RECORDINGS_DIR}/{recording.name}.npz"
        save_recording(root / file, recording)
        segments.extend(recording.actions)
        entries.append(
            {
                "name": recording.name,
                "file": file,
                "subject": recording.subject,
                "split": recording.split,
                "num_frames": recording.num_frames,
                "views": list(recording.views),
                "actions": [[a.start, a.end, a.label] for a in recording.actions],
            }
        )
    taxonomy = taxonomy or Taxonomy.from_segments(segments)
    subject_splits = {}
    for entry in entries:
        subject_splits.setdefault(entry["split"], set()).add(entry["subject"])
    index = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "taxonomy": taxonomy.to_dict(),
        "splits": {
            "subject": {split: sorted(subjects) for split, subjects in sorted(subject_splits.items())},
            "view": view_splits or {},
        },
        "provenance": provenance or {},
        "recordings": entries,
    }
    (root / INDEX_FILE).write_text(json.dumps(index, indent=1))
    # recordings left over from an older dataset in the same folder would otherwise look like part of this one
    written = {entry["file"] for entry in entries}
    for stale in (root / RECORDINGS_DIR).glob("*.npz"):
        if f"{RECORDINGS_DIR}/{stale.name}" not in written:
            stale.unlink()
    return index


class StoredDataset:
    """A dataset written by write_dataset: the index in memory, recordings loaded on request."""

    def __init__(self, root):
        self.root = Path(root)
        index_path = self.root / INDEX_FILE
        if not index_path.is_file():
            raise ValueError(f"{self.root}: no {INDEX_FILE}; not a dataset written by ghtt (see docs/dataset.md)")
        self.index = json.loads(index_path.read_text())
        if self.index.get("format") != FORMAT_NAME or self.index.get("version") != FORMAT_VERSION:
            raise ValueError(
                f"{index_path}: format {self.index.get('format')!r} v{self.index.get('version')} is not "
                f"{FORMAT_NAME!r} v{FORMAT_VERSION}"
            )
        self.taxonomy = Taxonomy.from_dict(self.index["taxonomy"])

    @property
    def entries(self):
        return self.index["recordings"]

    def view_split(self, name):
        """View names of a cross-view split ('train', 'test', ...)."""
        views = self.index["splits"]["view"]
        if name not in views:
            raise ValueError(f"no view split {name!r}; available: {sorted(views)}")
        return list(views[name])

    def recordings(self, split=None, names=None):
        """Recordings of `split` (all splits if None); names: only the recordings of these names."""
        for entry in self.entries:
            if (split is None or entry["split"] == split) and (names is None or entry["name"] in names):
                yield load_recording(self.root / entry["file"], entry["name"], entry["subject"], entry["split"])

    def sequences(self, split=None, views=None, names=None):
        """Per-view HandSequences of the recordings in `split` (all splits if None), for `views` (all if None);
        names: only the recordings of these names."""
        out = []
        for recording in self.recordings(split, names):
            for view in views if views is not None else recording.views:
                if view in recording.views:
                    out.append(recording.view(view))
        return out
