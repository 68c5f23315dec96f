"""Which parameter names a node accepts, and the error for one it does not (a misspelled name must not look like a
setting: rclpy silently ignores values for undeclared parameters). ROS-free, for the graph files and the nodes."""

import difflib

# Parameters every rclpy node has besides its declared ones.
STANDARD_PARAMETERS = ("use_sim_time", "start_type_description_service")
# Families of standard parameters, declared only when a publisher or subscription is created.
STANDARD_PREFIXES = ("qos_overrides.",)


def unknown_parameters(given_names, known_names):
    """Error strings for given names that are neither known nor standard, each with the closest known names."""
    known_names = set(known_names) | set(STANDARD_PARAMETERS)
    errors = []
    for name in sorted(set(given_names) - known_names):
        if name.startswith(STANDARD_PREFIXES):
            continue
        close = difflib.get_close_matches(name, sorted(known_names), n=2)
        hint = f" (did you mean {' or '.join(close)}?)" if close else ""
        errors.append(f"unknown parameter {name!r}{hint}")
    return errors

