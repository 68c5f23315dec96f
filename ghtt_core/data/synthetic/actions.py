"""The action library: verb + noun classes and the phase program each one runs on a Performer.

Every program moves the working hand through reach -> grasp -> manipulate -> release -> retract; the other hand
holds the object or a container (hold-work actions), works too (hand over) or rests (one-hand actions). Programs
share primitives, so actions with the same verb move alike and differ through the object (size, grasp, height),
and actions on the same object differ through the verb's motion.
"""

from dataclasses import dataclass

import numpy as np

from ghtt_core.data.synthetic.motion import orbit_detour
from ghtt_core.data.synthetic.objects import object_spec
from ghtt_core.data.synthetic.performer import Performer

UP = np.array([0.0, 0.0, 1.0])


@dataclass(frozen=True)
class ActionClass:
    verb: str
    noun: str
    roles: str  # "one-hand", "hold-work" or "both-work"
    props: tuple  # other objects the scene needs (containers, tools)

    @property
    def label(self):
        return f"{self.verb} {self.noun}"


def _grip_top(p: Performer, obj):
    spec = object_spec(obj)
    return p.objects[obj] + np.array([0.0, 0.0, spec.height])


def _grip_body(p: Performer, obj):
    spec = object_spec(obj)
    return p.objects[obj] + np.array([0.0, 0.0, spec.height * spec.grasp_height])


def _hold(p: Performer, side, obj):
    """The supporting hand takes the object (or container) in its usual grasp."""
    spec = object_spec(obj)
    grasp = spec.grasp if spec.grasp not in ("spherical", "pinch", "point") else "power"
    grip = _grip_body(p, obj) if grasp == "power" else _grip_top(p, obj)
    if grasp in ("hook", "flat"):  # on the rim nearest to the holding hand
        grip = grip + np.array([np.sign(p.tracks[side].position[0]) * spec.radius * 0.9, 0.0, 0.0])
    p.reach_and_grasp(side, grip, grasp, spec.closure, radius=spec.radius, obj=obj)


def _take(p: Performer, side, obj, top=False):
    spec = object_spec(obj)
    grasp = spec.grasp if not top else ("pinch" if spec.radius < 0.04 else "spherical")
    grip = _grip_top(p, obj) if (top or spec.grasp != "power") else _grip_body(p, obj)
    p.reach_and_grasp(side, grip, grasp, spec.closure, radius=spec.radius, obj=obj)


def _put_down(p: Performer, side, obj, target):
    """Carry the held object to `target` on the table (object base position), set it down and let go."""
    track = p.tracks[side]
    offset = track.position - p.objects[obj]
    p.carry(side, np.asarray(target) + offset, lift=0.08)
    p.place_object(obj, target)
    p.release(side)


def _free_spot(p: Performer, near, min_distance=0.12):
    """A table spot 0.15-0.3 m from `near`, kept on the table and away from the other objects where possible."""
    best = None
    for _ in range(20):
        angle = p.rng.uniform(0, 2 * np.pi)
        spot = np.asarray(near) + p.rng.uniform(0.15, 0.3) * np.array([np.cos(angle), np.sin(angle), 0.0])
        spot[0] = np.clip(spot[0], -0.35, 0.35)
        spot[1] = np.clip(spot[1], -0.12, 0.25)
        gap = min(np.linalg.norm(spot - q) for q in p.objects.values())
        if best is None or gap > best[0]:
            best = (gap, spot)
        if gap > min_distance:
            break
    return best[1]


def _twists(p: Performer, side, obj, centre, count, angle, drift_per_twist, regrasp):
    """Repeated wrist twists about the vertical axis through `centre`, re-gripping between twists."""
    spec = object_spec(p.holding[side] or obj)
    closed = p.grasp_posture(spec.grasp, spec.closure)
    loosened = p.grasp_posture(spec.grasp, spec.closure * 0.55)
    for _ in range(count):
        p.turn(side, centre, UP, angle, 0.45 * abs(angle) / np.radians(70) + 0.15, drift=(0, 0, drift_per_twist))
        if regrasp:
            p.tracks[side].move(p.frames(0.12), None, None, loosened)
            p.turn(side, centre, UP, -angle, 0.3, posture_after=loosened)
            p.tracks[side].move(p.frames(0.12), None, None, closed)
        centre = centre + np.array([0, 0, drift_per_twist])


def take_out(p: Performer, noun, worker):
    basket = p.objects["basket"]
    p.place_object(noun, basket + np.array([p.rng.normal(0, 0.02), p.rng.normal(0, 0.02), 0.02]))
    _hold(p, 1 - worker, "basket")
    _take(p, worker, noun)
    p.sync()
    track = p.tracks[worker]
    p.carry(worker, track.position + np.array([0, 0, 0.17 * p.amplitude]), lift=0.0, seconds=0.6)
    _put_down(p, worker, noun, _free_spot(p, basket))


