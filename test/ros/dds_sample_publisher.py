"""Publishes every ghtt sample message on topic `sample_<Type>` until killed (run as a separate process)."""

import sys

import rclpy
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from sample_messages import make_samples  # noqa: E402


def main():
    rclpy.init()
    node = rclpy.create_node("ghtt_sample_publisher")
    qos = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
    samples = make_samples()
    publishers = {name: node.create_publisher(type(msg), f"sample_{name}", qos) for name, msg in samples.items()}
    node.create_timer(0.1, lambda: [publishers[name].publish(msg) for name, msg in samples.items()])
    print("publishing", flush=True)
    rclpy.spin(node)


if __name__ == "__main__":
    main()
