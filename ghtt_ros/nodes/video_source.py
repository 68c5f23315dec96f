"""video_source node: a video file, a folder of images or a V4L2 webcam (OpenCV) -> `image` (sensor_msgs/Image, rgb8)
+ `camera_info`, so the camera graph runs on a machine with only the PyPI wheels (`ghtt-ros run config/webcam.yaml`).

Each image is stamped with the node's clock when it is read (a camera driver's acquisition time) and carries
`frame_id`. Files and folders are played at `fps` (their own rate by default); a camera delivers at its own rate.
The CameraInfo describes an uncalibrated pinhole camera with `horizontal_fov_deg` (square pixels, principal point at
the image centre), the same default the hand_estimator assumes; a folder with images of different sizes gets a
CameraInfo per size. No torch.
"""

import threading
import time

from ghtt_core.estimator.camera import CameraIntrinsics
from ghtt_core.estimator.frame_source import FrameSource, is_camera
from ghtt_ros.images import array_to_image, intrinsics_to_camera_info
from ghtt_ros.nodes.base import GhttNode, run_node
from ghtt_ros.nodes.parameters import ParameterSpec
from ghtt_ros.nodes.rate_limit import StampRateLimiter
from ghtt_ros.transforms import DEFAULT_OPTICAL_FRAME
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, Image

FOLDER_FPS = 30.0

VIDEO_SOURCE_PARAMETERS = (
    ParameterSpec("source", "0", "What to publish: a camera (V4L2 device index such as 0, or a path such as "
                  "/dev/video0), a video file, a folder of images or one image."),
    ParameterSpec("frame_id", DEFAULT_OPTICAL_FRAME, "header.frame_id of the images and camera infos."),
    ParameterSpec("fps", 0.0, "Playback rate of files and folders (0 = the video's own rate, 30 for images); cameras "
                  "deliver at their own rate.", 0.0, 1000.0),
    ParameterSpec("max_rate_hz", 0.0, "Publish at most this many images per second, by stamp (0 = every image).",
                  0.0, 1000.0, runtime=True),
    ParameterSpec("loop", False, "Start a file or folder again at its end (otherwise the node stops publishing)."),
    ParameterSpec("horizontal_fov_deg", 60.0, "Field of view of the published CameraInfo (the camera is not "
                  "calibrated).", 1.0, 179.0),
    ParameterSpec("camera_width", 0, "Capture width asked of a camera (0 = its default).", 0, 10000),
    ParameterSpec("camera_height", 0, "Capture height asked of a camera (0 = its default).", 0, 10000),
)


class VideoSourceNode(GhttNode):
    PARAMETERS = VIDEO_SOURCE_PARAMETERS

    def __init__(self, node_name="video_source", **node_options):
        super().__init__(node_name, **node_options)
        self._image = None
        self._camera_info = None
        self._frames = None
        self._thread = None
        self._running = threading.Event()
        self._rate_limiter = None
        self._intrinsics = None
        self.finished = False  # a file or folder reached its end (without loop)

    def configure(self, params):
        source = params["source"]
        if not is_camera(source):
            FrameSource(source).close()  # a missing path or an unsupported file fails configure, with the reason
        self._image = self.create_lifecycle_publisher(Image, "image", qos_profile_sensor_data)
        self._camera_info = self.create_lifecycle_publisher(CameraInfo, "camera_info", qos_profile_sensor_data)

    def activate(self):
        params = self.params
        self._frames = FrameSource(params["source"], params["loop"], params["camera_width"], params["camera_height"])
        self._rate_limiter = StampRateLimiter(params["max_rate_hz"])
        self.finished = False
        self._running.set()
        self._thread = threading.Thread(target=self._publish_frames, name=f"{self.get_name()}-reader", daemon=True)
        self._thread.start()
        self.get_logger().info(f"publishing {self._frames.kind} {params['source']!r} as {params['frame_id']!r}")

    def deactivate(self):
        self._running.clear()
        if self._thread is not None:
            self._thread.join(5.0)
            self._thread = None
        if self._frames is not None:
            self._frames.close()
            self._frames = None

    def cleanup(self):
        for publisher in (self._image, self._camera_info):
            if publisher is not None:
                self.destroy_lifecycle_publisher(publisher)
        self._image = self._camera_info = None

    def apply_runtime_parameter(self, name, value):
        if name == "max_rate_hz" and self._rate_limiter is not None:
            self._rate_limiter.max_rate_hz = value

    def _period_s(self):
        if self._frames.kind == "camera":
            return 0.0  # read() waits for the camera
        return 1.0 / (self.params["fps"] or self._frames.fps or FOLDER_FPS)

    def _publish_frames(self):
        period_s = self._period_s()
        due = time.monotonic()
        while self._running.is_set():
            try:
                frame = self._frames.read()
            except (OSError, ValueError) as error:  # a camera unplugged, an unreadable image in a folder
                self.drop("read_failed", str(error))
                time.sleep(0.5)
                continue
            if frame is None:
                self.finished = True
                self.get_logger().info(f"end of {self.params['source']!r}: {self._frames.frames_read} images")
                return
            # Paced on a schedule; after a stall (a slow disk) it restarts from now instead of rushing to catch up.
            due = max(due + period_s, time.monotonic() - period_s)
            time.sleep(max(0.0, due - time.monotonic()))
            self._publish(frame[1])

    def _publish(self, rgb):
        started = time.monotonic()
        if not self.accept_input():
            return
        stamp_ns = self.now_ns()
        if not self._rate_limiter.allow(stamp_ns):
            self.stats.on_event("rate_limited")
            return
        height, width = rgb.shape[:2]
        if self._intrinsics is None or (self._intrinsics.width, self._intrinsics.height) != (width, height):
            self._intrinsics = CameraIntrinsics.from_fov(width, height, self.params["horizontal_fov_deg"])
        frame_id = self.params["frame_id"]
        self._image.publish(array_to_image(rgb, "rgb8", stamp_ns, frame_id))
        self._camera_info.publish(intrinsics_to_camera_info(self._intrinsics, stamp_ns, frame_id))
        self.record_published(stamp_ns, started)


def main(args=None):
    run_node(VideoSourceNode, args)


if __name__ == "__main__":
    main()
