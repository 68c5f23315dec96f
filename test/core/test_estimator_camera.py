"""Camera maths: intrinsics, projection, solving a hand's translation, REP-118 depth images."""

import math
import time
from types import SimpleNamespace

import numpy as np
import pytest

from ghtt_core.estimator.camera import (
    CameraIntrinsics,
    back_project,
    depth_image_to_metres,
    depth_image_to_points,
    place_hand,
    project,
    sample_depth,
    solve_translation,
    solve_translation_with_depth,
)

BROKEN_CALIBRATIONS = {  # what drivers have published; each used to hang the solver or place hands at 1e30 m
    "fx_inf": dict(fx=math.inf, fy=math.inf),
    "fx_nan": dict(fx=math.nan),
    "fx_1e-30": dict(fx=1e-30, fy=1e-30),
    "cx_nan": dict(cx=math.nan, cy=math.nan),
    "zeros": dict(fx=0.0, fy=0.0, cx=0.0, cy=0.0),
    "cx_outside": dict(cx=5000.0),
    "fx_huge": dict(fx=1e9),
}


def _hand_shape(rng):
    """A hand-sized point set (about 18 cm across) around its own centre."""
    return rng.normal(scale=0.04, size=(21, 3))


def test_default_intrinsics_follow_the_horizontal_field_of_view():
    cam = CameraIntrinsics.from_fov(640, 480, 60.0)
    assert cam.fx == pytest.approx(320 / math.tan(math.radians(30)))
    assert (cam.cx, cam.cy) == (320, 240)
    # A point on the edge of the field of view projects onto the image border.
    edge = np.array([math.tan(math.radians(30)), 0.0, 1.0])
    assert project(edge, cam)[0] == pytest.approx(640)


def test_scaled_intrinsics_match_a_resized_image():
    cam = CameraIntrinsics(500, 510, 330, 250, 640, 480)
    point = np.array([0.1, -0.05, 0.8])
    half = cam.scaled(320, 240)
    np.testing.assert_allclose(project(point, half), project(point, cam) / 2)
    np.testing.assert_allclose(CameraIntrinsics.from_matrix(cam.matrix, 640, 480).matrix, cam.matrix)


def test_project_and_back_project_are_inverse():
    cam = CameraIntrinsics(600, 600, 320, 240, 640, 480)
    points = np.random.default_rng(0).uniform([-0.3, -0.2, 0.3], [0.3, 0.2, 2.0], size=(50, 3))
    np.testing.assert_allclose(back_project(project(points, cam), points[:, 2], cam), points, atol=1e-12)


def test_solve_translation_recovers_the_true_position():
    rng = np.random.default_rng(1)
    cam = CameraIntrinsics.from_fov(1280, 720)
    for true_t in ([0.1, -0.05, 0.5], [-0.3, 0.1, 1.2], [0.0, 0.0, 0.25]):
        shape = _hand_shape(rng)
        pixels = project(shape + true_t, cam)
        np.testing.assert_allclose(solve_translation(shape, pixels, cam), true_t, atol=1e-8)


def test_solve_translation_degrades_gracefully_with_pixel_noise():
    rng = np.random.default_rng(2)
    cam = CameraIntrinsics.from_fov(640, 480)
    shape, true_t = _hand_shape(rng), np.array([0.05, 0.02, 0.6])
    pixels = project(shape + true_t, cam) + rng.normal(scale=2.0, size=(21, 2))
    t = solve_translation(shape, pixels, cam)
    assert np.linalg.norm(t - true_t) < 0.02
    # Gauss-Newton minimises the pixel error: it is no worse than at the true translation.
    error = lambda tr: np.linalg.norm(project(shape + tr, cam) - pixels, axis=-1).mean()  # noqa: E731
    assert error(t) <= error(true_t) + 1e-9


def test_solve_translation_rejects_bad_shapes():
    cam = CameraIntrinsics.from_fov(640, 480)
    with pytest.raises(ValueError, match="N >= 2"):
        solve_translation(np.zeros((21, 2)), np.zeros((21, 2)), cam)


@pytest.mark.parametrize("broken", sorted(BROKEN_CALIBRATIONS))
def test_broken_calibrations_are_refused_where_intrinsics_are_made(broken):
    values = dict(fx=500.0, fy=500.0, cx=320.0, cy=240.0, width=640, height=480) | BROKEN_CALIBRATIONS[broken]
    with pytest.raises(ValueError, match="finite|positive|implausible|outside"):
        CameraIntrinsics(**values)


@pytest.mark.parametrize("broken", sorted(BROKEN_CALIBRATIONS))
def test_the_placement_solver_returns_within_50_ms_on_broken_intrinsics(broken):
    """Whatever object the intrinsics come in (here one that skips CameraIntrinsics' checks), the solver answers
    quickly: with a translation or a ValueError, never a hang."""
    rng = np.random.default_rng(5)
    good = CameraIntrinsics.from_fov(640, 480)
    shape = _hand_shape(rng)
    pixels = project(shape + [0.05, 0.0, 0.6], good)
    intrinsics = SimpleNamespace(**(dict(fx=good.fx, fy=good.fy, cx=good.cx, cy=good.cy, width=640, height=480)
                                    | BROKEN_CALIBRATIONS[broken]))
    for solve in (lambda: solve_translation(shape, pixels, intrinsics),
                  lambda: place_hand(shape, pixels, intrinsics, np.full(21, 0.6))):
        started = time.perf_counter()
        try:
            translation = solve()
        except ValueError as error:
            assert "finite" in str(error) or "implausible" in str(error) or "diverged" in str(error)
        else:
            translation = translation[0] if isinstance(translation, tuple) else translation
            assert np.isfinite(translation).all() and translation[2] < 20.0
        assert time.perf_counter() - started < 0.05


