"""The one in-memory record every data source produces: a two-hand pose sequence with action labels."""

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class ActionSegment:
    """One labelled action in a sequence. Frames [start, end) at the sequence's fps."""

    start: int
    end: int
    label: str  # full action name, e.g. "open bottle"
    verb: str
    noun: str

    def __post_init__(self):
        if not 0 <= self.start < self.end:
            raise ValueError(f"action segment needs 0 <= start < end, got [{self.start}, {self.end})")


@dataclass
class HandSequence:
    """A two-hand sequence in one camera view.

    joints:    (T, 2, 21, 3) float32, metres, camera frame of `view`; hand 0 = left, 1 = right; ghtt joint order.
    presence:  (T, 2) bool, hand observed (ground truth valid) in that frame.
    estimated_joints / estimated_presence: the same layout for noisy estimated poses, when the source has them
               (synthetic data, or an estimator's output); None otherwise.
    intrinsics: (3, 3) pinhole K of the view, or None.
    cam_from_world: (T, 4, 4) or (4, 4) homogeneous world->camera transform (column-vector, x_cam = M @ x_world), or None.
    image_paths: per-frame image files when the source has images, or None.
    """

    name: str
    joints: np.ndarray
    presence: np.ndarray
    fps: float = 30.0
    actions: list = field(default_factory=list)
    subject: str = ""
    view: str = ""
    split: str = ""
    estimated_joints: np.ndarray | None = None
    estimated_presence: np.ndarray | None = None
    intrinsics: np.ndarray | None = None
    cam_from_world: np.ndarray | None = None
    image_paths: list | None = None

    def __post_init__(self):
        self.joints = np.asarray(self.joints, dtype=np.float32)
        self.presence = np.asarray(self.presence, dtype=bool)
        n = len(self.joints)
        if self.joints.shape != (n, 2, 21, 3):
            raise ValueError(f"{self.name}: joints must be (T, 2, 21, 3), got {self.joints.shape}")
        if self.presence.shape != (n, 2):
            raise ValueError(f"{self.name}: presence must be (T, 2) = ({n}, 2), got {self.presence.shape}")
        if not np.isfinite(self.joints[self.presence]).all():
            raise ValueError(f"{self.name}: non-finite joints in frames where a hand is marked present")
        for seg in self.actions:
            if seg.end > n:
                raise ValueError(f"{self.name}: action {seg.label!r} ends at {seg.end} > {n} frames")

    @property
    def num_frames(self):
        return len(self.joints)
