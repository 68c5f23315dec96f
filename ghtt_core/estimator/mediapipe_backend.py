"""Off-the-shelf hand estimator: MediaPipe Hands (legacy `mp.solutions.hands`, models inside the wheel, offline).

MediaPipe gives per hand 21 landmarks in normalised image coordinates, 21 "world" landmarks in metres around the
hand's centre (camera orientation, not camera position) and a handedness label. The hand is placed in the camera
frame by solving the translation that makes its world landmarks project onto its 2D landmarks (or from depth).

Handedness trap: the legacy API assumes a mirrored selfie image, so on an ordinary (unmirrored) camera image its
"Left" is the person's RIGHT hand. Checked on the fixture photo unsplash/brooke-cagle-*.jpg (a person facing the
camera; the hand whose arm comes from the image's left, i.e. her right arm, is labelled "Left"). Set
`image_is_mirrored=True` only for images that really are mirrored (a selfie preview).
"""

from dataclasses import dataclass, field

import numpy as np

from ghtt_core.estimator.camera import DEFAULT_HORIZONTAL_FOV_DEG, CameraIntrinsics, place_hand, sample_depth
from ghtt_core.estimator.frame_hands import FrameHands
from ghtt_core.estimator.image_input import as_rgb_image
from ghtt_core.estimator.tracking import HandDetection, SideTracker, SideTrackerConfig
from ghtt_core.skeleton import NUM_HANDS, NUM_JOINTS


@dataclass(frozen=True)
class MediaPipeConfig:
    # True for single photos (detect every call); False for video (MediaPipe tracks between calls, ~2x faster).
    static_image_mode: bool = False
    # Video: while a hand is tracked but fewer than max_num_hands, look for new hands on every Nth image only
    # (1 = every image, MediaPipe's own rule, which costs the palm detector on every one-hand image; mediapipe_graph).
    palm_detection_interval: int = 5
    max_num_hands: int = 2
    model_complexity: int = 1  # 0 = lite, 1 = full landmark model
    min_detection_confidence: float = 0.5
    min_tracking_confidence: float = 0.5
    image_is_mirrored: bool = False
    # Used when estimate() gets no intrinsics.
    default_horizontal_fov_deg: float = DEFAULT_HORIZONTAL_FOV_DEG
    tracker: SideTrackerConfig = field(default_factory=SideTrackerConfig)

    def __post_init__(self):
        if not 1 <= self.max_num_hands <= NUM_HANDS:
            raise ValueError(f"max_num_hands must be 1 or 2, got {self.max_num_hands}")
        if self.palm_detection_interval < 1:
            raise ValueError(f"palm_detection_interval must be >= 1, got {self.palm_detection_interval}")
        if self.model_complexity not in (0, 1):
            raise ValueError(f"model_complexity must be 0 or 1, got {self.model_complexity}")


@dataclass
class _MediaPipeHand:
    keypoints_2d: np.ndarray  # (21, 2) px
    world_landmarks: np.ndarray  # (21, 3) m, hand-centred


class MediaPipeHandEstimator:
    """HandEstimator backed by MediaPipe Hands. Keep one instance per camera stream (MediaPipe tracks internally)."""

    def __init__(self, config=None):
        from ghtt_core.estimator.mediapipe_graph import PacedHands

        self.config = config or MediaPipeConfig()
        self._hands = PacedHands(
            static_image_mode=self.config.static_image_mode,
            max_num_hands=self.config.max_num_hands,
            model_complexity=self.config.model_complexity,
            min_detection_confidence=self.config.min_detection_confidence,
            min_tracking_confidence=self.config.min_tracking_confidence,
            detection_interval=self.config.palm_detection_interval,
        )
        self._tracker = SideTracker(self.config.tracker)

    def close(self):
        self._hands.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def reset(self):
        """Forget tracking: MediaPipe's internal tracking and our side tracks."""
        self._hands.reset()
        self._tracker.reset()

    def estimate(self, image_rgb, intrinsics=None, depth=None, stamp=None):
        image = as_rgb_image(image_rgb)
        height, width = image.shape[:2]
        intrinsics = self._resolve_intrinsics(intrinsics, width, height)
        if depth is not None and np.shape(depth) != (height, width):
            raise ValueError(f"depth image shape {np.shape(depth)} does not match the image ({height}, {width})")
        if self.config.static_image_mode:
            self._tracker.reset()
        image.flags.writeable = False  # lets MediaPipe use the buffer without copying
        result = self._hands.process(image)
        detections = self._detections(result, width, height)
        frame = FrameHands.empty(intrinsics, stamp)
        for assigned in self._tracker.update(detections):
            hand = assigned.detection.payload
            measured = None if depth is None else sample_depth(depth, hand.keypoints_2d)
            translation, depth_rejected = place_hand(hand.world_landmarks, hand.keypoints_2d, intrinsics, measured)
            frame.depth_rejected += int(depth_rejected)
            frame.joints[assigned.side] = hand.world_landmarks + translation
            frame.keypoints_2d[assigned.side] = hand.keypoints_2d
            frame.presence[assigned.side] = True
            frame.confidence[assigned.side] = assigned.detection.score
        return frame

    def _resolve_intrinsics(self, intrinsics, width, height):
        if intrinsics is None:
            return CameraIntrinsics.from_fov(width, height, self.config.default_horizontal_fov_deg)
        if (intrinsics.width, intrinsics.height) != (width, height):
            raise ValueError(
                f"intrinsics are for a {intrinsics.width}x{intrinsics.height} image but the image is {width}x{height};"
                " use CameraIntrinsics.scaled() after resizing"
            )
        return intrinsics

    def _detections(self, result, width, height):
        if not result.multi_hand_landmarks:
            return []
        detections = []
        for landmarks, world, handedness in zip(
            result.multi_hand_landmarks, result.multi_hand_world_landmarks, result.multi_handedness
        ):
            label = handedness.classification[0]
            # The legacy classifier answers for a mirrored image; its "Right" means our left unless mirrored.
            probability_label_right = label.score if label.label == "Right" else 1.0 - label.score
            probability_right = (
                probability_label_right if self.config.image_is_mirrored else 1.0 - probability_label_right
            )
            keypoints = np.array([[p.x * width, p.y * height] for p in landmarks.landmark])
            world_landmarks = np.array([[p.x, p.y, p.z] for p in world.landmark])
            if keypoints.shape != (NUM_JOINTS, 2):
                raise ValueError(f"MediaPipe returned {len(keypoints)} landmarks, expected {NUM_JOINTS}")
            detections.append(
                HandDetection(
                    keypoints_2d=keypoints,
                    probability_right=probability_right,
                    # The legacy API exposes no per-hand presence score; hands below min_detection_confidence are
                    # already dropped, so the handedness score is the best available confidence.
                    score=float(label.score),
                    payload=_MediaPipeHand(keypoints, world_landmarks),
                )
            )
        return detections
