"""Soak: both ghtt graphs streaming for --minutes with faults injected throughout; does anything leak, stall or die?

The demo's two graphs run composed in this process (camera path in /camera: hand_estimator + ghtt_pipeline +
visualizer on the fixture video at its frame rate; pose path in /pose: ghtt_pipeline + visualizer on a synthetic
action stream at 30 Hz; this process also subscribes to every output, markers included, so the visualizers draw).
Every --fault-period seconds one fault from a fixed cycle goes in: NaN joints, wrong hand sides, a negative stamp,
a degenerate (all-zero) hand, a MotionPrediction with num_joints 0 for the visualizer, a CameraInfo with fx = inf, an
image in an unsupported encoding.

Prints the machine load at the start, then RSS of this process (graphs + publishers) after warm-up and at the end,
its growth in % and its trend, the outputs per topic, and every node's dropped / skipped / event counters from
/diagnostics. Figures depend on the machine and its load; never used by tests.

    source scripts/ros_env.sh && .venv/bin/python bench/soak.py --minutes 10
"""

import argparse
import copy
import os
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import numpy as np
import rclpy
import torch
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.executors import SingleThreadedExecutor
from sensor_msgs.msg import CameraInfo, Image
from visualization_msgs.msg import MarkerArray

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ros_pipeline import RELIABLE, Probe, percentiles_ms, rss_mb, stream  # noqa: E402

from ghtt.msg import ActionRecognition, MotionPrediction  # noqa: E402
from ghtt_ros.convert import ns_to_stamp  # noqa: E402
from ghtt_ros.demo.run import CAMERA_NAMESPACE, DEFAULT_VIDEO, POSE_NAMESPACE, start_graphs  # noqa: E402
from ghtt_ros.demo.sources import SyntheticActionSource, VideoSource  # noqa: E402
from ghtt_ros.nodes.diagnostics import status_values  # noqa: E402
from ghtt_ros.nodes.pipeline import SHIPPED_CHECKPOINT  # noqa: E402

COUNTER_PREFIXES = ("dropped_", "event_", "frames_", "outputs_", "results", "history_resets", "implausible_hands",
                    "log_lines_", "invalid_hands")


class Outputs:
    """Counts every output message per topic and keeps the latest diagnostics values per node."""

    def __init__(self, node):
        self.lock = threading.Lock()
        self.counts = Counter()
        self.diagnostics = {}
        self.prediction = {}
        for namespace in (CAMERA_NAMESPACE, POSE_NAMESPACE):
            for topic, msg_type in (("action", ActionRecognition), ("markers", MarkerArray)):
                node.create_subscription(msg_type, f"/{namespace}/{topic}",
                                         lambda msg, key=f"{namespace}/{topic}": self._count(key), RELIABLE)
        node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, 100)

    def _count(self, key):
        with self.lock:
            self.counts[key] += 1

    def _on_diagnostics(self, msg):
        with self.lock:
            for status in msg.status:
                self.diagnostics[status.name] = status_values(status)


