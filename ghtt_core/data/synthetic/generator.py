"""The synthetic two-hand action benchmark: untrimmed multi-view recordings of chained actions, deterministic per seed.

Each recording: one subject performs 4-8 actions with short idle gaps; both hands are built by forward kinematics,
objects follow the hand that holds them, and every camera view gets ground truth plus estimator-like noisy poses.
"""

from dataclasses import asdict, dataclass

import numpy as np

from ghtt_core.data.recording import Recording, ViewData, world_to_camera
from ghtt_core.data.sequence import ActionSegment
from ghtt_core.data.synthetic.actions import ACTION_CLASSES, perform
from ghtt_core.data.synthetic.kinematics import world_joints
from ghtt_core.data.synthetic.noise import EstimatorNoiseConfig, estimate_poses
from ghtt_core.data.synthetic.objects import TABLE_X, TABLE_Y, object_spec
from ghtt_core.data.synthetic.performer import FPS, STYLE_DOMAINS, Performer, Subject
from ghtt_core.data.synthetic.scene import (
    NAMED_VIEWS,
    ego_extrinsics,
    hands_in_view,
    intrinsics,
    named_view_extrinsics,
    random_view_extrinsics,
)
from ghtt_core.skeleton import LEFT, RIGHT

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class GeneratorConfig:
    seed: int = 0
    num_recordings: int = 175  # about 1,050 action instances
    actions_per_recording: tuple = (4, 8)  # inclusive range
    subjects_per_split: tuple = (10, 3, 3)  # train, val, test
    named_views: tuple = tuple(NAMED_VIEWS)
    random_views: int = 1  # extra static views with random extrinsics, named "random0", ...
    noise_level: str = "medium"
    one_hand_absent_fraction: float = 0.0  # fraction of frames with one hand out of view (ground truth)
    idle_seconds: tuple = (0.2, 1.2)
    # Subject style ranges (performer.STYLE_DOMAINS): "shifted" makes motion the default-trained model never saw.
    style_domain: str = "default"

    def __post_init__(self):
        if self.style_domain not in STYLE_DOMAINS:
            raise ValueError(f"unknown style domain {self.style_domain!r}; known: {sorted(STYLE_DOMAINS)}")
        lo, hi = self.actions_per_recording
        if not 1 <= lo <= hi:
            raise ValueError(f"actions_per_recording must be 1 <= lo <= hi, got {self.actions_per_recording}")
        if not 0.0 <= self.one_hand_absent_fraction < 1.0:
            raise ValueError(f"one_hand_absent_fraction must be in [0, 1), got {self.one_hand_absent_fraction}")
        if min(self.subjects_per_split) < 1:
            raise ValueError(f"every split needs a subject, got {self.subjects_per_split}")
        for view in self.named_views:
            if view not in NAMED_VIEWS:
                raise ValueError(f"unknown named view {view!r}; known: {sorted(NAMED_VIEWS)}")
        EstimatorNoiseConfig.preset(self.noise_level)

    def to_dict(self):
        return asdict(self)


def make_subjects(config: GeneratorConfig):
    rng = np.random.default_rng([config.seed, 1])
    subjects, split_of = [], {}
    for split, count in zip(SPLITS, config.subjects_per_split):
        for _ in range(count):
            name = f"s{len(subjects):02d}"
            subjects.append(Subject.sample(name, rng, STYLE_DOMAINS[config.style_domain]))
            split_of[name] = split
    return subjects, split_of


def _place_objects(names, rng):
    """Non-overlapping spots on the table (best effort for crowded scenes)."""
    placed = {}
    for name in names:
        radius = object_spec(name).radius
        best = None
        for _ in range(60):
            spot = np.array([rng.uniform(*TABLE_X), rng.uniform(*TABLE_Y), 0.0])
            gap = min(
                (np.linalg.norm(spot - q) - radius - object_spec(n).radius for n, q in placed.items()), default=1.0
            )
            if best is None or gap > best[0]:
                best = (gap, spot)
            if gap > 0.02:
                break
        placed[name] = best[1]
    return placed


