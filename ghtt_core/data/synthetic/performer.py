"""A subject performing manipulation phases with two hands: reach, grasp, manipulate, release, retract.

The performer plans in the world frame (table plane z = 0, the subject sits at y < 0 facing +y) and keeps a wrist
track per hand plus a log of which hand holds which object from which frame on.
"""

from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation

from ghtt_core.data.synthetic.grasps import grasp_posture, posture
from ghtt_core.data.synthetic.kinematics import HandShape, clip_to_limits
from ghtt_core.data.synthetic.motion import HandTrack, hand_rotation, lift_detour
from ghtt_core.skeleton import LEFT, RIGHT

# Where the grasp centre sits in the hand frame (right hand, metres for an adult hand of scale 1), per grasp posture:
# the object is held this far along the fingers (+y) and out of the palm (+z).
_GRIP_CENTRES = {
    "power": (0.005, 0.070, 0.020),  # + object radius along z
    "hook": (0.0, 0.100, 0.030),
    "spherical": (0.005, 0.075, 0.050),
    "precision": (0.030, 0.100, 0.050),
    "pinch": (0.035, 0.110, 0.045),
    "lateral": (0.030, 0.090, 0.040),
    "tripod": (0.030, 0.100, 0.040),
    "point": (0.030, 0.165, 0.012),
    "flat": (0.0, 0.070, 0.015),
}
# Grasps that come from above (palm down); the others come from the side of the object.
TOP_GRASPS = ("spherical", "precision", "pinch", "point", "flat")
FPS = 30.0


@dataclass(frozen=True)
class Subject:
    """Per-subject constants: hand size, movement style, dominant hand."""

    name: str
    scale: float  # hand size relative to an average adult, 0.85-1.15
    speed: float  # habitual speed multiplier
    amplitude: float  # habitual movement amplitude multiplier
    dominant: int  # LEFT or RIGHT
    style: np.ndarray  # (5, 4) radians added to every grasp posture
    shape: HandShape

    @classmethod
    def sample(cls, name: str, rng: np.random.Generator, style: "StyleDomain | None" = None):
        style = style or STYLE_DOMAINS["default"]
        scale = rng.uniform(*style.scale)
        speed = rng.uniform(*style.speed)
        # drawn only where the domain has slow subjects, so that the default domain keeps the random stream (and the
        # recordings) of datasets generated before style domains existed
        if style.slow_fraction > 0 and rng.random() < style.slow_fraction:
            speed = 1.0 / speed
        return cls(
            name=name,
            scale=scale,
            speed=speed,
            amplitude=rng.uniform(*style.amplitude),
            dominant=LEFT if rng.random() < style.left_handed_fraction else RIGHT,
            style=np.radians(rng.normal(0.0, style.posture_sigma_deg, size=(5, 4))),
            shape=HandShape.for_subject(scale, rng),
        )


@dataclass(frozen=True)
class StyleDomain:
    """Ranges the subjects are drawn from. `shifted` is out of the default domain on every axis, for testing how a
    model trained on `default` behaves on motion it never saw: faster or (slow_fraction) slower movements, larger
    amplitudes, more personal grasp postures, more left-handers."""

    scale: tuple = (0.85, 1.15)
    speed: tuple = (0.85, 1.2)
    slow_fraction: float = 0.0  # share of subjects whose speed is 1 / the drawn value
    amplitude: tuple = (0.85, 1.15)
    posture_sigma_deg: float = 4.0
    left_handed_fraction: float = 0.15


STYLE_DOMAINS = {
    "default": StyleDomain(),
    "shifted": StyleDomain(scale=(0.8, 1.2), speed=(1.35, 1.7), slow_fraction=0.5, amplitude=(1.2, 1.45),
                           posture_sigma_deg=10.0, left_handed_fraction=0.5),
}


def _side_sign(side):
    return 1.0 if side == RIGHT else -1.0


