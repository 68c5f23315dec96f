"""ghtt_ros: rclpy nodes, message converters and the graph runner. No model math lives here (see ghtt_core)."""
