"""ROS graph benchmarks over real DDS: end-to-end latency, sustained input rate without drops, memory while streaming.

The demo's two graphs run composed in this process (ghtt_ros.demo.run.start_graphs: camera path in /camera with
MediaPipe, pose path in /pose); this process also publishes the inputs and listens to the outputs.

1. latency: inputs stamped with the current time at publication (pose 30 Hz, camera --latency-camera-rate), each
   path alone and both at once; latency = arrival of the MotionPrediction here - its header stamp (= stamp of the clip's last frame),
   i.e. camera stamp -> prediction published and delivered; p50 / p95 / max.
2. throughput: each path fed at increasing rates (source stamps at the model's 30 Hz, i.e. a faster-than-real-time
   replay); a rate passes when every input came out of the graph (pose: a result at the end of the first clip and
   then every --clip-stride frames, nothing skipped by the pipeline; camera: one estimated pose per image). Reports
   the highest passing rate.
3. memory: both paths streaming at the nominal rates for --minutes; RSS of this process (graph + publishers)
   sampled every 10 s; reports start (after warm-up), end, max and growth per minute.

    source scripts/ros_env.sh && .venv/bin/python bench/ros_pipeline.py --minutes 10
Figures depend on the machine and its load; print them with the machine description. Never used by tests.
"""

import argparse
import os
import sys
import threading
import time
from pathlib import Path

import numpy as np
import rclpy
from rclpy.executors import SingleThreadedExecutor
import torch
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image

from ghtt.msg import MotionPrediction, TwoHandPose, TwoHandPoseArray
from ghtt_ros.convert import ns_to_stamp, stamp_to_ns
from ghtt_ros.demo.run import CAMERA_NAMESPACE, CLIP_LEN, DEFAULT_VIDEO, POSE_NAMESPACE, start_graphs
from ghtt_ros.demo.sources import SyntheticActionSource, VideoSource
from ghtt_core.pipeline import PipelineConfig
from ghtt_ros.nodes.pipeline import SHIPPED_CHECKPOINT

_NS_PER_S = 1_000_000_000
MODEL_FRAME_PERIOD_NS = _NS_PER_S // 30
RELIABLE = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)


def rss_mb():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    raise RuntimeError("VmRSS not found in /proc/self/status")


def percentiles_ms(values_s):
    if not values_s:
        return "no samples"
    values = np.asarray(values_s) * 1e3
    return (f"p50 {np.percentile(values, 50):.0f} ms, p95 {np.percentile(values, 95):.0f} ms, "
            f"max {values.max():.0f} ms (n={values.size})")


class Probe:
    """Publishes inputs and counts/time-stamps the outputs of both paths."""

    def __init__(self, node):
        self.node = node
        self.image = node.create_publisher(Image, f"/{CAMERA_NAMESPACE}/image", RELIABLE)
        self.camera_info = node.create_publisher(CameraInfo, f"/{CAMERA_NAMESPACE}/camera_info", RELIABLE)
        self.poses = node.create_publisher(TwoHandPose, f"/{POSE_NAMESPACE}/hands", RELIABLE)
        self._lock = threading.Lock()
        self.latencies = {CAMERA_NAMESPACE: [], POSE_NAMESPACE: []}
        self.results = {CAMERA_NAMESPACE: 0, POSE_NAMESPACE: 0}
        self.estimated = 0
        for namespace in (CAMERA_NAMESPACE, POSE_NAMESPACE):
            node.create_subscription(MotionPrediction, f"/{namespace}/prediction",
                                     lambda msg, ns=namespace: self._on_prediction(ns, msg), RELIABLE)
            node.create_subscription(TwoHandPoseArray, f"/{namespace}/refined_hands",
                                     lambda msg, ns=namespace: self._on_result(ns), RELIABLE)
        node.create_subscription(TwoHandPose, f"/{CAMERA_NAMESPACE}/hands", self._on_estimated, RELIABLE)

    def _on_prediction(self, namespace, msg):
        latency_s = (time.time_ns() - stamp_to_ns(msg.header.stamp)) / _NS_PER_S
        with self._lock:
            self.latencies[namespace].append(latency_s)

    def _on_result(self, namespace):
        with self._lock:
            self.results[namespace] += 1

    def _on_estimated(self, msg):
        with self._lock:
            self.estimated += 1

    def reset(self):
        with self._lock:
            self.latencies = {CAMERA_NAMESPACE: [], POSE_NAMESPACE: []}
            self.results = {CAMERA_NAMESPACE: 0, POSE_NAMESPACE: 0}
            self.estimated = 0

    def publish_image(self, video, frame, stamp_ns):
        image, info = video.messages(frame)
        image.header.stamp = info.header.stamp = ns_to_stamp(stamp_ns)
        self.camera_info.publish(info)
        self.image.publish(image)

    def publish_pose(self, synthetic, index, stamp_ns):
        msg = synthetic.message(index % synthetic.num_frames)
        msg.header.stamp = ns_to_stamp(stamp_ns)
        self.poses.publish(msg)


