"""Image / CameraInfo conversion without cv_bridge: encodings, row padding, endianness, REP-118 depth, calibration."""

import numpy as np
import pytest
from sensor_msgs.msg import CameraInfo, Image

from ghtt_ros.images import array_to_image, camera_info_to_intrinsics, depth_to_metres, image_to_rgb


def _padded(array, encoding, padding, bigendian=False):
    """An Image whose rows carry `padding` extra bytes, as some drivers send them."""
    rows = array.reshape(array.shape[0], -1).view(np.uint8)
    padded = np.concatenate([rows, np.full((rows.shape[0], padding), 77, np.uint8)], axis=1)
    return Image(height=array.shape[0], width=array.shape[1], encoding=encoding, is_bigendian=int(bigendian),
                 step=padded.shape[1], data=padded.tobytes())


RGB = np.random.default_rng(0).integers(0, 255, (36, 48, 3), dtype=np.uint8)


@pytest.mark.parametrize("encoding, pixels", [
    ("rgb8", RGB), ("bgr8", RGB[:, :, ::-1]), ("rgba8", np.dstack([RGB, np.full(RGB.shape[:2], 9, np.uint8)])),
    ("bgra8", np.dstack([RGB[:, :, ::-1], np.zeros(RGB.shape[:2], np.uint8)])),
])
def test_colour_encodings_with_row_padding_give_the_rgb_pixels(encoding, pixels):
    np.testing.assert_array_equal(image_to_rgb(_padded(np.ascontiguousarray(pixels), encoding, 5)), RGB)


def test_mono8_is_repeated_into_three_channels():
    grey = RGB[:, :, 0].copy()
    rgb = image_to_rgb(_padded(grey[:, :, None], "mono8", 3))
    assert rgb.shape == (36, 48, 3) and (rgb == grey[:, :, None]).all()


def test_array_to_image_round_trip_keeps_stamp_and_frame():
    msg = array_to_image(RGB, "rgb8", 1_500_000_007, "cam_optical")
    assert (msg.header.stamp.sec, msg.header.stamp.nanosec, msg.header.frame_id) == (1, 500_000_007, "cam_optical")
    np.testing.assert_array_equal(image_to_rgb(msg), RGB)


@pytest.mark.parametrize("change, message", [
    (dict(encoding="yuv422"), "unsupported image encoding"),
    (dict(step=10), "smaller than a row"),
    (dict(height=100), "expected step x height"),
    (dict(width=0), "empty"),
])
def test_bad_images_raise_with_the_reason(change, message):
    msg = array_to_image(RGB, "rgb8", 1, "cam")
    for key, value in change.items():
        setattr(msg, key, value)
    with pytest.raises(ValueError, match=message):
        image_to_rgb(msg)


def test_depth_16uc1_big_endian_millimetres_and_32fc1_metres():
    millimetres = np.array([[0, 500, 1500], [2000, 65535, 800]], np.uint16)
    msg = _padded(millimetres.astype(">u2")[:, :, None], "16UC1", 2, bigendian=True)
    metres = depth_to_metres(msg)
    expected = np.array([[np.nan, 0.5, 1.5], [2.0, np.nan, 0.8]], np.float32)  # 0 invalid, 65.5 m out of range
    np.testing.assert_allclose(metres, expected, equal_nan=True)
    float_msg = array_to_image(expected, "32FC1", 1, "depth")
    np.testing.assert_allclose(depth_to_metres(float_msg), expected, equal_nan=True)
    with pytest.raises(ValueError, match="unsupported depth encoding"):
        depth_to_metres(array_to_image(RGB, "rgb8", 1, "cam"))


def test_camera_info_intrinsics_and_uncalibrated_camera():
    info = CameraInfo(width=640, height=480, k=[500.0, 0.0, 320.0, 0.0, 510.0, 240.0, 0.0, 0.0, 1.0])
    intrinsics = camera_info_to_intrinsics(info)
    assert (intrinsics.fx, intrinsics.fy, intrinsics.cx, intrinsics.cy) == (500.0, 510.0, 320.0, 240.0)
    with pytest.raises(ValueError, match="no calibration"):
        camera_info_to_intrinsics(CameraInfo(width=640, height=480))
