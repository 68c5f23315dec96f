"""Every ghtt message type published by one process arrives byte-identical in another process over real DDS."""

import subprocess
import sys
import time
from pathlib import Path

import pytest
import rclpy
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from rclpy.serialization import serialize_message

from sample_messages import make_samples

HERE = Path(__file__).resolve().parent


@pytest.fixture
def publisher_process():
    process = subprocess.Popen([sys.executable, str(HERE / "dds_sample_publisher.py")], stdout=subprocess.PIPE,
                               text=True)
    try:
        assert process.stdout.readline().strip() == "publishing"
        yield process
    finally:
        process.terminate()
        process.wait(timeout=10)


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
        assert serialize_message(received[name]) == serialize_message(msg), name
