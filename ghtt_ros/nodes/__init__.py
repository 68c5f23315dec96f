"""The ghtt ROS 2 nodes and what they share: lifecycle base, parameters, diagnostics, worker queue."""
