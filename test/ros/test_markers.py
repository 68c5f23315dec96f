"""Marker builders: stable ids, DELETE for what is absent, geometry taken from the arrays, frames from the header."""

import numpy as np
import pytest
from std_msgs.msg import Header
from visualization_msgs.msg import Marker

from ghtt_core.results import Hypothesis, prediction_statistics
from ghtt_core.skeleton import DRAW_BONES
from ghtt_ros.markers import action_text_marker, hand_markers, prediction_markers

HEADER = Header(frame_id="cam_optical")
JOINTS = np.random.default_rng(0).normal(0, 0.05, (2, 21, 3)).astype(np.float32) + [0, 0, 0.5]


def test_hand_markers_draw_present_hands_and_delete_absent_ones_with_stable_ids():
    markers = hand_markers(HEADER, JOINTS, np.array([False, True]), "hands", 2.0, 0.004)
    assert [(m.id, m.action) for m in markers] == [(0, Marker.DELETE), (1, Marker.DELETE), (2, Marker.ADD),
                                                   (3, Marker.ADD)]
    spheres, bones = markers[2:]
    assert spheres.type == Marker.SPHERE_LIST and len(spheres.points) == 21
    assert bones.type == Marker.LINE_LIST and len(bones.points) == 2 * len(DRAW_BONES)
    first_bone = [bones.points[0], bones.points[1]]
    expected = JOINTS[1, list(DRAW_BONES[0])]
    np.testing.assert_allclose([[p.x, p.y, p.z] for p in first_bone], expected, rtol=1e-6)
    assert spheres.header.frame_id == "cam_optical" and spheres.lifetime.sec == 2


def test_prediction_fan_has_one_strip_per_drawn_sample_and_the_mean():
    positions = np.random.default_rng(1).normal(0, 0.1, (3, 10, 2, 21, 3)).astype(np.float32)
    present = np.array([True, False])
    mean, _ = prediction_statistics(positions, present)
    markers = prediction_markers(HEADER, positions, mean, present, joint=8, max_samples=5, lifetime_s=1.0,
                                 line_width_m=0.004)
    samples = [m for m in markers if m.ns == "prediction_samples"]
    assert [m.action for m in samples[:5]] == [Marker.ADD] * 3 + [Marker.DELETE] * 2  # only 3 samples exist
    assert all(m.action == Marker.DELETE for m in samples[5:])  # the right hand is absent
    np.testing.assert_allclose([[p.x, p.y, p.z] for p in samples[2].points], positions[2, :, 0, 8], rtol=1e-6)
    means = {m.id: m for m in markers if m.ns == "prediction_mean"}
    assert means[0].action == Marker.ADD and len(means[0].points) == 10 and means[1].action == Marker.DELETE
    with pytest.raises(ValueError, match="joint"):
        prediction_markers(HEADER, positions, mean, present, 21, 5, 1.0, 0.004)


def test_action_text_lists_the_hypotheses_above_the_anchor():
    marker = action_text_marker(HEADER, [Hypothesis("open jar", "open", "jar", 0.7),
                                         Hypothesis("pour cup", "pour", "cup", 0.2)], np.array([0.1, 0.0, 0.6]), 0.0)
    assert marker.type == Marker.TEXT_VIEW_FACING and marker.text == "open jar 0.70\npour cup 0.20"
    assert marker.pose.position.y < 0 and marker.pose.position.z == pytest.approx(0.6)
