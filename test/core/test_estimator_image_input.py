"""Image validation and channel order for every estimator input."""

import numpy as np
import pytest

from ghtt_core.estimator.image_input import MAX_IMAGE_SIDE, as_rgb_image, read_rgb_image


def test_bgr_input_is_swapped_to_rgb():
    bgr = np.zeros((40, 50, 3), np.uint8)
    bgr[..., 0] = 200  # blue in BGR
    rgb = as_rgb_image(bgr, channel_order="bgr")
    assert rgb[0, 0].tolist() == [0, 0, 200]
    assert rgb.flags.c_contiguous
    np.testing.assert_array_equal(as_rgb_image(bgr), bgr)  # rgb input passes unchanged


def test_grey_and_rgba_become_three_channels():
    grey = np.arange(40 * 40, dtype=np.uint8).reshape(40, 40)
    rgb = as_rgb_image(grey)
    assert rgb.shape == (40, 40, 3)
    np.testing.assert_array_equal(rgb[..., 2], grey)
    rgba = np.dstack([np.full((40, 40, 3), 7, np.uint8), np.zeros((40, 40), np.uint8)])
    assert as_rgb_image(rgba).shape == (40, 40, 3)


@pytest.mark.parametrize(
    "image, message",
    [
        (np.zeros((0, 0, 3), np.uint8), "empty"),
        (np.zeros((64, 64, 3), np.float32), "dtype must be uint8"),
        (np.zeros((1, 1, 3), np.uint8), "too small"),
        (np.zeros((40, MAX_IMAGE_SIDE + 1), np.uint8), "too large"),
        (np.zeros((64, 64, 2), np.uint8), "shape"),
        (np.zeros((2, 64, 64, 3), np.uint8), "shape"),
        ([[1, 2], [3, 4]], "numpy array"),
    ],
)
def test_bad_images_give_clear_errors(image, message):
    with pytest.raises(ValueError, match=message):
        as_rgb_image(image)


def test_unknown_channel_order_is_rejected():
    with pytest.raises(ValueError, match="channel_order"):
        as_rgb_image(np.zeros((64, 64, 3), np.uint8), channel_order="rgba")


def test_image_files_are_read_as_rgb(tmp_path):
    import cv2

    bgr = np.zeros((48, 64, 3), np.uint8)
    bgr[..., 2] = 255  # red
    cv2.imwrite(str(tmp_path / "red.png"), bgr)
    assert read_rgb_image(tmp_path / "red.png")[0, 0].tolist() == [255, 0, 0]
    (tmp_path / "broken.png").write_bytes(b"not an image")
    with pytest.raises(ValueError, match="could not decode"):
        read_rgb_image(tmp_path / "broken.png")
    with pytest.raises(ValueError, match="not found"):
        read_rgb_image(tmp_path / "missing.png")
