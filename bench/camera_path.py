"""Camera-path benchmark over real DDS: 640x480 images at 30 Hz with both paths streaming; fps, drops, per-stage ms.

The demo's two graphs (ghtt_ros.demo.run.start_graphs: camera path in /camera with MediaPipe, pose path in /pose at
30 Hz unless --no-pose): the pose graph composed in this process, the camera graph composed too (--camera-mode
composed, the stage timers below) or one process per node (--camera-mode process, `ghtt-ros run --mode process`).
This process publishes bgr8 images (the real fixture video, centre-cropped to 4:3 and resized to --width x
--height) stamped with the wall clock at publication, like a camera.

Prints the load at start and end, input fps (published), received fps (images reaching the estimator's callback),
estimated fps (TwoHandPose messages delivered back here), drops (images without a pose: skipped by the estimator's
newest-frame queue or lost in transport), the ratio of the estimated rate to the --rate target (1.00 = held), and per
stage the p50 / p95 ms: publish (Image built + published here), transport (stamp -> image callback: DDS, and the
executor's queue when the GIL is busy), queue (callback -> estimator thread), convert (Image -> RGB), mediapipe (the
MediaPipe graph), place (MediaPipe result -> two placed hands: tracking, placement solver), message (TwoHandPose
built + published), and the CPU used by this process and by each node process. The stage timers wrap the functions
of the composed nodes (this script only; nothing in the package is changed by them); in process mode the estimator's
counters and processing time come from its /diagnostics.

    source scripts/ros_env.sh && .venv/bin/python bench/camera_path.py --seconds 20
Figures depend on the machine and its load; never used by tests.
"""

import argparse
import os
import resource
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
from ros_pipeline import Probe, stream, wait_for  # bench/ is the script's directory

from ghtt_ros.demo.run import DEFAULT_VIDEO

_NS_PER_S = 1_000_000_000
STAGES = ("publish", "transport", "queue", "convert", "mediapipe", "place", "message")


class StageTimes:
    """Per-stage durations (s) from any thread."""

    def __init__(self):
        self._lock = threading.Lock()
        self.samples = defaultdict(list)

    def add(self, stage, seconds):
        with self._lock:
            self.samples[stage].append(seconds)

    def timed(self, stage, function):
        def run(*args, **kwargs):
            start = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.add(stage, time.perf_counter() - start)
        return run

    def reset(self):
        with self._lock:
            self.samples = defaultdict(list)

    def line(self, stage):
        values = np.asarray(self.samples.get(stage, [])) * 1e3
        if not values.size:
            return f"{stage:9s}: no samples"
        return (f"{stage:9s}: p50 {np.percentile(values, 50):6.2f} ms, p95 {np.percentile(values, 95):6.2f} ms "
                f"(n={values.size})")


def instrument(times):
    """Stage timers around the camera path's functions; must run before the graph's nodes are created (the image
    callback is bound when the node subscribes)."""
    from ghtt_core.estimator import mediapipe_backend, mediapipe_graph
    from ghtt_ros.nodes import hand_estimator

    node_class = hand_estimator.HandEstimatorNode
    on_image, process_image = node_class._on_image, node_class._process_image
    arrivals = {}  # id(message) -> perf_counter at the image callback

    def on_image_timed(node, msg):
        times.add("transport", (time.time_ns() - hand_estimator.stamp_to_ns(msg.header.stamp)) / _NS_PER_S)
        arrivals[id(msg)] = time.perf_counter()
        return on_image(node, msg)

    def process_image_timed(node, msg):
        arrived = arrivals.pop(id(msg), None)
        if arrived is not None:
            times.add("queue", time.perf_counter() - arrived)
        return process_image(node, msg)

    node_class._on_image, node_class._process_image = on_image_timed, process_image_timed
    hand_estimator.image_to_rgb = times.timed("convert", hand_estimator.image_to_rgb)
    hand_estimator.estimate_to_msg = times.timed("message", hand_estimator.estimate_to_msg)
    mediapipe_graph.PacedHands.process = times.timed("mediapipe", mediapipe_graph.PacedHands.process)
    estimate = mediapipe_backend.MediaPipeHandEstimator.estimate

    def estimate_timed(estimator, *args, **kwargs):
        before = len(times.samples["mediapipe"])
        start = time.perf_counter()
        result = estimate(estimator, *args, **kwargs)
        spent = time.perf_counter() - start
        mediapipe_s = sum(times.samples["mediapipe"][before:])
        times.add("place", spent - mediapipe_s)
        return result

    mediapipe_backend.MediaPipeHandEstimator.estimate = estimate_timed


