"""One side of the two-terminal check (test_user_environment.py): `talk TOPIC` publishes a String every 0.1 s until
killed; `listen TOPIC` prints its ROS_DOMAIN_ID and the first message it receives, then exits 0 (1 after 60 s)."""

import os
import sys
import time

import rclpy
from std_msgs.msg import String


def main(role, topic):
    rclpy.init()
    node = rclpy.create_node(f"ghtt_env_{role}")
    if role == "talk":
        publisher = node.create_publisher(String, topic, 10)
        node.create_timer(0.1, lambda: publisher.publish(String(data=f"hello from pid {os.getpid()}")))
        rclpy.spin(node)
        return 0
    received = []
    node.create_subscription(String, topic, received.append, 10)
    deadline = time.monotonic() + 60
    while not received and time.monotonic() < deadline:
        rclpy.spin_once(node, timeout_sec=0.1)
    print(f"domain={os.environ.get('ROS_DOMAIN_ID', 'unset')} received={received[0].data if received else ''}",
          flush=True)
    return 0 if received else 1


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
