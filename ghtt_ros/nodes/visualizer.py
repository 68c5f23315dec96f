"""visualizer node: ghtt outputs -> visualization_msgs/MarkerArray on `markers` for RViz (config/ghtt.rviz) or
Foxglove. Markers are computed only while someone subscribes to them; they keep the stamp and frame of their source.
No torch: drawing needs only numpy and the messages.
"""

import time

import numpy as np
from visualization_msgs.msg import MarkerArray

from ghtt_ros.convert import (
    action_recognition_from_msg,
    motion_prediction_from_msg,
    stamp_to_ns,
    two_hand_pose_array_from_msg,
    two_hand_pose_from_msg,
)
from ghtt_ros.markers import action_text_marker, hand_markers, prediction_markers
from ghtt_ros.nodes.base import GhttNode, run_node
from ghtt_ros.nodes.parameters import ParameterSpec
from ghtt_ros.nodes.qos import INPUT_RELIABILITY_PARAMETER, OUTPUT_QOS, input_qos
from ghtt_ros.nodes.rate_limit import StampRateLimiter
from ghtt.msg import ActionRecognition, MotionPrediction, TwoHandPose, TwoHandPoseArray

INPUT_DEPTH = 10
INPUTS = (("hands", TwoHandPose), ("refined_hands", TwoHandPoseArray), ("action", ActionRecognition),
          ("prediction", MotionPrediction))

VISUALIZER_PARAMETERS = (
    ParameterSpec("max_samples_drawn", 8, "Predicted samples drawn per hand (a fan of trajectories).", 0, 256,
                  runtime=True),
    ParameterSpec("trajectory_joint", 0, "Joint whose predicted path is drawn (0 wrist, 8 index tip, ...).", 0, 20,
                  runtime=True),
    ParameterSpec("marker_lifetime_s", 2.0, "Markers vanish this long after their last update (0 = never).",
                  0.0, 3600.0, runtime=True),
    ParameterSpec("line_width_m", 0.004, "Bone and trajectory line width.", 0.0001, 0.1, runtime=True),
    ParameterSpec("max_rate_hz", 0.0, "Marker updates per input topic at most this often, by source stamp "
                  "(0 = every message).", 0.0, 1000.0, runtime=True),
    INPUT_RELIABILITY_PARAMETER,
)


class VisualizerNode(GhttNode):
    PARAMETERS = VISUALIZER_PARAMETERS

    def __init__(self, node_name="visualizer", **node_options):
        super().__init__(node_name, **node_options)
        self._output = None
        self._limiters = {}
        self._anchor = np.array([0.0, 0.0, 0.5])
        self._draws = {"hands": self._draw_hands, "refined_hands": self._draw_refined, "action": self._draw_action,
                       "prediction": self._draw_prediction}

    def configure(self, params):
        self._output = self.create_lifecycle_publisher(MarkerArray, "markers", OUTPUT_QOS)

    def activate(self):
        qos = input_qos(self.params["input_reliability"], INPUT_DEPTH)
        self._limiters = {topic: StampRateLimiter(self.params["max_rate_hz"]) for topic, _ in INPUTS}
        self.watched_inputs = [
            self.subscribe(msg_type, topic, lambda msg, t=topic: self._on_message(msg, t), qos)
            for topic, msg_type in INPUTS
        ]

    def deactivate(self):
        for subscription in self.watched_inputs:
            self.destroy_subscription(subscription)
        self.watched_inputs = []

    def apply_runtime_parameter(self, name, value):
        if name == "max_rate_hz":
            for limiter in self._limiters.values():
                limiter.max_rate_hz = value

    def cleanup(self):
        if self._output is not None:
            self.destroy_lifecycle_publisher(self._output)
            self._output = None

    def _on_message(self, msg, topic):
        started = time.monotonic()
        # Only live poses are checked against the clock: refined clips and predictions carry older stamps by design.
        unusable = self.on_input(stamp_to_ns(msg.header.stamp), check_stamps=topic == "hands")
        if unusable:
            self.drop(unusable, f"{type(msg).__name__} stamped {msg.header.stamp.sec} s")
            return
        if not self.input_enabled():
            return
        if self._output.get_subscription_count() == 0:
            self.stats.on_event("no_marker_subscriber")
            return
        if not self._limiters[topic].allow(stamp_to_ns(msg.header.stamp)):
            self.stats.on_event("rate_limited")
            return
        try:
            markers = self._draws[topic](msg)
        except ValueError as error:
            self.drop("malformed", str(error))
            return
        self._output.publish(MarkerArray(markers=markers))
        self.record_published(stamp_to_ns(msg.header.stamp), started)

    def _line_options(self):
        return self.params["marker_lifetime_s"], self.params["line_width_m"]

    def _draw_hands(self, msg):
        hands = two_hand_pose_from_msg(msg)
        if hands.presence.any():
            self._anchor = hands.joints[hands.presence, 0].mean(axis=0)
        return hand_markers(msg.header, hands.joints, hands.presence, "hands", *self._line_options())

    def _draw_refined(self, msg):
        frames, _ = two_hand_pose_array_from_msg(msg)
        if not frames:
            raise ValueError("TwoHandPoseArray without frames")
        latest = msg.frames[-1]
        return hand_markers(latest.header, frames[-1].joints, frames[-1].presence, "refined_hands",
                            *self._line_options(), alpha=0.5)

    def _draw_action(self, msg):
        recognition = action_recognition_from_msg(msg)
        return [action_text_marker(msg.header, recognition.hypotheses[:3], self._anchor,
                                   self.params["marker_lifetime_s"])]

    def _draw_prediction(self, msg):
        prediction, mean, _ = motion_prediction_from_msg(msg)
        return prediction_markers(msg.header, prediction.positions, mean, prediction.hand_present,
                                  self.params["trajectory_joint"], self.params["max_samples_drawn"],
                                  *self._line_options())


def main(args=None):
    run_node(VisualizerNode, args)


if __name__ == "__main__":
    main()
