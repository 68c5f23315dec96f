"""The pose path's overload policy, measured: poses faster than the model at 30 / 60 / 120 Hz, on a quiet machine
and with another process burning one core.

The pose-input graph (ghtt_pipeline + visualizer, shipped model, K = 20, cpu) runs composed in this process; this
process publishes synthetic two-hand poses stamped with the wall clock at each rate for --seconds and listens to the
outputs. Policy under test (docs/ros.md, "Overload"): every pose enters the history (poses are discarded only when
the bounded queue overflows, which skipping stale results should prevent), the history is never reset by the load,
and a result whose successor's poses are all waiting already is skipped, so the result rate degrades smoothly and
latency stays bounded. Per row: poses sent / received / skipped, history resets, results computed / skipped,
results per second, prediction latency (pose stamp of the clip's last frame -> MotionPrediction delivered), and the
load average at the row's start.

    source scripts/ros_env.sh && .venv/bin/python bench/pose_overload.py [--seconds 30] [--rates 30,60,120]
"""

import argparse
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import rclpy
import torch
from rclpy.executors import SingleThreadedExecutor

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ros_pipeline import Probe, percentiles_ms, stream, wait_for  # noqa: E402

from ghtt_ros.demo.run import POSE_NAMESPACE  # noqa: E402
from ghtt_ros.demo.sources import SyntheticActionSource  # noqa: E402
from ghtt_ros.graph.runner import GraphRunner  # noqa: E402
from ghtt_ros.graph.spec import config_dir  # noqa: E402
from ghtt_ros.nodes.pipeline import SHIPPED_CHECKPOINT  # noqa: E402

BURN_ONE_CORE = "while True: pass"


def row(probe, pipeline_node, synthetic, rate_hz, seconds, label):
    stats = pipeline_node.pipeline.stats
    # One lead-in pose: the pause since the previous row resets the history (a gap > max_gap_s), not the load.
    received = pipeline_node.stats.received
    probe.publish_pose(synthetic, 0, time.time_ns())
    wait_for(lambda: pipeline_node.stats.received > received and pipeline_node.worker.pending == 0, 10.0)
    before = dict(received=pipeline_node.stats.received, skipped=pipeline_node.stats.skipped, resets=stats.resets,
                  results=stats.results, results_skipped=stats.results_skipped)
    load = os.getloadavg()[0]
    probe.reset()
    sent = stream(seconds, rate_hz, lambda i: probe.publish_pose(synthetic, i, time.time_ns()))
    wait_for(lambda: pipeline_node.stats.received - before["received"] >= sent, 10.0)
    wait_for(lambda: pipeline_node.worker.pending == 0, 30.0)
    time.sleep(1.0)
    results = stats.results - before["results"]
    print(f"| {label} | {load:.2f} | {rate_hz:.0f} | {sent} | {pipeline_node.stats.received - before['received']} | "
          f"{pipeline_node.stats.skipped - before['skipped']} | {stats.resets - before['resets']} | {results} | "
          f"{stats.results_skipped - before['results_skipped']} | {results / seconds:.2f} | "
          f"{percentiles_ms(probe.latencies[POSE_NAMESPACE])} |", flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="streaming time per row")
    parser.add_argument("--rates", default="30,60,120", help="pose rates in Hz, comma-separated")
    parser.add_argument("--checkpoint", type=Path, default=SHIPPED_CHECKPOINT)
    parser.add_argument("--num-samples", type=int, default=20)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    rates = [float(rate) for rate in args.rates.split(",")]
    synthetic = SyntheticActionSource(0, 4, 1)
    overrides = {"ghtt_pipeline": {"device": "cpu", "checkpoint": str(args.checkpoint),
                                   "num_samples": args.num_samples}}
    graph = GraphRunner(config_dir() / "pose_input.yaml", namespace=POSE_NAMESPACE, overrides=overrides).start()
    rclpy.init()
    node = rclpy.create_node("ghtt_overload_probe")
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    threading.Thread(target=executor.spin, daemon=True).start()
    burner = None
    try:
        if not graph.wait_until_active(120):
            raise RuntimeError(f"the graph did not start: {graph.lifecycle_states()}")
        probe = Probe(node)
        wait_for(lambda: node.count_subscribers(f"/{POSE_NAMESPACE}/hands") >= 1, 30.0)
        pipeline_node = graph.nodes["ghtt_pipeline"]
        print(f"pose path overload: {args.checkpoint.name}, K={args.num_samples}, cpu, {os.cpu_count()} CPUs, "
              f"{args.seconds:g} s per row, pose queue {pipeline_node.params['pose_queue_size']}")
        print("| machine | load at start | rate Hz | poses sent | received | skipped (queue full) | history resets | "
              "results | results skipped (stale) | results / s | prediction latency |")
        print("|---|---|---|---|---|---|---|---|---|---|---|")
        for rate in rates:
            row(probe, pipeline_node, synthetic, rate, args.seconds, "quiet")
        burner = subprocess.Popen([sys.executable, "-c", BURN_ONE_CORE])
        time.sleep(5.0)
        for rate in rates:
            row(probe, pipeline_node, synthetic, rate, args.seconds, "one core burnt by another process")
    finally:
        if burner is not None:
            burner.kill()
            burner.wait()
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()
        graph.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
