"""Every ghtt message type published by one process arrives intact in another process over real DDS."""

import time

import rclpy
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

from sample_messages import assert_messages_equal, make_samples



def test_every_message_type_crosses_processes_intact(publisher_process):
    expected = make_samples()
    received = {}
    rclpy.init()
    try:
        node = rclpy.create_node("ghtt_sample_subscriber")
        qos = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
        for name, msg in expected.items():
            node.create_subscription(type(msg), f"sample_{name}", lambda m, n=name: received.setdefault(n, m), qos)
        deadline = time.monotonic() + 30
        while len(received) < len(expected) and time.monotonic() < deadline:
            rclpy.spin_once(node, timeout_sec=0.1)
        node.destroy_node()
    finally:
        rclpy.shutdown()
    assert set(received) == set(expected), f"missing: {set(expected) - set(received)}"
    for name, msg in expected.items():
        assert_messages_equal(received[name], msg, name)
