"""Objects on the table: their size, how a hand takes them, and their placement in the scene (world frame, metres)."""

from dataclasses import dataclass


@dataclass(frozen=True)
class ObjectSpec:
    """A graspable object: an upright body of `height` and `radius` standing on the table (z = 0).

    grasp: posture name of the working hand; grasp_height: height of the grasp point as a fraction of `height`;
    closure: how far the fingers close along the grasp synergy before they touch it (wide objects stop earlier).
    """

    name: str
    height: float
    radius: float
    grasp: str
    grasp_height: float
    closure: float


OBJECTS = {
    spec.name: spec
    for spec in (
        ObjectSpec("bottle", 0.22, 0.035, "power", 0.45, 0.85),
        ObjectSpec("cup", 0.10, 0.040, "power", 0.55, 0.70),
        ObjectSpec("can", 0.12, 0.033, "power", 0.50, 0.90),
        ObjectSpec("jar", 0.13, 0.050, "spherical", 1.00, 0.75),
        ObjectSpec("box", 0.09, 0.090, "hook", 1.00, 0.80),
        ObjectSpec("bolt", 0.03, 0.008, "pinch", 1.00, 1.00),
        ObjectSpec("bulb", 0.10, 0.030, "spherical", 1.00, 0.90),
        ObjectSpec("bowl", 0.07, 0.080, "hook", 1.00, 0.85),
        ObjectSpec("plate", 0.02, 0.110, "flat", 1.00, 1.00),
        ObjectSpec("spray", 0.20, 0.030, "power", 0.55, 0.85),
        ObjectSpec("button", 0.04, 0.030, "point", 1.00, 1.00),
        # tools and containers that appear in actions without being the action's noun
        ObjectSpec("spoon", 0.02, 0.010, "tripod", 1.00, 1.00),
        ObjectSpec("sponge", 0.04, 0.040, "tripod", 1.00, 0.90),
        ObjectSpec("basket", 0.12, 0.120, "hook", 1.00, 0.80),
        ObjectSpec("lamp", 0.24, 0.060, "power", 0.50, 0.80),
    )
}


def object_spec(name: str) -> ObjectSpec:
    if name not in OBJECTS:
        raise ValueError(f"unknown object {name!r}; known: {sorted(OBJECTS)}")
    return OBJECTS[name]


# Reachable table area in front of the subject (who sits at y < 0 facing +y): x across, y away from the subject.
TABLE_X = (-0.28, 0.28)
TABLE_Y = (-0.12, 0.18)