def _object_tracks(performer: Performer, positions, rotations, num_frames):
    """world_from_object (T, 4, 4) per object: still when free, rigidly following the hand that holds it."""
    tracks = {}
    events = sorted(performer.grip_events, key=lambda e: e[0])
    for name, start in performer.initial_objects.items():
        pose = np.tile(np.eye(4), (num_frames, 1, 1))
        position, rotation = start.copy(), np.eye(3)  # row-vector object -> world
        holder, frame = None, 0
        for event_frame, obj, side, takes in events + [(num_frames, name, None, None)]:
            if obj != name:
                continue
            if holder is None:
                pose[frame:event_frame, :3, :3] = rotation.T
                pose[frame:event_frame, :3, 3] = position
            else:
                rel_r, rel_p = holder_offset
                held_r = rel_r @ rotations[holder][frame:event_frame]
                held_p = np.einsum("j,tjk->tk", rel_p, rotations[holder][frame:event_frame])
                pose[frame:event_frame, :3, :3] = np.transpose(held_r, (0, 2, 1))
                pose[frame:event_frame, :3, 3] = held_p + positions[holder][frame:event_frame]
            if event_frame >= num_frames:
                break
            rotation = pose[max(event_frame - 1, 0), :3, :3].T if event_frame else rotation
            position = pose[max(event_frame - 1, 0), :3, 3] if event_frame else position
            if takes:
                holder = side
                hand_r, hand_p = rotations[side][event_frame], positions[side][event_frame]
                holder_offset = (rotation @ hand_r.T, (position - hand_p) @ hand_r.T)
            elif holder == side:
                holder = None
            frame = event_frame
        tracks[name] = pose.astype(np.float32)
    return tracks


def _absence_mask(num_frames, fraction, rng):
    """(T, 2) bool, True = hand present: spells of 1-3 s with one hand out of view until `fraction` is reached."""
    present = np.ones((num_frames, 2), dtype=bool)
    target = int(round(fraction * num_frames))
    while (~present).any(axis=1).sum() < target:
        length = int(rng.uniform(1.0, 3.0) * FPS)
        start = int(rng.integers(0, max(num_frames - length, 1)))
        if present[start : start + length].all():
            present[start : start + length, int(rng.integers(0, 2))] = False
    return present


def generate_recording(config: GeneratorConfig, index: int, subject: Subject, split: str) -> Recording:
    rng = np.random.default_rng([config.seed, 2, index])
    lo, hi = config.actions_per_recording
    classes = [ACTION_CLASSES[i] for i in rng.integers(0, len(ACTION_CLASSES), size=int(rng.integers(lo, hi + 1)))]
    needed = list(dict.fromkeys([c.noun for c in classes] + [p for c in classes for p in c.props]))
    for tool in ("spoon", "sponge"):  # tools stay out of the way of containers
        if tool in needed:
            needed.remove(tool)
            needed.append(tool)
    performer = Performer(subject, rng, _place_objects(needed, rng))
    segments = []
    performer.idle(rng.uniform(*config.idle_seconds))
    for action in classes:
        worker = subject.dominant if rng.random() < 0.85 else 1 - subject.dominant
        start, end = perform(performer, action, worker)
        segments.append(ActionSegment(start, end, action.label, action.verb, action.noun))
        performer.idle(rng.uniform(*config.idle_seconds))
    performer.sync()
    num_frames = performer.num_frames
    positions, rotations, joints = {}, {}, []
    for side in (LEFT, RIGHT):
        positions[side], rotations[side], postures = performer.tracks[side].arrays()
        joints.append(world_joints(subject.shape, postures, side, rotations[side], positions[side]))
    joints_world = np.stack(joints, axis=1).astype(np.float32)
    present = _absence_mask(num_frames, config.one_hand_absent_fraction, rng)
    views = _render_views(config, joints_world, present, rng)
    return Recording(
        name=f"syn{index:04d}",
        joints_world=joints_world,
        views=views,
        fps=FPS,
        actions=segments,
        subject=subject.name,
        split=split,
        objects=_object_tracks(performer, positions, rotations, num_frames),
    )


def _render_views(config, joints_world, present, rng):
    noise = EstimatorNoiseConfig.preset(config.noise_level)
    camera = intrinsics()
    extrinsics = {}
    for name in config.named_views:
        extrinsics[name] = ego_extrinsics(len(joints_world), rng, FPS) if name == "ego" else named_view_extrinsics(name)
    for k in range(config.random_views):
        extrinsics[f"random{k}"] = random_view_extrinsics(rng)
    views = {}
    for name, cam_from_world in extrinsics.items():
        joints_camera = world_to_camera(joints_world, cam_from_world)
        presence = present & hands_in_view(joints_camera, camera)
        estimated, estimated_presence = estimate_poses(joints_camera, presence, noise, rng)
        views[name] = ViewData(cam_from_world.astype(np.float32), camera, presence, estimated, estimated_presence)
    return views


def generate_benchmark(config: GeneratorConfig):
    """Yield the benchmark's recordings one at a time (subjects spread evenly over recordings)."""
    subjects, split_of = make_subjects(config)
    for index in range(config.num_recordings):
        subject = subjects[index % len(subjects)]
        yield generate_recording(config, index, subject, split_of[subject.name])
