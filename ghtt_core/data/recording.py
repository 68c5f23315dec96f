"""A multi-view recording: world-frame two-hand poses once, plus per camera view its extrinsics and estimates.

This is the unit the storage format holds. `Recording.view(name)` gives the single-view HandSequence that models and
the dataset API use; `Recording.from_sequences` goes the other way for sources that already come per view.
"""

from dataclasses import dataclass, field

import numpy as np

from ghtt_core.data.sequence import HandSequence


@dataclass
class ViewData:
    """One camera. cam_from_world: (4, 4) or (T, 4, 4), column-vector (x_cam = M @ x_world).

    presence: (T, 2) hands visible in this view (ground truth). estimated_joints: (T, 2, 21, 3) camera frame, or None.
    """

    cam_from_world: np.ndarray
    intrinsics: np.ndarray | None
    presence: np.ndarray
    estimated_joints: np.ndarray | None = None
    estimated_presence: np.ndarray | None = None


@dataclass
class Recording:
    """joints_world: (T, 2, 21, 3) float32 metres; objects: name -> (T, 4, 4) world_from_object (column-vector)."""

    name: str
    joints_world: np.ndarray
    views: dict
    fps: float = 30.0
    actions: list = field(default_factory=list)
    subject: str = ""
    split: str = ""
    objects: dict = field(default_factory=dict)

    @property
    def num_frames(self):
        return len(self.joints_world)

    def view(self, name: str) -> HandSequence:
        if name not in self.views:
            raise ValueError(f"{self.name}: no view {name!r}; available: {sorted(self.views)}")
        view = self.views[name]
        return HandSequence(
            name=f"{self.name}/{name}",
            joints=world_to_camera(self.joints_world, view.cam_from_world),
            presence=view.presence,
            fps=self.fps,
            actions=list(self.actions),
            subject=self.subject,
            view=name,
            split=self.split,
            estimated_joints=view.estimated_joints,
            estimated_presence=view.estimated_presence,
            intrinsics=view.intrinsics,
            cam_from_world=view.cam_from_world,
        )

    @classmethod
    def from_sequences(cls, sequences, name=None):
        """Views of one recording (same frames and labels). Without extrinsics the first view's camera is the world."""
        if not sequences:
            raise ValueError("from_sequences needs at least one HandSequence")
        first = sequences[0]
        for seq in sequences[1:]:
            if seq.num_frames != first.num_frames or seq.actions != first.actions:
                raise ValueError(f"{seq.name}: views of one recording must share frames and action labels")
            if seq.cam_from_world is None:
                raise ValueError(f"{seq.name}: only a single view may lack cam_from_world")
        identity = np.eye(4)
        world_from_cam = np.linalg.inv(first.cam_from_world) if first.cam_from_world is not None else identity
        views = {}
        for seq in sequences:
            view_name = seq.view or "cam0"
            if view_name in views:
                raise ValueError(f"{seq.name}: duplicate view name {view_name!r}")
            views[view_name] = ViewData(
                cam_from_world=seq.cam_from_world if seq.cam_from_world is not None else identity,
                intrinsics=seq.intrinsics,
                presence=seq.presence,
                estimated_joints=seq.estimated_joints,
                estimated_presence=seq.estimated_presence,
            )
        return cls(
            name=name or first.name.split("/")[0],
            joints_world=world_to_camera(first.joints, world_from_cam),
            views=views,
            fps=first.fps,
            actions=list(first.actions),
            subject=first.subject,
            split=first.split,
        )


def world_to_camera(points, cam_from_world):
    """points (T, ..., 3) -> camera frame with a (4, 4) or per-frame (T, 4, 4) column-vector transform."""
    points = np.asarray(points, dtype=np.float64)
    cam_from_world = np.asarray(cam_from_world, dtype=np.float64)
    rotation, translation = cam_from_world[..., :3, :3], cam_from_world[..., :3, 3]
    if cam_from_world.ndim == 2:
        return (points @ rotation.T + translation).astype(np.float32)
    if len(cam_from_world) != len(points):
        raise ValueError(f"per-frame extrinsics: {len(cam_from_world)} frames vs {len(points)} frames of points")
    flat = points.reshape(len(points), -1, 3)
    out = np.einsum("tnj,tij->tni", flat, rotation) + translation[:, None, :]
    return out.reshape(points.shape).astype(np.float32)
