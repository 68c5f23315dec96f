"""Temporal consistency of hand sides and identities."""

import numpy as np

from ghtt_core.estimator.tracking import HandDetection, SideTracker, SideTrackerConfig
from ghtt_core.skeleton import LEFT, RIGHT


def _detection(centre, probability_right, score=0.9, size=100.0):
    offsets = np.random.default_rng(0).uniform(-size / 3, size / 3, size=(21, 2))
    return HandDetection(np.asarray(centre, float) + offsets, probability_right, score)


def _sides(assigned):
    return {a.side: a for a in assigned}


def test_one_flickering_hand_keeps_its_side_and_identity():
    tracker = SideTracker()
    probabilities = [0.9] * 5 + [0.2, 0.9, 0.1, 0.85] + [0.9] * 5  # two confident flips mid-video
    results = [tracker.update([_detection([300 + 3 * i, 200], p)]) for i, p in enumerate(probabilities)]
    assert all(len(r) == 1 and r[0].side == RIGHT for r in results)
    assert len({r[0].track_id for r in results}) == 1


def test_a_consistent_change_of_evidence_is_followed():
    tracker = SideTracker()
    sides = [tracker.update([_detection([300, 200], p)])[0].side for p in [0.8] * 3 + [0.05] * 10]
    assert sides[0] == RIGHT and sides[-1] == LEFT


def test_two_hands_never_share_a_side():
    tracker = SideTracker()
    assigned = _sides(tracker.update([_detection([100, 200], 0.9), _detection([500, 200], 0.7)]))
    assert set(assigned) == {LEFT, RIGHT}
    # The more confident claim wins the contested side.
    assert assigned[RIGHT].detection.keypoints_2d.mean(axis=0)[0] < 300


def test_two_hands_keep_sides_when_their_labels_swap_for_a_frame():
    tracker = SideTracker()
    first = None
    for frame in range(12):
        swapped = frame in (5, 6)
        left_p, right_p = (0.8, 0.2) if swapped else (0.1, 0.95)
        detections = [_detection([100 + frame, 200], left_p), _detection([500 - frame, 210], right_p)]
        assigned = _sides(tracker.update(detections))
        ids = (assigned[LEFT].track_id, assigned[RIGHT].track_id)
        first = first or ids
        assert ids == first, f"frame {frame}: identities changed"
        assert assigned[LEFT].detection.keypoints_2d.mean(axis=0)[0] < 300


def test_duplicate_detections_of_one_hand_are_merged():
    tracker = SideTracker()
    assigned = tracker.update([_detection([300, 200], 0.9, score=0.95), _detection([305, 202], 0.2, score=0.6)])
    assert len(assigned) == 1 and assigned[0].detection.score == 0.95


def test_tracks_expire_after_missed_frames():
    tracker = SideTracker(SideTrackerConfig(max_missed_frames=2))
    first = tracker.update([_detection([300, 200], 0.9)])[0].track_id
    for _ in range(4):
        assert tracker.update([]) == []
    assert tracker.update([_detection([300, 200], 0.9)])[0].track_id != first
    tracker.reset()
    assert tracker.update([_detection([300, 200], 0.1)])[0].side == LEFT