class Performer:
    """Plans both hands of one subject over an untrimmed sequence."""

    def __init__(self, subject: Subject, rng: np.random.Generator, object_positions: dict):
        self.subject = subject
        self.rng = rng
        self.objects = {name: np.asarray(p, dtype=np.float64) for name, p in object_positions.items()}
        self.initial_objects = dict(self.objects)
        self.speed = 1.0
        self.amplitude = 1.0
        self.grip_events = []  # (frame, object name, side, True = takes hold / False = lets go)
        self.holding = {LEFT: None, RIGHT: None}
        self.tracks = {side: HandTrack(*self.rest_pose(side)) for side in (LEFT, RIGHT)}

    # ---- timing -------------------------------------------------------------------------------------------------
    def frames(self, seconds):
        """Frames for a movement of nominal duration `seconds` at the current speed."""
        return max(3, int(round(seconds * FPS / self.speed)))

    def start_action(self):
        """Draw the speed (0.7-1.4x) and amplitude of the next action instance."""
        self.speed = float(np.clip(self.subject.speed * self.rng.uniform(0.8, 1.25), 0.7, 1.4))
        self.amplitude = float(self.subject.amplitude * self.rng.uniform(0.85, 1.15))

    @property
    def num_frames(self):
        return max(track.num_frames for track in self.tracks.values())

    def sync(self):
        """Let the hand that finished first wait for the other one."""
        total = self.num_frames
        for track in self.tracks.values():
            track.hold(total - track.num_frames)

    def idle(self, seconds):
        for track in self.tracks.values():
            track.hold(self.frames(seconds))

    # ---- poses --------------------------------------------------------------------------------------------------
    def rest_pose(self, side):
        """Hand resting on the table edge in front of the body, palm down, relaxed fingers."""
        sign = _side_sign(side)
        position = np.array([sign * self.rng.uniform(0.15, 0.28), self.rng.uniform(-0.26, -0.18), 0.035])
        yaw = np.radians(self.rng.uniform(-15, 25))
        thumb = np.array([-sign * np.cos(yaw), -np.sin(yaw) * sign, 0.0])
        return position, hand_rotation(side, (0.0, 0.0, -1.0), thumb), clip_to_limits(
            posture("relaxed") + self.subject.style
        )

    def grasp_rotation(self, side, grasp, yaw_deg=None):
        """Wrist orientation for a grasp: from above for top grasps, from the hand's own side otherwise."""
        sign = _side_sign(side)
        yaw = np.radians(self.rng.uniform(-20, 30) if yaw_deg is None else yaw_deg)
        if grasp in TOP_GRASPS:
            return hand_rotation(side, (0.0, 0.0, -1.0), (-sign * np.cos(yaw), -np.sin(yaw), 0.0))
        if grasp == "tripod":  # pen-like grip: palm tilted down and inwards, thumb forward
            return hand_rotation(side, (-sign * 0.55, 0.15, -0.8), (0.0, np.cos(yaw), np.sin(yaw) * 0.3 + 0.4))
        palm_normal = (-sign * np.cos(yaw), np.sin(abs(yaw)) + 0.25, 0.0)
        return hand_rotation(side, palm_normal, (0.0, 0.0, 1.0))

    def wrist_for_grip(self, side, grasp, grip_point, rotation, radius=0.0):
        """Wrist position that puts the grasp centre of `grasp` on `grip_point`."""
        centre = np.array(_GRIP_CENTRES[grasp]) * self.subject.scale
        if grasp == "power":
            centre = centre + np.array([0.0, 0.0, radius])
        centre[0] *= _side_sign(side)
        return np.asarray(grip_point) - centre @ rotation

    def grasp_posture(self, grasp, closure):
        return grasp_posture(grasp, closure, self.subject.style)

    # ---- phases -------------------------------------------------------------------------------------------------
    def reach_and_grasp(self, side, grip_point, grasp, closure, radius=0.0, rotation=None, obj=None, approach=None):
        """Reach with a pre-shaped hand to just before the grip point, then close in and take hold of `obj`.

        approach: unit direction the hand travels in for the last few centimetres (default: along the palm normal).
        """
        track = self.tracks[side]
        rotation = self.grasp_rotation(side, grasp) if rotation is None else rotation
        wrist = self.wrist_for_grip(side, grasp, grip_point, rotation, radius)
        approach = rotation[2] if approach is None else np.asarray(approach)
        pre_grasp = wrist - 0.06 * self.amplitude * approach + np.array([0.0, 0.0, 0.02])
        distance = np.linalg.norm(pre_grasp - track.position)
        track.move(
            self.frames(0.45 + 0.9 * distance), pre_grasp, rotation, self.grasp_posture(grasp, 0.2), finger_delay=0.3
        )
        track.move(self.frames(0.35), wrist, None, self.grasp_posture(grasp, closure), finger_delay=0.2)
        if obj is not None:
            self.attach(side, obj)

    def attach(self, side, obj):
        self.grip_events.append((self.tracks[side].num_frames - 1, obj, side, True))
        self.holding[side] = obj

    def release(self, side, opening=0.6):
        """Open the hand part of the way and back off along the palm normal."""
        track = self.tracks[side]
        if self.holding[side] is not None:
            self.grip_events.append((track.num_frames - 1, self.holding[side], side, False))
            self.holding[side] = None
        track.move(self.frames(0.25), None, None, track.posture + opening * (posture("open") - track.posture))
        track.move(self.frames(0.3), track.position - 0.05 * track.rotation[2] + np.array([0.0, 0.0, 0.02]))

    def retract(self, side):
        """Return to a fresh rest pose."""
        track = self.tracks[side]
        position, rotation, rest_posture = self.rest_pose(side)
        distance = np.linalg.norm(position - track.position)
        track.move(self.frames(0.5 + 0.9 * distance), position, rotation, rest_posture, finger_delay=0.1)

    def carry(self, side, target_wrist, lift, seconds=None, rotation=None):
        """Move the (holding) hand to a new wrist position along an arc that rises by `lift`."""
        track = self.tracks[side]
        distance = np.linalg.norm(np.asarray(target_wrist) - track.position)
        duration = self.frames((0.5 + 1.1 * distance) if seconds is None else seconds)
        rise = lift_detour(lift * self.amplitude) if lift > 0 else None
        track.move(duration, target_wrist, rotation, detour=rise)

    def turn(self, side, centre, axis, angle, seconds, drift=(0.0, 0.0, 0.0), posture_after=None):
        """Rotate the hand (and whatever it holds) about a world axis through `centre`, e.g. twisting a cap."""
        track = self.tracks[side]
        axis = np.asarray(axis, dtype=np.float64) / np.linalg.norm(axis)
        centre = np.asarray(centre, dtype=np.float64)
        drift = np.asarray(drift, dtype=np.float64)
        start = track.position.copy()

        def arc_at(s):
            turns = Rotation.from_rotvec(s[:, None] * angle * axis[None]).as_matrix()  # column convention
            return centre + np.einsum("nij,j->ni", turns, start - centre) + s[:, None] * drift

        end = arc_at(np.ones(1))[0]
        end_rotation = track.rotation @ Rotation.from_rotvec(angle * axis).as_matrix().T

        def along_arc(s):
            return arc_at(s) - (start + s[:, None] * (end - start))

        track.move(self.frames(seconds), end, end_rotation, posture_after, detour=along_arc)

    def place_object(self, obj, position):
        """Remember where an object was put down, for later actions."""
        self.objects[obj] = np.asarray(position, dtype=np.float64)