class Faults:
    """One fault per call, from a fixed cycle, into the running graphs."""

    def __init__(self, node, synthetic, video):
        self.synthetic, self.video = synthetic, video
        self.poses = {ns: node.create_publisher(type(synthetic.message(0)), f"/{ns}/hands", RELIABLE)
                      for ns in (CAMERA_NAMESPACE, POSE_NAMESPACE)}
        self.prediction = node.create_publisher(MotionPrediction, f"/{POSE_NAMESPACE}/prediction", RELIABLE)
        self.camera_info = node.create_publisher(CameraInfo, f"/{CAMERA_NAMESPACE}/camera_info", RELIABLE)
        self.image = node.create_publisher(Image, f"/{CAMERA_NAMESPACE}/image", RELIABLE)
        self.injected = Counter()
        self._cycle = [self.nan_joints, self.wrong_side, self.negative_stamp, self.degenerate_hand,
                       self.empty_prediction, self.infinite_focal_length, self.bad_encoding]
        self._next = 0

    def inject(self, _index):
        fault = self._cycle[self._next % len(self._cycle)]
        self._next += 1
        fault()
        self.injected[fault.__name__] += 1

    def _pose(self):
        msg = copy.deepcopy(self.synthetic.message(self._next % self.synthetic.num_frames))
        msg.header.stamp = ns_to_stamp(time.time_ns())
        return msg

    def nan_joints(self):
        msg = self._pose()
        msg.left.present, msg.left.joints = True, np.full(63, np.nan, np.float32)
        self.poses[POSE_NAMESPACE].publish(msg)

    def wrong_side(self):
        msg = self._pose()
        msg.left.side = 7
        self.poses[POSE_NAMESPACE].publish(msg)

    def negative_stamp(self):
        msg = self._pose()
        msg.header.stamp.sec = -5
        self.poses[POSE_NAMESPACE].publish(msg)

    def degenerate_hand(self):
        msg = self._pose()
        msg.right.present, msg.right.confidence, msg.right.joints = True, 0.9, np.zeros(63, np.float32)
        self.poses[POSE_NAMESPACE].publish(msg)

    def empty_prediction(self):
        msg = MotionPrediction(num_samples=1, num_frames=1, num_joints=0)
        msg.header.stamp = ns_to_stamp(time.time_ns())
        self.prediction.publish(msg)

    def infinite_focal_length(self):
        image, info = self.video.messages(self.video.frames[0])
        info.k = [float("inf"), 0.0, 320.0, 0.0, float("inf"), 240.0, 0.0, 0.0, 1.0]
        info.header.stamp = ns_to_stamp(time.time_ns())
        self.camera_info.publish(info)

    def bad_encoding(self):
        image, _ = self.video.messages(self.video.frames[0])
        image.encoding = "yuv422"
        image.header.stamp = ns_to_stamp(time.time_ns())
        self.image.publish(image)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="streaming time after the warm-up")
    parser.add_argument("--warm-up", type=float, default=60.0, help="seconds before the first RSS sample")
    parser.add_argument("--fault-period", type=float, default=2.0, help="seconds between injected faults")
    parser.add_argument("--checkpoint", type=Path, default=SHIPPED_CHECKPOINT)
    parser.add_argument("--num-samples", type=int, default=20)
    parser.add_argument("--video", type=Path, default=DEFAULT_VIDEO)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    video = VideoSource(args.video, 1, max_seconds=4.0)
    synthetic = SyntheticActionSource(0, 4, 1)
    print(f"soak: {args.minutes:g} min after {args.warm_up:g} s warm-up, a fault every {args.fault_period:g} s; "
          f"{os.cpu_count()} CPUs, load average at start {os.getloadavg()[0]:.2f}; {args.checkpoint.name}, "
          f"K={args.num_samples}, video {video.path.name} at {video.fps:.0f} Hz, pose stream 30 Hz", flush=True)
    graphs = start_graphs(args.checkpoint, "cpu", args.num_samples, 180.0)
    rclpy.init()
    node = rclpy.create_node("ghtt_soak_probe")
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    threading.Thread(target=executor.spin, daemon=True).start()
    stop = threading.Event()
    try:
        probe, outputs, faults = Probe(node), Outputs(node), Faults(node, synthetic, video)
        time.sleep(3.0)  # discovery
        total_s = args.warm_up + args.minutes * 60
        feeds = [(30.0, lambda i: probe.publish_pose(synthetic, i, time.time_ns())),
                 (video.fps, lambda i: probe.publish_image(video, video.frames[i % len(video.frames)],
                                                           time.time_ns())),
                 (1.0 / args.fault_period, faults.inject)]
        threads = [threading.Thread(target=stream, args=(total_s, rate, publish, stop)) for rate, publish in feeds]
        for thread in threads:
            thread.start()
        time.sleep(args.warm_up)
        samples = [(time.monotonic(), rss_mb())]
        counts_at_warm_up = dict(probe.results)
        while any(thread.is_alive() for thread in threads):
            time.sleep(10.0)
            samples.append((time.monotonic(), rss_mb()))
        time.sleep(5.0)  # the last results and diagnostics
        times, values = np.array(samples).T
        slope = np.polyfit((times - times[0]) / 60.0, values, 1)[0] if len(samples) > 2 else float("nan")
        growth = 100 * (values[-1] - values[0]) / values[0]
        peak = 100 * (values.max() - values[0]) / values[0]
        print(f"RSS after warm-up {values[0]:.0f} MB, end {values[-1]:.0f} MB, max {values.max():.0f} MB: growth "
              f"{growth:+.2f} % (max {peak:+.2f} %), trend {slope:+.2f} MB/min over {len(samples)} samples")
        with outputs.lock:
            counts, diagnostics = dict(outputs.counts), dict(outputs.diagnostics)
        print(f"results (refined clips): pose {probe.results[POSE_NAMESPACE]} "
              f"({probe.results[POSE_NAMESPACE] - counts_at_warm_up[POSE_NAMESPACE]} after warm-up), camera "
              f"{probe.results[CAMERA_NAMESPACE]}; estimated camera poses {probe.estimated}; "
              f"other outputs {dict(sorted(counts.items()))}")
        print(f"prediction latency: pose {percentiles_ms(probe.latencies[POSE_NAMESPACE])}; "
              f"camera {percentiles_ms(probe.latencies[CAMERA_NAMESPACE])}")
        print(f"faults injected: {dict(faults.injected)}")
        for name in sorted(diagnostics):
            if name.startswith((f"/{CAMERA_NAMESPACE}/", f"/{POSE_NAMESPACE}/")):
                values_ = diagnostics[name]
                shown = {key: value for key, value in values_.items() if key.startswith(COUNTER_PREFIXES)}
                print(f"  {name} [{values_.get('state')}]: {shown}")
        alive = all(graph._spin_thread.is_alive() for graph in graphs)
        print(f"executors alive at the end: {alive}")
    finally:
        stop.set()
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()
        for graph in graphs:
            graph.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