def stream(duration_s, rate_hz, publish, stop=None):
    """Calls publish(i) at rate_hz for duration_s (catching up without bursts when late); -> inputs published."""
    start = time.monotonic()
    count = 0
    while time.monotonic() - start < duration_s and not (stop and stop.is_set()):
        publish(count)
        count += 1
        delay = start + count / rate_hz - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    return count


def wait_for(condition, timeout_s):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def measure_latency(probe, graphs, video, synthetic, seconds, camera_rate_hz):
    """Each path alone, then both at once; inputs stamped with the wall clock at publication. Also reports the poses
    the pose path's pipeline node skipped (its pose queue overflowed) and its results skipped as stale (overload
    policy) in each run."""
    pose_node = graphs[1].nodes["ghtt_pipeline"]
    feeds = {
        POSE_NAMESPACE: (30.0, lambda i: probe.publish_pose(synthetic, i, time.time_ns())),
        CAMERA_NAMESPACE: (camera_rate_hz, lambda i: probe.publish_image(
            video, video.frames[i % len(video.frames)], time.time_ns())),
    }
    print(f"latency, input stamp -> prediction delivered ({seconds:.0f} s each; pose 30 Hz, camera "
          f"{camera_rate_hz:.0f} Hz; load average {os.getloadavg()[0]:.2f}):")
    for running in ([POSE_NAMESPACE], [CAMERA_NAMESPACE], [POSE_NAMESPACE, CAMERA_NAMESPACE]):
        probe.reset()
        skipped_before, stale_before = pose_node.stats.skipped, pose_node.pipeline.stats.results_skipped
        counts = {}
        threads = [threading.Thread(target=lambda name=name: counts.__setitem__(name, stream(seconds, *feeds[name])))
                   for name in running]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        time.sleep(3.0)  # the last clips' results
        wait_for(lambda: pose_node.worker is None or pose_node.worker.pending == 0, 10.0)  # a pose backlog
        for name in running:
            skipped = (f", {pose_node.stats.skipped - skipped_before} of {counts[name]} poses skipped by the pipeline, "
                       f"{pose_node.pipeline.stats.results_skipped - stale_before} results skipped as stale"
                       if name == POSE_NAMESPACE else "")
            print(f"  {name:6s} path{' (both streaming)' if len(running) > 1 else ''}: "
                  f"{percentiles_ms(probe.latencies[name])}{skipped}")