def test_non_finite_landmarks_are_refused():
    cam = CameraIntrinsics.from_fov(640, 480)
    shape = _hand_shape(np.random.default_rng(6))
    pixels = project(shape + [0.0, 0.0, 0.5], cam)
    pixels[3] = np.inf
    with pytest.raises(ValueError, match="finite"):
        solve_translation(shape, pixels, cam)


@pytest.mark.parametrize("garbage", ["random", "far"])
def test_garbage_depth_is_rejected_and_the_monocular_placement_used(garbage):
    rng = np.random.default_rng(7)
    cam = CameraIntrinsics.from_fov(640, 480)
    shape, true_t = _hand_shape(rng), np.array([0.05, -0.02, 0.6])
    pixels = project(shape + true_t, cam)
    # random 16UC1 noise (valid range 0.05-10 m) or a consistent but impossible 9 m (misaligned depth stream)
    measured = rng.uniform(0.05, 10.0, 21) if garbage == "random" else np.full(21, 9.0)
    t, rejected = place_hand(shape, pixels, cam, measured)
    assert rejected
    np.testing.assert_allclose(t, solve_translation(shape, pixels, cam))
    good, rejected = place_hand(shape, pixels, cam, (shape + true_t)[:, 2] + 0.01)
    assert not rejected and good[2] == pytest.approx(true_t[2] + 0.01, abs=1e-6)


def test_translation_from_depth_is_robust_to_background_hits():
    rng = np.random.default_rng(3)
    cam = CameraIntrinsics.from_fov(640, 480)
    shape, true_t = _hand_shape(rng), np.array([-0.1, 0.05, 0.7])
    points = shape + true_t
    measured = points[:, 2].copy()
    measured[:4] = 2.5  # landmarks that miss the hand and hit the wall behind it
    measured[4:6] = np.nan  # no depth return
    t = solve_translation_with_depth(shape, project(points, cam), measured, cam)
    np.testing.assert_allclose(t, true_t, atol=1e-6)


def test_translation_from_depth_falls_back_without_valid_depth():
    rng = np.random.default_rng(4)
    cam = CameraIntrinsics.from_fov(640, 480)
    shape, true_t = _hand_shape(rng), np.array([0.0, 0.1, 0.9])
    t = solve_translation_with_depth(shape, project(shape + true_t, cam), np.full(21, np.nan), cam)
    np.testing.assert_allclose(t, true_t, atol=1e-6)


def test_depth_16uc1_is_millimetres_with_zero_invalid():
    depth = np.array([[0, 500], [1234, 65535]], dtype=np.uint16)
    metres = depth_image_to_metres(depth, "16UC1")
    assert metres.dtype == np.float32
    assert np.isnan(metres[0, 0]) and np.isnan(metres[1, 1])  # 0 = invalid, 65.5 m = out of range
    np.testing.assert_allclose(metres[0, 1], 0.5)
    np.testing.assert_allclose(metres[1, 0], 1.234, rtol=1e-6)


def test_depth_32fc1_is_metres_with_nan_invalid():
    depth = np.array([[np.nan, 0.8], [0.0, 3.0]], dtype=np.float32)
    metres = depth_image_to_metres(depth, "32FC1")
    assert np.isnan(metres[0, 0]) and np.isnan(metres[1, 0])
    np.testing.assert_allclose(metres[[0, 1], [1, 1]], [0.8, 3.0])
    assert np.isnan(depth[0, 0]) and depth[1, 0] == 0.0  # input untouched


@pytest.mark.parametrize(
    "depth, encoding, message",
    [
        (np.zeros((4, 4), np.float32), "16UC1", "uint16"),
        (np.zeros((4, 4), np.uint16), "32FC1", "float32"),
        (np.zeros((4, 4), np.uint16), "mono16", "unsupported depth encoding"),
        (np.zeros((4, 4, 1), np.uint16), "16UC1", "2D"),
    ],
)
def test_bad_depth_images_are_rejected(depth, encoding, message):
    with pytest.raises(ValueError, match=message):
        depth_image_to_metres(depth, encoding)


def test_sample_depth_uses_a_patch_median_and_marks_misses():
    depth = np.full((20, 30), np.nan, np.float32)
    depth[5:10, 5:10] = 0.6
    depth[7, 7] = 5.0  # a single outlier inside the patch
    sampled = sample_depth(depth, np.array([[7.0, 7.0], [25.0, 15.0], [-3.0, 4.0], [40.0, 1.0]]))
    assert sampled[0] == pytest.approx(0.6)
    assert np.isnan(sampled[1:]).all()


def test_depth_image_lifts_to_points_on_the_viewing_rays():
    cam = CameraIntrinsics(100, 100, 16, 12, 32, 24)
    depth = np.full((24, 32), 2.0, np.float32)
    depth[0, :] = np.nan
    points = depth_image_to_points(depth, cam)
    assert len(points) == 23 * 32
    np.testing.assert_allclose(points[:, 2], 2.0)
    np.testing.assert_allclose(project(points, cam)[0], [0.0, 1.0], atol=1e-9)
