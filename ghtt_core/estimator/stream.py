"""The per-image step of the camera path: one stamped image (+ the camera's calibration, + optional depth) -> two hands.

`ImageStreamEstimator` holds what a camera stream needs between images (the estimator with its tracking, the last
stamp) and applies the rules of the `hand_estimator` node: images stamped 0 are dropped, a stamp that does not
increase resets the tracking, the calibration is used when valid (scaled to the image size) and the default field of
view otherwise, a depth image is used only when its stamp matches and it is aligned to the image. The node
(ghtt_ros.nodes.hand_estimator) calls it for every image it receives, and the offline mode of the bag evaluation
(ghtt_ros.bag.evaluation) calls it for every image of a bag, so both compute the same thing.

Inputs that may fail to decode (the image, the calibration, the depth image) can be given as zero-argument callables
that raise ValueError: they are then decoded here, in the node's order, and a failure becomes a drop or an event of
the returned FrameEstimate instead of an exception. ROS-free: the callers convert their messages.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ghtt_core.estimator.camera import DEFAULT_HORIZONTAL_FOV_DEG, DEPTH_AGREEMENT_FACTOR, CameraIntrinsics
from ghtt_core.estimator.frame_hands import FrameHands

BACKENDS = ("mediapipe", "resnet")


@dataclass(frozen=True)
class StreamSettings:
    """How images become estimator inputs (the hand_estimator node parameters of the same names)."""

    default_horizontal_fov_deg: float = DEFAULT_HORIZONTAL_FOV_DEG  # used while no valid calibration is known
    use_camera_info: bool = True  # use the calibration given with the image when it is valid
    use_depth: bool = False
    depth_max_skew_s: float = 0.02  # a depth image is used when its stamp is at most this far from the image's


@dataclass
class FrameEstimate:
    """What one image gave. hands: None when the image was dropped. dropped: [(reason, detail)] of rejected inputs
    (the image itself, or an unusable depth image while the image is still estimated); events: [(reason, detail)] of
    noteworthy but accepted situations (stamp_backwards, camera_info_invalid, depth_unmatched, depth_invalid: the
    depth disagreed with the monocular placement of a hand, which was placed without it)."""

    stamp_ns: int
    hands: FrameHands | None = None
    dropped: list = field(default_factory=list)
    events: list = field(default_factory=list)


def _value(source):
    return source() if callable(source) else source


def build_hand_estimator(backend="mediapipe", estimator_checkpoint="", model_complexity=1,
                         min_detection_confidence=0.5, min_tracking_confidence=0.5, image_is_mirrored=False,
                         default_horizontal_fov_deg=DEFAULT_HORIZONTAL_FOV_DEG, palm_detection_interval=5,
                         device="cpu"):
    """The HandEstimator of a backend: "mediapipe" (off the shelf, models in the wheel) or "resnet" (a trained ghtt
    estimator checkpoint). Both are deterministic for the same images in the same order (MediaPipe's CPU graph;
    the ResNet with a fixed number of torch threads)."""
    if backend not in BACKENDS:
        raise ValueError(f"estimator backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "resnet":
        if not estimator_checkpoint:
            raise ValueError("backend resnet needs the estimator_checkpoint parameter")
        from ghtt_core.estimator.resnet_estimator import ResNetHandEstimator

        estimator = ResNetHandEstimator.from_checkpoint(estimator_checkpoint, device=device)
        estimator.default_horizontal_fov_deg = default_horizontal_fov_deg
        return estimator
    from ghtt_core.estimator.mediapipe_backend import MediaPipeConfig, MediaPipeHandEstimator

    return MediaPipeHandEstimator(MediaPipeConfig(
        model_complexity=model_complexity,
        min_detection_confidence=min_detection_confidence,
        min_tracking_confidence=min_tracking_confidence,
        image_is_mirrored=image_is_mirrored,
        default_horizontal_fov_deg=default_horizontal_fov_deg,
        palm_detection_interval=palm_detection_interval,
    ))


_BUILD_KEYS = ("backend", "estimator_checkpoint", "model_complexity", "min_detection_confidence",
               "min_tracking_confidence", "image_is_mirrored", "default_horizontal_fov_deg", "palm_detection_interval")
_SETTINGS_KEYS = ("default_horizontal_fov_deg", "use_camera_info", "use_depth", "depth_max_skew_s")


class ImageStreamEstimator:
    """One camera stream: images in stamp order -> FrameEstimate each (see the module docstring)."""

    def __init__(self, estimator, settings: StreamSettings | None = None):
        self.estimator = estimator
        self.settings = settings or StreamSettings()
        self._last_stamp_ns = None

    @classmethod
    def from_parameters(cls, params, device="cpu"):
        """From the hand_estimator node's parameter values ({name: value}; missing names take the defaults)."""
        built = build_hand_estimator(**{key: params[key] for key in _BUILD_KEYS if key in params}, device=device)
        return cls(built, StreamSettings(**{key: params[key] for key in _SETTINGS_KEYS if key in params}))

    def reset(self):
        """Forget the stream (tracking and the last stamp)."""
        self.estimator.reset()
        self._last_stamp_ns = None

    def close(self):
        if hasattr(self.estimator, "close"):
            self.estimator.close()

    def process(self, stamp_ns, image, calibration=None, depth=None, depth_stamp_ns=None) -> FrameEstimate:
        """stamp_ns: the image's stamp. image: RGB uint8 (H, W, 3), or a callable returning it. calibration: the
        camera's CameraIntrinsics (for any image size), None, or a callable returning it. depth: float32 metres
        (H, W) (NaN invalid) aligned to the image, or a callable returning it, stamped depth_stamp_ns; None: no depth.
        Callables are called only when needed and may raise ValueError (-> a drop or an event)."""
        stamp_ns = int(stamp_ns)
        result = FrameEstimate(stamp_ns)
        if stamp_ns <= 0:
            reason = "zero_stamp" if stamp_ns == 0 else "negative_stamp"
            result.dropped.append((reason, f"image stamped {stamp_ns} ns (camera driver does not stamp its images?)"))
            return result
        try:
            rgb = _value(image)
        except ValueError as error:
            result.dropped.append(("bad_image", str(error)))
            return result
        if self._last_stamp_ns is not None and stamp_ns <= self._last_stamp_ns:
            # A replay restarted or the stream jumped back: forget tracking so hands are detected afresh.
            result.events.append(("stamp_backwards", "image stamp did not increase: tracking reset"))
            self.estimator.reset()
        self._last_stamp_ns = stamp_ns
        intrinsics = self._intrinsics(rgb.shape[1], rgb.shape[0], calibration, result)
        metres = self._matching_depth(stamp_ns, rgb.shape, depth, depth_stamp_ns, result)
        try:
            result.hands = self.estimator.estimate(rgb, intrinsics=intrinsics, depth=metres, stamp=stamp_ns)
        except ValueError as error:  # e.g. an image too small to hold a hand
            result.dropped.append(("estimation_failed", str(error)))
            return result
        if result.hands.depth_rejected:
            result.events.append(("depth_invalid", f"depth disagrees with the monocular placement of "
                                                   f"{result.hands.depth_rejected} hand(s) by more than a factor "
                                                   f"{DEPTH_AGREEMENT_FACTOR:g}: placed without depth"))
        return result

    def _intrinsics(self, width, height, calibration, result):
        """The camera's calibration when known and valid, else the default field of view (as an event)."""
        fallback = self.settings.default_horizontal_fov_deg
        if not self.settings.use_camera_info or calibration is None:
            return CameraIntrinsics.from_fov(width, height, fallback)
        try:
            intrinsics = _value(calibration)
        except ValueError as error:
            result.events.append(("camera_info_invalid", f"{error}: using the default field of view"))
            return CameraIntrinsics.from_fov(width, height, fallback)
        if intrinsics is None:
            return CameraIntrinsics.from_fov(width, height, fallback)
        if (intrinsics.width, intrinsics.height) != (width, height):
            return intrinsics.scaled(width, height)
        return intrinsics

    def _matching_depth(self, stamp_ns, image_shape, depth, depth_stamp_ns, result):
        if not self.settings.use_depth or depth is None:
            return None
        if depth_stamp_ns is None or abs(int(depth_stamp_ns) - stamp_ns) > self.settings.depth_max_skew_s * 1e9:
            result.events.append(("depth_unmatched", "no depth image close enough to the image's stamp"))
            return None
        try:
            metres = _value(depth)
        except ValueError as error:
            result.dropped.append(("bad_depth", str(error)))
            return None
        if np.shape(metres) != tuple(image_shape[:2]):
            result.dropped.append(("bad_depth", f"depth {np.shape(metres)} is not aligned to the image "
                                                f"{tuple(image_shape[:2])}"))
            return None
        return metres
