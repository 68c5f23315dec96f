"""Which camera image sizes reach the hand_estimator over DDS, and how fast, with a given Fast DDS profile.

    source scripts/ros_env.sh && .venv/bin/python bench/image_transport.py [--profile config/fastdds_4k.xml]
        [--through-estimator]

A publisher process (the "camera") sends the fixture photo of two hands, resized to each size, as bgr8 at 5 Hz with
sensor-data QoS (best effort, depth 1, as the hand_estimator subscribes) plus a matching CameraInfo. Without
--through-estimator this process subscribes to the images and reports the images delivered out of those sent and the
delivery latency (receive time - stamp, same clock: Python conversion + serialisation + transport) p50 / max. With it,
a hand_estimator node process (MediaPipe, cpu) receives them and this process reports the TwoHandPose outputs and the
stamp-to-output latency p50 / max. Every process uses the profile; the machine load at the start is printed.
"""

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
PHOTO = REPO / ".." / "shared" / "fixtures" / "real_hands" / "images" / "unsplash" / \
    "brooke-cagle-mt2fyrdXxzk-unsplash.jpg"
SIZES = ((640, 480), (1280, 720), (1920, 1080), (2560, 1440), (2688, 1512), (3840, 2160), (4000, 3000))
RATE_HZ = 5

PUBLISHER = """
import sys, time
import cv2
import numpy as np
import rclpy
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, Image
from ghtt_core.estimator.camera import CameraIntrinsics
from ghtt_ros.images import array_to_image, intrinsics_to_camera_info
photo, width, height, count, rate = sys.argv[1], *(int(v) for v in sys.argv[2:6])
rclpy.init()
node = rclpy.create_node("bench_camera")
images = node.create_publisher(Image, "/bench/image", qos_profile_sensor_data)
infos = node.create_publisher(CameraInfo, "/bench/camera_info", qos_profile_sensor_data)
pixels = cv2.resize(cv2.imread(photo), (width, height), interpolation=cv2.INTER_AREA)
intrinsics = CameraIntrinsics.from_fov(width, height)
deadline = time.monotonic() + 30
while images.get_subscription_count() == 0 and time.monotonic() < deadline:
    rclpy.spin_once(node, timeout_sec=0.05)
time.sleep(1.0)  # matched both ways
for i in range(count):
    stamp = node.get_clock().now().nanoseconds
    infos.publish(intrinsics_to_camera_info(intrinsics, stamp, "camera"))
    images.publish(array_to_image(pixels, "bgr8", stamp, "camera"))
    time.sleep(1.0 / rate)
time.sleep(2.0)
"""


def measure(width, height, count, env, topic, msg_type):
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data

    from ghtt_ros.convert import stamp_to_ns

    context = rclpy.Context()
    rclpy.init(context=context)
    node = rclpy.create_node("bench_image_subscriber", context=context)
    latencies = []
    qos = qos_profile_sensor_data if topic == "/bench/image" else QoSProfile(depth=100,
                                                                            reliability=ReliabilityPolicy.RELIABLE)
    node.create_subscription(msg_type, topic, lambda msg: latencies.append(
        (node.get_clock().now().nanoseconds - stamp_to_ns(msg.header.stamp)) / 1e6), qos)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    publisher = subprocess.Popen([sys.executable, "-c", PUBLISHER, str(PHOTO), str(width), str(height), str(count),
                                  str(RATE_HZ)], env=env)
    try:
        while publisher.poll() is None:
            executor.spin_once(timeout_sec=0.05)
    finally:
        publisher.wait()
        executor.shutdown()
        node.destroy_node()
        context.try_shutdown()
    return latencies


def start_estimator(env):
    command = [sys.executable, "-m", "ghtt_ros.nodes.hand_estimator", "--ros-args", "-r", "image:=/bench/image",
               "-r", "camera_info:=/bench/camera_info", "-r", "hands:=/bench/hands", "-p", "device:=cpu"]
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--profile", default=str(REPO / "config" / "fastdds_large_messages.xml"),
                        help="Fast DDS XML profile for every process")
    parser.add_argument("--count", type=int, default=20, help="images sent per size")
    parser.add_argument("--sizes", nargs="*", default=[f"{w}x{h}" for w, h in SIZES], help="WIDTHxHEIGHT")
    parser.add_argument("--through-estimator", action="store_true",
                        help="measure hand_estimator outputs instead of delivered images")
    args = parser.parse_args()
    os.environ["FASTDDS_DEFAULT_PROFILES_FILE"] = str(Path(args.profile).resolve())  # read once per process
    env = dict(os.environ, PYTHONPATH=str(REPO))
    from sensor_msgs.msg import Image

    from ghtt.msg import TwoHandPose

    estimator = start_estimator(env) if args.through_estimator else None
    topic, msg_type = ("/bench/hands", TwoHandPose) if estimator else ("/bench/image", Image)
    print(f"profile {args.profile}; load average at start {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores; "
          f"measured at {topic}")
    print(f"| image (bgr8) | MB | {'hand poses out' if estimator else 'delivered'} | latency p50 / max (ms) |")
    print("|---|---|---|---|")
    try:
        if estimator:
            time.sleep(10)  # MediaPipe loads
        for size in args.sizes:
            width, height = (int(v) for v in size.split("x"))
            latencies = measure(width, height, args.count, env, topic, msg_type)
            figures = f"{np.percentile(latencies, 50):.0f} / {max(latencies):.0f}" if latencies else "-"
            print(f"| {width}x{height} | {width * height * 3 / 1e6:.1f} | {len(latencies)} of {args.count} | "
                  f"{figures} |", flush=True)
    finally:
        if estimator:
            estimator.send_signal(2)
            estimator.wait(20)


if __name__ == "__main__":
    main()