def pose_rate_passes(probe, graphs, synthetic, rate_hz, seconds, phase):
    node = graphs[1].nodes["ghtt_pipeline"]
    skipped_before, stale_before = node.stats.skipped, node.pipeline.stats.results_skipped
    probe.reset()
    base = (phase + 1) * 10**6 * _NS_PER_S  # a new, later stream per phase
    frames = stream(seconds, rate_hz, lambda i: probe.publish_pose(synthetic, i, base + i * MODEL_FRAME_PERIOD_NS))
    stride = node.pipeline_config.clip_stride
    expected = 0 if frames < CLIP_LEN else 1 + (frames - CLIP_LEN) // stride
    wait_for(lambda: probe.results[POSE_NAMESPACE] >= expected, 10.0)
    skipped = node.stats.skipped - skipped_before
    stale = node.pipeline.stats.results_skipped - stale_before
    ok = probe.results[POSE_NAMESPACE] == expected and skipped == 0
    print(f"  pose   {rate_hz:6.0f} Hz: {frames} poses -> {probe.results[POSE_NAMESPACE]}/{expected} results "
          f"({stale} skipped as stale), {skipped} poses skipped by the pipeline: {'ok' if ok else 'DROPS'}")
    return ok


def camera_rate_passes(probe, graphs, video, rate_hz, seconds, phase):
    estimator = graphs[0].nodes["hand_estimator"]
    received_before, skipped_before = estimator.stats.received, estimator.stats.skipped
    probe.reset()
    base = (phase + 1) * 10**6 * _NS_PER_S
    images = stream(seconds, rate_hz, lambda i: probe.publish_image(
        video, video.frames[i % len(video.frames)], base + i * MODEL_FRAME_PERIOD_NS))
    wait_for(lambda: probe.estimated >= images, 5.0)
    ok = probe.estimated == images
    print(f"  camera {rate_hz:6.0f} Hz: {images} images -> {probe.estimated} estimated poses "
          f"({images - (estimator.stats.received - received_before)} not delivered to the estimator, "
          f"{estimator.stats.skipped - skipped_before} skipped by its newest-image queue; load "
          f"{os.getloadavg()[0]:.2f}): {'ok' if ok else 'DROPS'}")
    return ok


def highest_passing(rates, passes):
    best = None
    for rate in rates:
        if not passes(rate):
            break
        best = rate
    return best


def measure_memory(probe, video, synthetic, minutes):
    stop = threading.Event()
    probe.reset()
    threads = [
        threading.Thread(target=stream, args=(minutes * 60, 30.0, lambda i: probe.publish_pose(
            synthetic, i, time.time_ns()), stop)),
        threading.Thread(target=stream, args=(minutes * 60, video.fps, lambda i: probe.publish_image(
            video, video.frames[i % len(video.frames)], time.time_ns()), stop)),
    ]
    for thread in threads:
        thread.start()
    time.sleep(min(30.0, minutes * 60 / 4))  # warm-up: model caches, DDS buffers, allocator pools
    samples = [(time.monotonic(), rss_mb())]
    while any(thread.is_alive() for thread in threads):
        time.sleep(10.0)
        samples.append((time.monotonic(), rss_mb()))
    times, values = np.array(samples).T
    slope = np.polyfit((times - times[0]) / 60.0, values, 1)[0] if len(samples) > 2 else float("nan")
    print(f"memory, both paths streaming for {minutes:g} min (RSS of graph + publishers):")
    print(f"  after warm-up {values[0]:.0f} MB, end {values[-1]:.0f} MB, max {values.max():.0f} MB, "
          f"trend {slope:+.1f} MB/min over {len(samples)} samples")
    print(f"  results meanwhile: pose {probe.results[POSE_NAMESPACE]}, camera {probe.results[CAMERA_NAMESPACE]}; "
          f"latency pose {percentiles_ms(probe.latencies[POSE_NAMESPACE])}; "
          f"camera {percentiles_ms(probe.latencies[CAMERA_NAMESPACE])}")


