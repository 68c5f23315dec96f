"""Temporal consistency of hand identities and sides over a video.

Per-frame handedness from a detector flickers (a fist seen from the side looks the same for both hands) and two
detections can both claim the same side. Each physical hand is followed as a track (matched by 2D proximity between
frames); a track accumulates handedness evidence as decayed log-odds, and the sides of the tracks seen in a frame are
chosen jointly so that two hands never share a side.
"""

from dataclasses import dataclass
import itertools
import math

import numpy as np

from ghtt_core.skeleton import LEFT, RIGHT


@dataclass(frozen=True)
class SideTrackerConfig:
    # A detection continues a track when its 2D centre moved less than this many hand sizes since the track was seen.
    match_distance_hand_sizes: float = 1.5
    # A track is forgotten after this many frames without a detection.
    max_missed_frames: int = 10
    # Weight of earlier evidence per frame; < 1 lets a track recover from a wrong first impression.
    evidence_decay: float = 0.9
    # Per-frame handedness probabilities are clipped to this log-odds magnitude so one confident error cannot win.
    max_frame_log_odds: float = 3.0
    # Two detections closer than this (in hand sizes) are the same hand found twice; the weaker one is dropped.
    duplicate_distance_hand_sizes: float = 0.3

    def __post_init__(self):
        if not 0.0 <= self.evidence_decay <= 1.0:
            raise ValueError(f"evidence_decay must be in [0, 1], got {self.evidence_decay}")
        if self.max_missed_frames < 0:
            raise ValueError(f"max_missed_frames must be >= 0, got {self.max_missed_frames}")


@dataclass
class HandDetection:
    """One detected hand before side assignment.

    keypoints_2d: (21, 2) pixels. probability_right: the detector's P(this is the person's right hand).
    score: detection confidence in [0, 1]. payload: whatever the backend wants back with the assignment.
    """

    keypoints_2d: np.ndarray
    probability_right: float
    score: float
    payload: object = None

    @property
    def centre(self):
        return self.keypoints_2d.mean(axis=0)

    @property
    def size(self):
        """Hand size in pixels: the diagonal of its keypoint bounding box (never 0)."""
        extent = self.keypoints_2d.max(axis=0) - self.keypoints_2d.min(axis=0)
        return max(float(np.hypot(*extent)), 1.0)


@dataclass
class _Track:
    track_id: int
    centre: np.ndarray
    size: float
    last_frame: int
    right_log_odds: float


@dataclass(frozen=True)
class AssignedHand:
    side: int  # LEFT or RIGHT
    track_id: int
    detection: HandDetection


def _log_odds(probability, limit):
    p = min(max(probability, 1e-6), 1.0 - 1e-6)
    return float(np.clip(math.log(p / (1.0 - p)), -limit, limit))


class SideTracker:
    """Assigns detections to sides, frame after frame. One tracker per video stream; call reset() between streams."""

    def __init__(self, config=None):
        self.config = config or SideTrackerConfig()
        self.reset()

    def reset(self):
        self._tracks = []
        self._frame = -1
        self._next_id = 0

    def update(self, detections):
        """Detections of the next frame -> at most one AssignedHand per side."""
        self._frame += 1
        cfg = self.config
        self._tracks = [t for t in self._tracks if self._frame - t.last_frame <= cfg.max_missed_frames + 1]
        detections = self._drop_duplicates(detections)
        matched = self._match(detections)
        frame_tracks = []
        for detection, track in zip(detections, matched):
            evidence = _log_odds(detection.probability_right, cfg.max_frame_log_odds)
            if track is None:
                track = _Track(self._next_id, detection.centre, detection.size, self._frame, evidence)
                self._next_id += 1
                self._tracks.append(track)
            else:
                track.centre, track.size, track.last_frame = detection.centre, detection.size, self._frame
                track.right_log_odds = cfg.evidence_decay * track.right_log_odds + evidence
            frame_tracks.append((track, detection))
        return self._assign_sides(frame_tracks)

    def _drop_duplicates(self, detections):
        kept = []
        for detection in sorted(detections, key=lambda d: -d.score):
            if all(
                np.linalg.norm(detection.centre - other.centre)
                >= self.config.duplicate_distance_hand_sizes * max(detection.size, other.size)
                for other in kept
            ):
                kept.append(detection)
        return kept[:2]

    def _match(self, detections):
        """Track (or None) per detection: the joint matching with the smallest total distance within the gate."""
        best, best_cost = [None] * len(detections), math.inf
        candidates = self._tracks + [None] * len(detections)
        for choice in itertools.permutations(candidates, len(detections)):
            cost = 0.0
            for detection, track in zip(detections, choice):
                if track is None:
                    cost += self.config.match_distance_hand_sizes
                    continue
                distance = np.linalg.norm(detection.centre - track.centre) / max(track.size, detection.size)
                if distance > self.config.match_distance_hand_sizes:
                    cost = math.inf
                    break
                cost += distance
            if cost < best_cost:
                best, best_cost = list(choice), cost
        return best

    @staticmethod
    def _assign_sides(frame_tracks):
        if not frame_tracks:
            return []
        if len(frame_tracks) == 1:
            track, detection = frame_tracks[0]
            side = RIGHT if track.right_log_odds >= 0 else LEFT
            return [AssignedHand(side, track.track_id, detection)]
        (track_a, det_a), (track_b, det_b) = frame_tracks
        # Two hands take opposite sides: choose the split that agrees best with both tracks' evidence.
        a_is_right = track_a.right_log_odds - track_b.right_log_odds >= 0
        side_a, side_b = (RIGHT, LEFT) if a_is_right else (LEFT, RIGHT)
        return [AssignedHand(side_a, track_a.track_id, det_a), AssignedHand(side_b, track_b.track_id, det_b)]