def put_in(p: Performer, noun, worker):
    basket = p.objects["basket"]
    _hold(p, 1 - worker, "basket")
    _take(p, worker, noun)
    p.sync()
    track = p.tracks[worker]
    offset = track.position - p.objects[noun]
    above = basket + offset + np.array([0, 0, 0.16])
    p.carry(worker, above, lift=0.1)
    p.carry(worker, above - np.array([0, 0, 0.14]), lift=0.0, seconds=0.5)
    p.place_object(noun, basket + np.array([0, 0, 0.02]))
    p.release(worker)


def pour(p: Performer, noun, worker):
    target = p.objects["bowl"]
    _hold(p, 1 - worker, "bowl")
    _take(p, worker, noun)
    p.sync()
    track = p.tracks[worker]
    offset = track.position - p.objects[noun]
    spec = object_spec(noun)
    sideways = np.sign(p.objects[noun][0] - target[0]) or 1.0
    above = target + offset + np.array([sideways * 0.06, 0, 0.12 + 0.6 * spec.height])
    p.carry(worker, above, lift=0.05)
    mouth = above - offset + np.array([0, 0, spec.height])
    tilt_axis = np.array([0.0, sideways, 0.0])
    tilt = np.radians(p.rng.uniform(85, 120)) * p.amplitude
    p.turn(worker, mouth, tilt_axis, tilt, 0.8)
    p.tracks[worker].hold(p.frames(p.rng.uniform(0.6, 1.4)))
    p.turn(worker, mouth, tilt_axis, -tilt, 0.7)
    start = p.objects[noun]
    p.carry(worker, start + offset, lift=0.05)
    p.release(worker)


def _open_or_close_container(p: Performer, noun, worker, opening):
    """Bottle or jar: one hand holds the body, the other twists the cap or lid (off and away, or on)."""
    spec = object_spec(noun)
    _hold(p, 1 - worker, noun)
    top = _grip_top(p, noun)
    cap_grasp = "precision" if spec.radius < 0.045 else "spherical"
    spot = _free_spot(p, p.objects[noun]) + np.array([0, 0, 0.02])
    if opening:
        p.reach_and_grasp(worker, top, cap_grasp, 0.9)
    else:  # pick the cap up from the table first, then bring it onto the top
        p.reach_and_grasp(worker, spot, cap_grasp, 0.9)
        track = p.tracks[worker]
        p.carry(worker, track.position + (top - spot), lift=0.08)
    p.sync()
    count = int(p.rng.integers(2, 4)) if spec.radius < 0.045 else int(p.rng.integers(1, 3))
    angle = np.radians(p.rng.uniform(60, 95) if spec.radius < 0.045 else p.rng.uniform(40, 70)) * p.amplitude
    _twists(p, worker, noun, top, count, angle if opening else -angle, 0.003 if opening else -0.003, regrasp=True)
    if opening:
        track = p.tracks[worker]
        p.carry(worker, track.position + np.array([0, 0, 0.05]), lift=0.0, seconds=0.35)
        p.carry(worker, p.tracks[worker].position + (spot - top), lift=0.05)
    p.release(worker)
    p.release(1 - worker)


def _open_or_close_box(p: Performer, worker, opening):
    """The lid turns about its hinge on the far edge; the other hand steadies the box."""
    spec = object_spec("box")
    box = p.objects["box"]
    _hold(p, 1 - worker, "box")
    hinge = box + np.array([0, spec.radius, spec.height])
    front_edge = box + np.array([0, -spec.radius * 0.8, spec.height])
    swing = np.radians(p.rng.uniform(95, 115))
    closed_grip = front_edge
    open_grip = hinge + (front_edge - hinge) @ np.array(
        [[1, 0, 0], [0, np.cos(swing), np.sin(swing)], [0, -np.sin(swing), np.cos(swing)]]
    )
    grip = closed_grip if opening else open_grip
    p.reach_and_grasp(worker, grip, "pinch", 0.9, rotation=p.grasp_rotation(worker, "pinch", yaw_deg=0.0))
    p.sync()
    p.turn(worker, hinge, np.array([1.0, 0, 0]) * (1 if opening else -1), swing, 0.9 * p.amplitude)
    p.release(worker)
    p.release(1 - worker)


def open_(p: Performer, noun, worker):
    if noun == "box":
        _open_or_close_box(p, worker, opening=True)
    else:
        _open_or_close_container(p, noun, worker, opening=True)


