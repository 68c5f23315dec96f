"""The node graph: its YAML description, the runner that starts it without ros2 launch, `ghtt-ros`."""
