"""Silence said on the node's log: after `input_timeout_s` without input while active, one warning names
every topic the node waits for, with its type, QoS and how many publishers it currently sees. The most common causes
(another ROS_DOMAIN_ID, a reliable reader against a best-effort publisher, a wrong remapping) are then visible in
the node's own log instead of only as a WARN diagnostic."""

import os

from rclpy.qos import ReliabilityPolicy


def describe_subscription(subscription, publisher_count):
    qos = subscription.qos_profile
    reliability = "reliable" if qos.reliability == ReliabilityPolicy.RELIABLE else "best effort"
    msg_type = subscription.msg_type
    type_name = f"{msg_type.__module__.split('.')[0]}/{msg_type.__name__}"
    return (f"{subscription.topic_name} [{type_name}, {reliability}, depth {qos.depth}; "
            f"{publisher_count} publisher{'s' if publisher_count != 1 else ''}]")


class InputWatch:
    """Warns once per silence: the warning is re-armed by the next input."""

    def __init__(self):
        self._warned_at_count = None

    def check(self, node, seconds_without_input, frames_received, timeout_s):
        """Log the warning through node when the silence is longer than timeout_s; returns the message or None."""
        if seconds_without_input is None or seconds_without_input < timeout_s:
            return None
        if self._warned_at_count == frames_received:
            return None
        self._warned_at_count = frames_received
        waiting = "; ".join(describe_subscription(s, node.count_publishers(s.topic_name))
                            for s in node.watched_inputs)
        message = (f"no input for {seconds_without_input:.0f} s; waiting for {waiting}. Check that the publisher "
                   f"runs, uses the same ROS_DOMAIN_ID (here {os.environ.get('ROS_DOMAIN_ID', 'unset = 0')}) and "
                   "a compatible QoS, and the topic remappings")
        node.get_logger().warning(message)
        return message