def close(p: Performer, noun, worker):
    if noun == "box":
        _open_or_close_box(p, worker, opening=False)
    else:
        _open_or_close_container(p, noun, worker, opening=False)


def _screw(p: Performer, noun, worker, tighten):
    """Bolt: small fast pinch twists at the table; bulb: wide spherical twists up into a lamp socket."""
    spec = object_spec(noun)
    if noun == "bolt":
        seat = p.objects["bolt"] + np.array([0, 0, spec.height])
        count, angle, drift = int(p.rng.integers(4, 7)), np.radians(p.rng.uniform(45, 70)), 0.002
    else:
        seat = p.objects["lamp"] + np.array([0, 0, 0.24])
        count, angle, drift = int(p.rng.integers(2, 4)), np.radians(p.rng.uniform(70, 100)), 0.004
    angle *= p.amplitude
    start = _grip_top(p, noun) if tighten else seat
    if noun == "bulb" and not tighten:
        start = seat
    p.reach_and_grasp(worker, start, spec.grasp, spec.closure, obj=noun)
    if tighten:
        p.carry(worker, p.tracks[worker].position + (seat - start), lift=0.06)
    sign = -1.0 if tighten else 1.0
    rise = (-drift if noun == "bolt" else drift) * (1 if tighten else -1)
    _twists(p, worker, noun, seat, count, sign * angle, rise, regrasp=True)
    if not tighten:
        spot = _free_spot(p, p.objects[noun])
        p.carry(worker, p.tracks[worker].position + (spot + np.array([0, 0, spec.height]) - seat), lift=0.06)
        p.place_object(noun, spot)
    p.release(worker)


def screw(p: Performer, noun, worker):
    _screw(p, noun, worker, tighten=True)


def unscrew(p: Performer, noun, worker):
    _screw(p, noun, worker, tighten=False)


def _tool_in_vessel(p: Performer, tool, vessel, worker, depth):
    """Take a tool (spoon, sponge) from the table and bring its tip into a vessel; returns the wrist offset."""
    _hold(p, 1 - worker, vessel)
    _take(p, worker, tool)
    p.sync()
    offset = p.tracks[worker].position - p.objects[tool]
    inside = p.objects[vessel] + np.array([0, 0, object_spec(vessel).height * depth])
    p.carry(worker, inside + offset, lift=0.08)
    return offset, inside


def _return_tool(p: Performer, tool, worker, offset):
    spot = _free_spot(p, p.objects[tool], min_distance=0.05)
    p.carry(worker, p.tracks[worker].position + np.array([0, 0, 0.08]), lift=0.0, seconds=0.35)
    p.carry(worker, spot + offset, lift=0.05)
    p.place_object(tool, spot)
    p.release(worker)
    p.release(1 - worker)


def stir(p: Performer, noun, worker):
    offset, _ = _tool_in_vessel(p, "spoon", noun, worker, depth=0.6)
    radius = (0.014 if noun == "cup" else 0.032) * p.amplitude
    turns = int(p.rng.integers(3, 6))
    direction = 1 if p.rng.random() < 0.7 else -1
    p.tracks[worker].move(
        p.frames(0.75 * turns), detour=orbit_detour(radius, direction * turns, p.rng.uniform(0, 2 * np.pi))
    )
    _return_tool(p, "spoon", worker, offset)


def wipe(p: Performer, noun, worker):
    offset, inside = _tool_in_vessel(p, "sponge", noun, worker, depth=1.0 if noun == "plate" else 0.5)
    track = p.tracks[worker]
    if noun == "plate":  # straight strokes across the plate
        heading = p.rng.uniform(0, np.pi)
        stroke = 0.07 * p.amplitude * np.array([np.cos(heading), np.sin(heading), 0.0])
        centre = track.position.copy()
        for _ in range(int(p.rng.integers(3, 6))):
            track.move(p.frames(0.45), centre + stroke)
            track.move(p.frames(0.45), centre - stroke)
        track.move(p.frames(0.3), centre)
    else:  # slow circles around the inside wall, the wrist rolling with the wall
        turns = int(p.rng.integers(2, 4))
        track.move(p.frames(1.1 * turns), detour=orbit_detour(0.04 * p.amplitude, turns, p.rng.uniform(0, 2 * np.pi)))
    _return_tool(p, "sponge", worker, offset)