def parse_rates(text):
    return [float(value) for value in text.split(",")]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", type=Path, default=SHIPPED_CHECKPOINT, help="full checkpoint of both pipelines")
    parser.add_argument("--device", default="cpu", help="torch device of the pipelines and the estimator")
    parser.add_argument("--num-samples", type=int, default=20, help="forecast samples per result (K)")
    parser.add_argument("--camera-mode", choices=("composed", "process"), default="composed",
                        help="camera graph composed in this process (as in the demo) or one process per node; in "
                             "process mode the camera rate test is left out (bench/camera_path.py --camera-mode "
                             "process measures it)")
    parser.add_argument("--clip-stride", type=int, default=PipelineConfig.clip_stride, help="the pipelines' frames "
                        "between results (16: one result per clip, as before the streaming default)")
    parser.add_argument("--video", type=Path, default=DEFAULT_VIDEO, help="video file of the camera path's images")
    parser.add_argument("--latency-seconds", type=float, default=20.0, help="seconds per latency run")
    parser.add_argument("--latency-camera-rate", type=float, default=10.0, help="image rate (Hz) for the latency "
                        "runs (a rate the camera path sustains; above it the estimator skips images)")
    parser.add_argument("--rate-seconds", type=float, default=8.0, help="seconds per tested input rate")
    parser.add_argument("--pose-rates", type=parse_rates, default=parse_rates("30,60,120,240,480"),
                        help="comma-separated pose rates (Hz) of the sustained-rate test")
    parser.add_argument("--camera-rates", type=parse_rates, default=parse_rates("5,10,15,25,30,60"),
                        help="comma-separated image rates (Hz) of the sustained-rate test")
    parser.add_argument("--minutes", type=float, default=10.0, help="memory soak duration (0 = skip)")
    args = parser.parse_args(argv)
    if not args.checkpoint.is_file():
        print(f"error: checkpoint not found: {args.checkpoint} (see docs/training.md)", file=sys.stderr)
        return 2
    torch.set_num_threads(1)
    video = VideoSource(args.video, 1, max_seconds=4.0)
    synthetic = SyntheticActionSource(0, 2, 1)
    print(f"ghtt ROS benchmark: {args.checkpoint.name}, device {args.device}, K={args.num_samples}, "
          f"clip_stride {args.clip_stride}, camera graph {args.camera_mode}, "
          f"{os.cpu_count()} CPUs, video {video.path.name} {video.frames[0].bgr.shape[1]}x"
          f"{video.frames[0].bgr.shape[0]}, RSS at start {rss_mb():.0f} MB, load average "
          f"{' / '.join(f'{value:.2f}' for value in os.getloadavg())}", flush=True)
    graphs = start_graphs(args.checkpoint, args.device, args.num_samples, 120.0, camera_mode=args.camera_mode,
                          clip_stride=args.clip_stride)
    rclpy.init()
    node = rclpy.create_node("ghtt_bench_probe")
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    threading.Thread(target=executor.spin, daemon=True).start()
    try:
        probe = Probe(node)
        wait_for(lambda: node.count_subscribers(f"/{POSE_NAMESPACE}/hands") >= 1
                 and node.count_subscribers(f"/{CAMERA_NAMESPACE}/image") >= 1, 30.0)
        print(f"graph up, RSS {rss_mb():.0f} MB", flush=True)
        measure_latency(probe, graphs, video, synthetic, args.latency_seconds, args.latency_camera_rate)
        phases = iter(range(1000))
        print("sustained input rate without drops (each path alone):")
        pose = highest_passing(args.pose_rates, lambda r: pose_rate_passes(
            probe, graphs, synthetic, r, args.rate_seconds, next(phases)))
        camera = "not tested (camera graph in processes)" if args.camera_mode == "process" else highest_passing(
            args.camera_rates, lambda r: camera_rate_passes(probe, graphs, video, r, args.rate_seconds, next(phases)))
        print(f"  highest rate without drops: pose path {pose} Hz, camera path {camera} Hz (load average now "
              f"{os.getloadavg()[0]:.2f}; bench/camera_path.py: the camera path at 30 Hz stage by stage)", flush=True)
        if args.minutes > 0:
            measure_memory(probe, video, synthetic, args.minutes)
    finally:
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()
        for graph in graphs:
            graph.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