def camera_frames(video, width, height, count):
    """bgr8 frames of the video, centre-cropped to the target aspect ratio and resized."""
    import cv2

    capture = cv2.VideoCapture(str(video))
    frames = []
    while len(frames) < count:
        ok, bgr = capture.read()
        if not ok:
            break
        rows, cols = bgr.shape[:2]
        crop = min(cols, round(rows * width / height))
        left = (cols - crop) // 2
        frames.append(cv2.resize(bgr[:, left:left + crop], (width, height), interpolation=cv2.INTER_AREA))
    capture.release()
    if not frames:
        raise SystemExit(f"no frames decoded from {video}")
    return frames


def cpu_s(pid=None):
    """CPU seconds (user + system) of this process or of process `pid`."""
    if pid is None:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class EstimatorDiagnostics:
    """The latest /diagnostics values of /camera/hand_estimator (works in both modes)."""

    def __init__(self, node, name):
        from diagnostic_msgs.msg import DiagnosticArray

        from ghtt_ros.nodes.diagnostics import status_values

        self.name, self.values, self._status_values = name, {}, status_values
        node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, 50)

    def _on_diagnostics(self, msg):
        for status in msg.status:
            if status.name == self.name:
                self.values = self._status_values(status)

    def counter(self, key):
        return int(self.values.get(key, 0))