def press(p: Performer, noun, worker):
    track = p.tracks[worker]
    if noun == "button":  # poke down with the index finger 1-3 times
        spec = object_spec("button")
        p.reach_and_grasp(worker, _grip_top(p, "button") + np.array([0, 0, 0.02]), "point", 1.0)
        top = track.position.copy()
        for _ in range(int(p.rng.integers(1, 4))):
            track.move(p.frames(0.22), top - np.array([0, 0, 0.02 + spec.height * 0.2]))
            track.move(p.frames(0.22), top)
        p.release(worker)
        return
    # spray: lift, aim, squeeze the trigger with the index finger several times, put it back
    _take(p, worker, "spray")
    held = track.posture.copy()
    squeezed = held.copy()
    squeezed[1, 1:] += np.radians([25.0, 20.0, 10.0])
    start, grasp_rotation = track.position.copy(), track.rotation.copy()
    aim = start + np.array([0, 0.05, 0.12]) * p.amplitude
    p.carry(worker, aim, lift=0.0, seconds=0.6)
    p.turn(worker, aim, np.array([1.0, 0, 0]), np.radians(p.rng.uniform(-25, -10)), 0.3)
    for _ in range(int(p.rng.integers(2, 5))):
        track.move(p.frames(0.2), None, None, squeezed)
        track.move(p.frames(0.25), None, None, held)
    p.carry(worker, start, lift=0.0, rotation=grasp_rotation)
    p.release(worker)


def hand_over(p: Performer, noun, worker):
    """The working hand brings the object to the middle, the other hand takes it over and puts it down."""
    receiver = 1 - worker
    _take(p, worker, noun)
    offset = p.tracks[worker].position - p.objects[noun]
    meeting = np.array([p.rng.normal(0, 0.04), p.rng.uniform(-0.12, -0.02), p.rng.uniform(0.12, 0.2)])
    p.carry(worker, meeting + offset, lift=0.04)
    spec = object_spec(noun)
    p.sync()
    p.reach_and_grasp(receiver, meeting + np.array([0, 0, spec.height * 0.75]), spec.grasp, spec.closure,
                      radius=spec.radius, obj=noun)
    p.sync()
    p.place_object(noun, meeting)
    p.release(worker)
    p.retract(worker)
    side = np.sign(p.tracks[receiver].position[0]) or 1.0
    target = np.array([side * p.rng.uniform(0.12, 0.3), p.rng.uniform(-0.08, 0.2), 0.0])
    receiver_offset = p.tracks[receiver].position - meeting
    p.carry(receiver, target + receiver_offset, lift=0.03)
    p.place_object(noun, target)
    p.release(receiver)


def pick_and_place(p: Performer, noun, worker):
    _take(p, worker, noun)
    _put_down(p, worker, noun, _free_spot(p, p.objects[noun]))


ACTION_CLASSES = tuple(
    [ActionClass("take out", n, "hold-work", ("basket",)) for n in ("bottle", "cup", "can")]
    + [ActionClass("put in", n, "hold-work", ("basket",)) for n in ("bottle", "cup", "can")]
    + [ActionClass("pour", n, "hold-work", ("bowl",)) for n in ("bottle", "cup")]
    + [ActionClass("open", n, "hold-work", ()) for n in ("bottle", "jar", "box")]
    + [ActionClass("close", n, "hold-work", ()) for n in ("bottle", "jar", "box")]
    + [ActionClass("screw", "bolt", "one-hand", ()), ActionClass("screw", "bulb", "one-hand", ("lamp",))]
    + [ActionClass("unscrew", "bolt", "one-hand", ()), ActionClass("unscrew", "bulb", "one-hand", ("lamp",))]
    + [ActionClass("stir", n, "hold-work", ("spoon",)) for n in ("cup", "bowl")]
    + [ActionClass("wipe", n, "hold-work", ("sponge",)) for n in ("plate", "bowl")]
    + [ActionClass("press", n, "one-hand", ()) for n in ("spray", "button")]
    + [ActionClass("hand over", n, "both-work", ()) for n in ("bottle", "cup")]
    + [ActionClass("pick and place", n, "one-hand", ()) for n in ("bottle", "cup")]
)

PROGRAMS = {
    "take out": take_out,
    "put in": put_in,
    "pour": pour,
    "open": open_,
    "close": close,
    "screw": screw,
    "unscrew": unscrew,
    "stir": stir,
    "wipe": wipe,
    "press": press,
    "hand over": hand_over,
    "pick and place": pick_and_place,
}


def perform(p: Performer, action: ActionClass, worker: int):
    """Run one action instance from rest to rest; returns its [start, end) frames."""
    p.sync()
    p.start_action()
    start = p.num_frames
    start_positions = {side: p.tracks[side].position.copy() for side in (0, 1)}
    PROGRAMS[action.verb](p, action.noun, worker)
    for side in (0, 1):
        if p.holding[side] is not None:
            p.release(side)
    p.sync()
    for side in (0, 1):
        if not np.allclose(p.tracks[side].position, start_positions[side]):
            p.retract(side)
    p.sync()
    return start, p.num_frames
