"""Reading, validation and colour handling of images entering the estimators: every backend receives an RGB uint8
(H, W, 3) C-contiguous array, and bad input fails early with a ValueError that says what is wrong."""

from pathlib import Path

import numpy as np

# Smaller images cannot hold a detectable hand; larger ones are almost certainly a mistake (a raw buffer of the
# wrong shape, a panorama) and would cost seconds per frame. 12000 px covers 8K video and 100 MP photos.
MIN_IMAGE_SIDE = 32
MAX_IMAGE_SIDE = 12000
CHANNEL_ORDERS = ("rgb", "bgr")


def as_rgb_image(image, channel_order="rgb", min_side=MIN_IMAGE_SIDE, max_side=MAX_IMAGE_SIDE):
    """Check an image and return it as RGB uint8 (H, W, 3), C-contiguous.

    image: uint8 (H, W) grey, (H, W, 3) in `channel_order`, or (H, W, 4) with alpha (dropped).
    """
    if channel_order not in CHANNEL_ORDERS:
        raise ValueError(f"channel_order must be one of {CHANNEL_ORDERS}, got {channel_order!r}")
    if not isinstance(image, np.ndarray):
        raise ValueError(f"image must be a numpy array, got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise ValueError(f"image dtype must be uint8, got {image.dtype} (scale float images to 0..255 and convert)")
    if image.ndim == 3 and image.shape[2] in (3, 4):
        colour = image[:, :, :3]
    elif image.ndim == 2:
        colour = np.repeat(image[:, :, None], 3, axis=2)
    else:
        raise ValueError(f"image must be (H, W), (H, W, 3) or (H, W, 4), got shape {image.shape}")
    height, width = colour.shape[:2]
    if height == 0 or width == 0:
        raise ValueError(f"image is empty: shape {image.shape}")
    if min(height, width) < min_side:
        raise ValueError(f"image {width}x{height} is too small: both sides must be >= {min_side} px")
    if max(height, width) > max_side:
        raise ValueError(f"image {width}x{height} is too large: both sides must be <= {max_side} px")
    if channel_order == "bgr":
        colour = colour[:, :, ::-1]
    return np.ascontiguousarray(colour)


def read_bgr_image(path):
    """Read an image file (anything OpenCV decodes) as OpenCV decodes it: BGR uint8 (H, W, 3), not validated (the
    image bags store these pixels as they are; read_rgb_image validates them for the estimators)."""
    import cv2

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"image file not found: {path}")
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError(f"could not decode image file: {path}")
    return bgr


def read_rgb_image(path):
    """Read an image file (anything OpenCV decodes) as validated RGB uint8."""
    return as_rgb_image(read_bgr_image(path), channel_order="bgr")
