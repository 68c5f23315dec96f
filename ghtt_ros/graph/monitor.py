"""A running graph seen from outside over DDS: the latest /diagnostics status of each of its nodes (how the runner
learns, in process mode, that a node became active or failed to configure and why), and the nodes in the ROS graph
that carry the same fully qualified names as its own (a second graph started in the same namespace).
"""

import os
import threading
from collections import Counter

import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rclpy.context import Context
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.signals import SignalHandlerOptions

from ghtt_ros.nodes.diagnostics import status_values


def duplicated_names(node, names):
    """Those of the fully qualified names that more than one node in the ROS graph carries (seen from `node`)."""
    seen = Counter(f"{namespace.rstrip('/')}/{name}" for name, namespace in node.get_node_names_and_namespaces())
    return sorted(name for name in names if seen[name] > 1)


class GraphMonitor:
    def __init__(self):
        self._context = Context()
        rclpy.init(args=[], context=self._context, signal_handler_options=SignalHandlerOptions.NO)
        self.node = rclpy.create_node(f"ghtt_graph_monitor_{os.getpid()}", context=self._context,
                                      use_global_arguments=False, start_parameter_services=False)
        self._lock = threading.Lock()
        self._statuses = {}
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, 50)
        self._executor = SingleThreadedExecutor(context=self._context)
        self._executor.add_node(self.node)
        self._thread = threading.Thread(target=self._spin, name="ghtt-graph-monitor", daemon=True)
        self._thread.start()

    def _spin(self):
        try:
            self._executor.spin()
        except ExternalShutdownException:
            return

    def _on_diagnostics(self, msg):
        with self._lock:
            for status in msg.status:
                self._statuses[status.name] = status

    def node_state(self, name):
        """(state label, error message or "") from the latest /diagnostics of the node with this fully qualified
        name; None before it reported."""
        with self._lock:
            status = self._statuses.get(name)
        if status is None:
            return None
        error = status.message if status.level == DiagnosticStatus.ERROR else ""
        return status_values(status).get("state", "unknown"), error

    def close(self):
        self._executor.shutdown(timeout_sec=1.0)
        self.node.destroy_node()
        self._context.try_shutdown()
        self._thread.join(2.0)