def load():
    return "load " + " / ".join(f"{value:.2f}" for value in os.getloadavg())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--rate", type=float, default=30.0, help="camera image rate (Hz), the target")
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--no-pose", action="store_true", help="camera path alone (default: pose path at 30 Hz too)")
    parser.add_argument("--camera-mode", choices=("composed", "process"), default="composed")
    parser.add_argument("--palm-detection-interval", type=int, default=5, help="hand_estimator parameter (1 = "
                        "MediaPipe's own rule, the behaviour before 2026-12-04)")
    parser.add_argument("--model-complexity", type=int, default=1, help="hand_estimator parameter")
    parser.add_argument("--video", type=Path, default=DEFAULT_VIDEO)
    parser.add_argument("--num-samples", type=int, default=20)
    args = parser.parse_args(argv)

    import rclpy
    import torch
    from rclpy.executors import SingleThreadedExecutor

    from ghtt_core.estimator.camera import DEFAULT_HORIZONTAL_FOV_DEG, CameraIntrinsics
    from ghtt_ros.demo.run import CAMERA_NAMESPACE, start_graphs
    from ghtt_ros.demo.sources import SyntheticActionSource
    from ghtt_ros.images import array_to_image, intrinsics_to_camera_info
    from ghtt_ros.nodes.pipeline import SHIPPED_CHECKPOINT

    print(f"camera path benchmark: {args.width}x{args.height} bgr8 at {args.rate:g} Hz for {args.seconds:g} s, "
          f"pose path {'off' if args.no_pose else 'at 30 Hz'}, camera graph {args.camera_mode}, "
          f"palm_detection_interval {args.palm_detection_interval}, model_complexity {args.model_complexity}, "
          f"{os.cpu_count()} CPUs, {load()} (start)", flush=True)
    torch.set_num_threads(1)
    times = StageTimes()
    if args.camera_mode == "composed":
        instrument(times)
    frames = camera_frames(args.video, args.width, args.height, 120)
    intrinsics = CameraIntrinsics.from_fov(args.width, args.height, DEFAULT_HORIZONTAL_FOV_DEG)
    synthetic = SyntheticActionSource(0, 2, 1)
    graphs = start_graphs(SHIPPED_CHECKPOINT, "cpu", args.num_samples, 120.0, camera_mode=args.camera_mode,
                          estimator={"palm_detection_interval": args.palm_detection_interval,
                                     "model_complexity": args.model_complexity})
    rclpy.init()
    node = rclpy.create_node("ghtt_camera_bench")
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    threading.Thread(target=executor.spin, daemon=True).start()
    try:
        probe = Probe(node)
        diagnostics = EstimatorDiagnostics(node, f"/{CAMERA_NAMESPACE}/hand_estimator")
        children = {name: process.pid for name, process in graphs[0].processes.items()}
        wait_for(lambda: node.count_subscribers(f"/{CAMERA_NAMESPACE}/image") >= 1, 30.0)

        def publish_image(i):
            start = time.perf_counter()
            stamp_ns = time.time_ns()
            probe.image.publish(array_to_image(frames[i % len(frames)], "bgr8", stamp_ns, "camera_optical_frame"))
            probe.camera_info.publish(intrinsics_to_camera_info(intrinsics, stamp_ns, "camera_optical_frame"))
            times.add("publish", time.perf_counter() - start)

        stream(3.0, args.rate, publish_image)  # warm-up: MediaPipe's first images, DDS discovery
        time.sleep(2.0)  # the estimator's diagnostics after the warm-up (published every second)
        probe.reset()
        times.reset()
        received_before, skipped_before = (diagnostics.counter("frames_received"),
                                           diagnostics.counter("frames_skipped"))
        counts = {}
        feeds = [threading.Thread(target=lambda: counts.__setitem__("camera", stream(args.seconds, args.rate,
                                                                                      publish_image)))]
        if not args.no_pose:
            feeds.append(threading.Thread(target=lambda: stream(args.seconds, 30.0, lambda i: probe.publish_pose(
                synthetic, i, time.time_ns()))))
        cpu_before = {name: cpu_s(pid) for name, pid in children.items()}
        cpu_before["this process"] = cpu_s()
        started = time.monotonic()
        for feed in feeds:
            feed.start()
        for feed in feeds:
            feed.join()
        elapsed = time.monotonic() - started
        cpu = {name: cpu_s(children.get(name)) - before for name, before in cpu_before.items()}
        wait_for(lambda: probe.estimated >= counts["camera"], 3.0)
        estimated = probe.estimated
        time.sleep(2.0)  # the estimator's diagnostics after the run
        published = counts["camera"]
        received = diagnostics.counter("frames_received") - received_before
        skipped = diagnostics.counter("frames_skipped") - skipped_before
        estimated_fps = estimated / elapsed
        print(f"  input {published / elapsed:.1f} fps ({published} images), reaching the estimator "
              f"{received / elapsed:.1f} fps, estimated {estimated_fps:.1f} fps ({estimated} poses); drops "
              f"{published - estimated} ({skipped} skipped by the newest-frame queue, {published - received} not "
              f"delivered); ratio to the {args.rate:g} fps target {estimated_fps / args.rate:.2f}; {load()}")
        print("  CPU, % of a core (ms per image): " + ", ".join(
            f"{name} {seconds / elapsed * 100:.0f} % ({seconds / max(published, 1) * 1e3:.1f})"
            for name, seconds in cpu.items()))
        print(f"  estimator processing p50 {diagnostics.values.get('processing_ms_p50', '?')} ms (its diagnostics)")
        for stage in STAGES:
            if stage in times.samples:
                print("  " + times.line(stage))
    finally:
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()
        for graph in graphs:
            graph.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
