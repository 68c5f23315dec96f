"""The demo's two inputs, as ready-to-publish ROS messages with source stamps (never wall time):

- VideoSource: a real video file -> sensor_msgs/Image (bgr8, as decoded) + CameraInfo per frame, stamped with the
  video's own frame times. The video has no calibration, so CameraInfo carries DEFAULT_HORIZONTAL_FOV_DEG intrinsics
  (square pixels, principal point at the image centre: `CameraIntrinsics.from_fov`, the estimator's default too).
- SyntheticActionSource: one recording of the synthetic two-hand action generator (fixed seed) seen from one camera
  view: the estimator-like noisy poses are published, the ground truth (poses and action labels) is kept to judge
  the outputs.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ghtt_core.data.sequence import HandSequence
from ghtt_core.data.synthetic.generator import GeneratorConfig, generate_recording, make_subjects
from ghtt_core.estimator.camera import DEFAULT_HORIZONTAL_FOV_DEG, CameraIntrinsics
from ghtt_ros.convert import TwoHandArrays, two_hand_pose_to_msg
from ghtt_ros.images import array_to_image, intrinsics_to_camera_info
from ghtt_ros.transforms import DEFAULT_OPTICAL_FRAME

_NS_PER_S = 1_000_000_000
# Recordings at this index and above are never part of a generated training set (their default size is 175).
DEMO_RECORDING_INDEX = 100_000


class SourceError(ValueError):
    """A demo input that cannot be produced (missing or unreadable video, bad options)."""


@dataclass
class VideoFrame:
    index: int
    stamp_ns: int
    bgr: np.ndarray  # (H, W, 3) uint8, as published


class VideoSource:
    """Frames of a video file (OpenCV), downscaled to at most `max_width` pixels wide (keeps images and the bag
    small; the intrinsics describe the published size)."""

    def __init__(self, path, start_stamp_ns, frame_id=DEFAULT_OPTICAL_FRAME, max_seconds=None, max_width=640):
        import cv2

        self.path = Path(path)
        if not self.path.is_file():
            raise SourceError(f"demo video not found: {self.path} (the real-hand fixtures live in "
                              f"../shared/fixtures/real_hands/videos/ next to the repository; pass --video PATH)")
        capture = cv2.VideoCapture(str(self.path))
        if not capture.isOpened():
            raise SourceError(f"cannot decode video {self.path} with OpenCV")
        self.fps = capture.get(cv2.CAP_PROP_FPS) or 30.0
        frames = []
        limit = None if max_seconds is None else int(round(max_seconds * self.fps))
        while limit is None or len(frames) < limit:
            ok, bgr = capture.read()
            if not ok:
                break
            frames.append(self._downscale(cv2, bgr, max_width))
        capture.release()
        if not frames:
            raise SourceError(f"video {self.path} has no decodable frames")
        self.frame_id = frame_id
        self.frames = [VideoFrame(i, start_stamp_ns + round(i * _NS_PER_S / self.fps), bgr)
                       for i, bgr in enumerate(frames)]
        height, width = frames[0].shape[:2]
        self.intrinsics = CameraIntrinsics.from_fov(width, height, DEFAULT_HORIZONTAL_FOV_DEG)

    @staticmethod
    def _downscale(cv2, bgr, max_width):
        height, width = bgr.shape[:2]
        if width <= max_width:
            return np.ascontiguousarray(bgr)
        size = (max_width, int(round(height * max_width / width)))
        return cv2.resize(bgr, size, interpolation=cv2.INTER_AREA)

    def messages(self, frame: VideoFrame):
        """-> (Image, CameraInfo) of one frame, both with the frame's stamp."""
        return (array_to_image(frame.bgr, "bgr8", frame.stamp_ns, self.frame_id),
                intrinsics_to_camera_info(self.intrinsics, frame.stamp_ns, self.frame_id))


class SyntheticActionSource:
    """One synthetic recording of `num_actions` chained actions (deterministic for a seed), from the `view` camera.

    The published pose of frame i carries the noisy estimated joints and, inside a labelled action, that action's
    object as object_label (the robot's task knowledge or an object detector would supply it)."""

    def __init__(self, seed, num_actions, start_stamp_ns, view="front", frame_id=DEFAULT_OPTICAL_FRAME):
        if num_actions < 1:
            raise SourceError(f"the synthetic sequence needs at least one action, got {num_actions}")
        config = GeneratorConfig(seed=seed, actions_per_recording=(num_actions, num_actions), named_views=(view,),
                                 random_views=0)
        subjects, split_of = make_subjects(config)
        subject = next(s for s in subjects if split_of[s.name] == "test")
        recording = generate_recording(config, DEMO_RECORDING_INDEX, subject, "test")
        self.sequence: HandSequence = recording.view(view)
        self.frame_id = frame_id
        self.fps = self.sequence.fps
        self.stamps_ns = start_stamp_ns + np.round(np.arange(self.sequence.num_frames) * _NS_PER_S / self.fps
                                                   ).astype(np.int64)
        self._labels = self._frame_labels()

    def _frame_labels(self):
        labels = [None] * self.sequence.num_frames
        for segment in self.sequence.actions:
            labels[segment.start:segment.end] = [segment] * (segment.end - segment.start)
        return labels

    @property
    def num_frames(self):
        return self.sequence.num_frames

    def action_at(self, index):
        """The ground-truth ActionSegment at frame index, or None between actions."""
        return self._labels[index]

    def index_of(self, stamp_ns):
        index = int(np.searchsorted(self.stamps_ns, stamp_ns))
        if index >= self.num_frames or self.stamps_ns[index] != stamp_ns:
            raise KeyError(f"stamp {stamp_ns} is not a frame of the synthetic sequence")
        return index

    def message(self, index):
        presence = self.sequence.estimated_presence[index]
        joints = np.where(presence[:, None, None], self.sequence.estimated_joints[index], np.nan).astype(np.float32)
        segment = self._labels[index]
        return two_hand_pose_to_msg(TwoHandArrays(
            stamp_ns=int(self.stamps_ns[index]), frame_id=self.frame_id, joints=joints, presence=presence,
            confidence=presence.astype(np.float32), object_label=segment.noun if segment else ""))
