"""In-process node tests: nodes and a probe node on one SingleThreadedExecutor in the test's own rclpy context,
spun by the test thread until what it waits for has arrived."""

import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, ReliabilityPolicy

from ros_fixtures import spin_until

RELIABLE = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)


class NodeHarness:
    def __init__(self):
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.probe = rclpy.create_node("ghtt_test_probe", context=self.context)
        self.executor.add_node(self.probe)
        self.nodes = []
        self.received = {}

    def add(self, node_class, namespace="", **parameters):
        node = node_class(context=self.context, namespace=namespace,
                          parameter_overrides=[Parameter(k, value=v) for k, v in parameters.items()])
        self.nodes.append(node)
        self.executor.add_node(node)
        return node

    def publisher(self, msg_type, topic, qos=RELIABLE):
        return self.probe.create_publisher(msg_type, topic, qos)

    def record(self, msg_type, topic, qos=RELIABLE):
        """Messages arriving on topic are collected in received[topic]."""
        self.received[topic] = []
        self.probe.create_subscription(msg_type, topic, self.received[topic].append, qos)
        return self.received[topic]

    def spin_until(self, condition, timeout_s):
        return spin_until(self.probe, condition, timeout_s, self.executor)

    def close(self):
        for node in self.nodes:
            if node.state_label != "finalized":
                node.trigger_shutdown()
        self.executor.shutdown()
        for node in self.nodes + [self.probe]:
            node.destroy_node()
        self.context.try_shutdown()
