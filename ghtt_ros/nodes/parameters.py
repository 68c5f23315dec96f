"""Declared ROS parameters: every parameter has a description, a type, and a range or a list of allowed values.

A bad value (out of range, wrong type, unknown choice) or a parameter the node does not have (a misspelled name in a
parameter file or on the command line: ghtt_ros.parameter_names) never kills a node: the problem is recorded, the
node is constructed with defaults, and it refuses to configure with that message.

Most parameters are read on configure; `runtime` ones may also change while the node is active.
"""

from dataclasses import dataclass

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.exceptions import InvalidParameterTypeException, InvalidParameterValueException


@dataclass(frozen=True)
class ParameterSpec:
    name: str
    default: object  # bool, int, float or str; its type is the parameter's type
    description: str
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple = ()
    runtime: bool = False  # may change while active (otherwise read on configure only)

    def descriptor(self):
        description = self.description + (" (changeable while active)" if self.runtime else "")
        descriptor = ParameterDescriptor(name=self.name, description=description)
        if self.minimum is not None and isinstance(self.default, float):
            descriptor.floating_point_range = [FloatingPointRange(from_value=float(self.minimum),
                                                                  to_value=float(self.maximum))]
        elif self.minimum is not None and isinstance(self.default, int) and not isinstance(self.default, bool):
            descriptor.integer_range = [IntegerRange(from_value=int(self.minimum), to_value=int(self.maximum))]
        if self.choices:
            descriptor.additional_constraints = "one of: " + ", ".join(str(choice) for choice in self.choices)
        return descriptor

    def check(self, value):
        """Raise ValueError when value is not allowed (ROS checks ranges itself; choices are ours)."""
        if self.choices and value not in self.choices:
            raise ValueError(f"parameter {self.name}: {value!r} is not one of {list(self.choices)}")


def declare_all(node, specs):
    """Declare specs on node; returns a list of error strings for values that could not be accepted."""
    errors = []
    for spec in specs:
        try:
            node.declare_parameter(spec.name, spec.default, spec.descriptor())
        except (InvalidParameterValueException, InvalidParameterTypeException) as error:
            errors.append(f"parameter {spec.name}: {error}")
            node.declare_parameter(spec.name, spec.default, spec.descriptor(), ignore_override=True)
    return errors


def read_all(node, specs):
    """{name: value} of the declared specs, with choices checked (ValueError)."""
    values = {}
    for spec in specs:
        value = node.get_parameter(spec.name).value
        spec.check(value)
        values[spec.name] = value
    return values


def defaults(specs):
    return {spec.name: spec.default for spec in specs}
