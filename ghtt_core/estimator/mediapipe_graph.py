"""MediaPipe Hands (legacy solution graph, models in the wheel) with the palm detector run on a schedule we choose.

MediaPipe's own tracking graph runs the palm detector on every image while it tracks fewer hands than
`max_num_hands`: with max_num_hands 2 and one hand in view (the usual case) every image pays for detection AND
landmarks, 19 ms instead of 9 ms per 640x480 image on this project's CPU (docs/ros.md, "Benchmarks"). The graph is the
wheel's hand_landmark_tracking_cpu with one change: its detection gate reads a `skip_palm_detection` input that this
class sets per image instead of the graph's own "enough hands tracked" flag. `PacedHands` skips detection when
max_num_hands are tracked (MediaPipe's rule) and, while at least one hand is tracked, runs it only on every
`detection_interval`-th image; with no hand tracked it detects on every image. Tracked hands keep following their
previous landmarks in between, exactly as in MediaPipe's own tracking; a hand entering the view is found at most
`detection_interval` images later, and when a tracked hand is lost the same image is searched again at once.
detection_interval 1 reproduces MediaPipe's behaviour; static_image_mode (single photos) detects on every image and
tracks nothing, as Hands(static_image_mode=True).
"""

import os

_GRAPH = "modules/hand_landmark/hand_landmark_tracking_cpu.binarypb"
_OWN_GATE_INPUT = "DISALLOW:prev_has_enough_hands"
SKIP_STREAM = "skip_palm_detection"
OUTPUTS = ("multi_hand_landmarks", "multi_hand_world_landmarks", "multi_handedness")


def paced_graph_config():
    """The wheel's hand tracking graph with the palm detection gate driven by the `skip_palm_detection` input."""
    import mediapipe
    from mediapipe.framework import calculator_pb2

    config = calculator_pb2.CalculatorGraphConfig()
    with open(os.path.join(os.path.dirname(mediapipe.__file__), _GRAPH), "rb") as graph_file:
        config.ParseFromString(graph_file.read())
    gates = [node for node in config.node if _OWN_GATE_INPUT in node.input_stream]
    if len(gates) != 1:  # another MediaPipe version with another graph: fail loudly rather than detect wrongly
        raise RuntimeError(f"MediaPipe's hand tracking graph has {len(gates)} palm detection gates, expected 1")
    inputs = gates[0].input_stream
    inputs[list(inputs).index(_OWN_GATE_INPUT)] = f"DISALLOW:{SKIP_STREAM}"
    config.input_stream.append(f"SKIP_PALM_DETECTION:{SKIP_STREAM}")
    return config


class PacedHands:
    """mp.solutions.hands.Hands in tracking (video) mode with the palm detector paced (module docstring)."""

    def __init__(self, max_num_hands=2, model_complexity=1, min_detection_confidence=0.5,
                 min_tracking_confidence=0.5, detection_interval=1, static_image_mode=False):
        from mediapipe.python.solution_base import SolutionBase

        if detection_interval < 1:
            raise ValueError(f"detection_interval must be >= 1, got {detection_interval}")
        self.max_num_hands = max_num_hands
        self.detection_interval = detection_interval
        self.static_image_mode = static_image_mode
        self._solution = SolutionBase(
            graph_config=paced_graph_config(),
            side_inputs={"model_complexity": model_complexity, "num_hands": max_num_hands,
                         "use_prev_landmarks": not static_image_mode},
            calculator_params={  # the same options mp.solutions.hands.Hands sets
                "palmdetectioncpu__TensorsToDetectionsCalculator.min_score_thresh": min_detection_confidence,
                "handlandmarkcpu__ThresholdingCalculator.threshold": min_tracking_confidence,
            },
            outputs=list(OUTPUTS))
        self._tracked = 0  # hands MediaPipe returned for the previous image (= the ones it tracks now)
        self._since_detection = 0  # images since the detector last ran
        self.detections_run = 0

    def process(self, image):
        """RGB uint8 (H, W, 3) -> MediaPipe's result (multi_hand_landmarks, ...), as Hands.process."""
        skip = not self.static_image_mode and (self._tracked >= self.max_num_hands or (
            self._tracked > 0 and self._since_detection + 1 < self.detection_interval))
        result = self._run(image, skip)
        if skip and len(result.multi_hand_landmarks or ()) < self._tracked:
            # A tracked hand was lost (it left, or the scene cut): look for hands in this same image at once, as
            # MediaPipe's rule would have, instead of returning one image without it.
            result = self._run(image, False)
        self._tracked = len(result.multi_hand_landmarks or ())
        return result

    def _run(self, image, skip_detection):
        self._since_detection = self._since_detection + 1 if skip_detection else 0
        self.detections_run += int(not skip_detection)
        return self._solution.process({"image": image, SKIP_STREAM: skip_detection})

    def reset(self):
        self._solution.reset()
        self._tracked = self._since_detection = 0

    def close(self):
        self._solution.close()
