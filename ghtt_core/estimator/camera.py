"""Pinhole camera maths for the image front end: intrinsics, projection, placing a metric hand shape in the camera
frame from its 2D landmarks, and lifting REP-118 depth images.

Points are rows (..., 3) in the camera optical frame (x right, y down, z forward), metres.
"""

from dataclasses import dataclass
import math

import numpy as np

# Horizontal field of view assumed when a camera's intrinsics are unknown (a typical webcam / phone main camera).
DEFAULT_HORIZONTAL_FOV_DEG = 60.0
# Depth images: values outside this range are treated as invalid (sensor noise, saturated or missing returns).
MIN_VALID_DEPTH_M = 0.05
MAX_VALID_DEPTH_M = 10.0
# A hand is never closer than this to the camera; keeps the solved translation in front of the lens.
MIN_HAND_DEPTH_M = 0.05
# Nor further than this: a solved translation beyond it comes from bad intrinsics or landmarks, not from a hand.
MAX_HAND_DEPTH_M = 20.0
# Plausible focal lengths, in pixels per pixel of image width (fx) or height (fy): fields of view of 1..179 degrees.
MIN_FOCAL_PER_PIXEL = 0.5 / math.tan(math.radians(179.0) / 2.0)
MAX_FOCAL_PER_PIXEL = 0.5 / math.tan(math.radians(1.0) / 2.0)


@dataclass(frozen=True)
class CameraIntrinsics:
    """Pinhole intrinsics in pixels for an image of `width` x `height`."""

    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int

    def __post_init__(self):
        """Intrinsics are checked where they are made: a broken calibration (inf, NaN, 1e-30, zeros) used to place
        hands at 1e30 m or to hang the placement solver."""
        if not all(math.isfinite(value) for value in (self.fx, self.fy, self.cx, self.cy)):
            raise ValueError(f"intrinsics must be finite, got fx={self.fx}, fy={self.fy}, cx={self.cx}, cy={self.cy}")
        if not (self.fx > 0 and self.fy > 0):
            raise ValueError(f"focal lengths must be positive, got fx={self.fx}, fy={self.fy}")
        if self.width <= 0 or self.height <= 0:
            raise ValueError(f"image size must be positive, got {self.width}x{self.height}")
        for name, focal, size in (("fx", self.fx, self.width), ("fy", self.fy, self.height)):
            if not MIN_FOCAL_PER_PIXEL * size <= focal <= MAX_FOCAL_PER_PIXEL * size:
                raise ValueError(f"{name}={focal:g} px is implausible for a {self.width}x{self.height} image (a field "
                                 "of view outside 1..179 degrees)")
        if not (0 <= self.cx <= self.width and 0 <= self.cy <= self.height):
            raise ValueError(f"principal point ({self.cx:g}, {self.cy:g}) is outside the {self.width}x{self.height} "
                             "image")

    @classmethod
    def from_fov(cls, width, height, horizontal_fov_deg=DEFAULT_HORIZONTAL_FOV_DEG):
        """Square pixels, principal point at the image centre, focal length from the horizontal field of view."""
        if not 1 <= horizontal_fov_deg <= 179:
            raise ValueError(f"horizontal_fov_deg must be in [1, 179], got {horizontal_fov_deg}")
        focal = (width / 2.0) / math.tan(math.radians(horizontal_fov_deg) / 2.0)
        return cls(focal, focal, width / 2.0, height / 2.0, int(width), int(height))

    @classmethod
    def from_matrix(cls, matrix, width, height):
        k = np.asarray(matrix, dtype=np.float64)
        if k.shape != (3, 3):
            raise ValueError(f"intrinsics matrix must be 3x3, got shape {k.shape}")
        return cls(float(k[0, 0]), float(k[1, 1]), float(k[0, 2]), float(k[1, 2]), int(width), int(height))

    @property
    def matrix(self):
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    def scaled(self, width, height):
        """The same camera for an image resized to width x height."""
        sx, sy = width / self.width, height / self.height
        return CameraIntrinsics(self.fx * sx, self.fy * sy, self.cx * sx, self.cy * sy, int(width), int(height))


def project(points, intrinsics):
    """(..., 3) camera-frame points -> (..., 2) pixel coordinates."""
    points = np.asarray(points, dtype=np.float64)
    z = points[..., 2]
    u = intrinsics.fx * points[..., 0] / z + intrinsics.cx
    v = intrinsics.fy * points[..., 1] / z + intrinsics.cy
    return np.stack([u, v], axis=-1)


def back_project(pixels, depth, intrinsics):
    """(..., 2) pixels and (...) depths in metres -> (..., 3) camera-frame points."""
    pixels = np.asarray(pixels, dtype=np.float64)
    depth = np.asarray(depth, dtype=np.float64)
    x = (pixels[..., 0] - intrinsics.cx) / intrinsics.fx * depth
    y = (pixels[..., 1] - intrinsics.cy) / intrinsics.fy * depth
    return np.stack([x, y, depth], axis=-1)


def _translation_normal_equations(shape, pixels, intrinsics):
    """Linear system A t = b whose least-squares solution makes shape + t project onto pixels.

    u = fx (X + tx) / (Z + tz) + cx  <=>  fx tx - (u - cx) tz = (u - cx) Z - fx X  (and the same for v): linear in t,
    so a good start needs no initial guess.
    """
    du = pixels[:, 0] - intrinsics.cx
    dv = pixels[:, 1] - intrinsics.cy
    n = len(shape)
    a = np.zeros((2 * n, 3))
    a[:n, 0] = intrinsics.fx
    a[:n, 2] = -du
    a[n:, 1] = intrinsics.fy
    a[n:, 2] = -dv
    b = np.concatenate([du * shape[:, 2] - intrinsics.fx * shape[:, 0], dv * shape[:, 2] - intrinsics.fy * shape[:, 1]])
    return a, b


def _check_placement_inputs(shape, pixels, intrinsics):
    if shape.ndim != 2 or shape.shape[1] != 3 or pixels.shape != (len(shape), 2) or len(shape) < 2:
        raise ValueError(f"need shape (N, 3) and pixels (N, 2) with N >= 2, got {shape.shape} and {pixels.shape}")
    values = (intrinsics.fx, intrinsics.fy, intrinsics.cx, intrinsics.cy)
    # LAPACK may never return on non-finite input (an fx = inf calibration froze the camera graph), so nothing
    # non-finite reaches it, whatever object the intrinsics come in.
    if not (np.isfinite(shape).all() and np.isfinite(pixels).all() and np.isfinite(values).all()):
        raise ValueError("hand placement needs finite landmarks and intrinsics")


def _least_squares(a, b):
    """lstsq of a finite, well-scaled system; ValueError instead of a meaningless or non-finite answer."""
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("hand placement diverged (non-finite system)")
    return np.linalg.lstsq(a, b, rcond=None)[0]


def _check_translation(t, shape):
    depth = t[2] + float(np.median(shape[:, 2]))
    if not (np.isfinite(t).all() and depth <= MAX_HAND_DEPTH_M):
        raise ValueError(f"hand placement gave an implausible position ({t[0]:.3g}, {t[1]:.3g}, {t[2]:.3g}) m: "
                         "check the camera intrinsics")
    return t


def solve_translation(shape, pixels, intrinsics, iterations=5):
    """Translation t (3,) such that shape + t projects onto pixels, minimising the pixel reprojection error.

    shape: (N, 3) metric points in camera orientation (e.g. MediaPipe world landmarks), any origin.
    pixels: (N, 2) detected 2D positions. A linear (algebraic) solution is refined by Gauss-Newton on pixel residuals.
    Bounded: a fixed number of small least-squares solves on checked finite input (well under a millisecond);
    ValueError when the inputs are not finite or the position is not one a hand can have.
    """
    shape = np.asarray(shape, dtype=np.float64)
    pixels = np.asarray(pixels, dtype=np.float64)
    _check_placement_inputs(shape, pixels, intrinsics)
    a, b = _translation_normal_equations(shape, pixels, intrinsics)
    t = _least_squares(a, b)
    t[2] = max(t[2], MIN_HAND_DEPTH_M - shape[:, 2].min())
    for _ in range(iterations):
        p = shape + t
        z = p[:, 2]
        residual = (project(p, intrinsics) - pixels).reshape(-1)
        jac = np.zeros((len(p), 2, 3))
        jac[:, 0, 0] = intrinsics.fx / z
        jac[:, 0, 2] = -intrinsics.fx * p[:, 0] / z**2
        jac[:, 1, 1] = intrinsics.fy / z
        jac[:, 1, 2] = -intrinsics.fy * p[:, 1] / z**2
        step = _least_squares(jac.reshape(-1, 3), -residual)
        t = t + step
        t[2] = max(t[2], MIN_HAND_DEPTH_M - shape[:, 2].min())
    return _check_translation(t, shape)


def solve_translation_with_depth(shape, pixels, depth_at_pixels, intrinsics):
    """Like solve_translation, but the hand's depth comes from measured depth at the landmarks.

    depth_at_pixels: (N,) metres, NaN where the depth image has no valid value. The camera-facing skin is measured,
    not the joint centres; the median of (measured depth - shape depth) over valid landmarks is robust to landmarks
    that hit the background. With fewer than 3 valid depths this falls back to the image-only solution.
    """
    shape = np.asarray(shape, dtype=np.float64)
    pixels = np.asarray(pixels, dtype=np.float64)
    depth_at_pixels = np.asarray(depth_at_pixels, dtype=np.float64)
    valid = np.isfinite(depth_at_pixels)
    if valid.sum() < 3:
        return solve_translation(shape, pixels, intrinsics)
    _check_placement_inputs(shape, pixels, intrinsics)
    tz = float(np.median(depth_at_pixels[valid] - shape[valid, 2]))
    a, b = _translation_normal_equations(shape, pixels, intrinsics)
    # With tz fixed the system is linear in (tx, ty) alone.
    txy = _least_squares(a[:, :2], b - a[:, 2] * tz)
    return _check_translation(np.array([txy[0], txy[1], tz]), shape)


# Depth that cannot belong to a hand: its landmarks' measured depths (minus the hand shape's own relief) spread by
# more than this (median absolute deviation; a hand is a few cm deep, a garbage stream metres) ...
MAX_DEPTH_SPREAD_M = 0.15
# ... or a distance further from the monocular placement than this factor, more than a wrong field of view (an
# uncalibrated camera: up to ~2x) and MediaPipe's hand-size error (~1.3x) explain.
DEPTH_AGREEMENT_FACTOR = 4.0


def place_hand(shape, pixels, intrinsics, depth_at_pixels=None):
    """Translation of a metric hand shape onto its 2D landmarks -> (t (3,), depth_rejected). With measured depth at
    the landmarks (NaN where invalid) the hand's distance comes from the depth unless that depth is implausible (see
    MAX_DEPTH_SPREAD_M, DEPTH_AGREEMENT_FACTOR): then the monocular placement is used (depth_rejected True)."""
    monocular = solve_translation(shape, pixels, intrinsics)
    if depth_at_pixels is None:
        return monocular, False
    depth_at_pixels = np.asarray(depth_at_pixels, dtype=np.float64)
    valid = np.isfinite(depth_at_pixels)
    if valid.sum() < 3:
        return monocular, False
    shape = np.asarray(shape, dtype=np.float64)
    offsets = depth_at_pixels[valid] - shape[valid, 2]
    if np.median(np.abs(offsets - np.median(offsets))) > MAX_DEPTH_SPREAD_M:
        return monocular, True
    try:
        measured = solve_translation_with_depth(shape, pixels, depth_at_pixels, intrinsics)
    except ValueError:
        return monocular, True
    reference = float(np.median(shape[:, 2]))
    ratio = (measured[2] + reference) / (monocular[2] + reference)
    if not 1.0 / DEPTH_AGREEMENT_FACTOR <= ratio <= DEPTH_AGREEMENT_FACTOR:
        return monocular, True
    return measured, False


def depth_image_to_metres(depth, encoding):
    """REP-118 depth image -> float32 metres with NaN where invalid.

    16UC1: uint16 millimetres, 0 = invalid. 32FC1: float32 metres, NaN (or non-positive) = invalid.
    """
    depth = np.asarray(depth)
    if depth.ndim != 2:
        raise ValueError(f"depth image must be 2D (H, W), got shape {depth.shape}")
    if encoding == "16UC1":
        if depth.dtype != np.uint16:
            raise ValueError(f"16UC1 depth must be uint16 millimetres, got dtype {depth.dtype}")
        metres = depth.astype(np.float32) / 1000.0
        metres[depth == 0] = np.nan
    elif encoding == "32FC1":
        if depth.dtype != np.float32:
            raise ValueError(f"32FC1 depth must be float32 metres, got dtype {depth.dtype}")
        metres = depth.astype(np.float32, copy=True)
    else:
        raise ValueError(f"unsupported depth encoding {encoding!r}; expected '16UC1' (mm) or '32FC1' (m)")
    with np.errstate(invalid="ignore"):
        metres[~((metres >= MIN_VALID_DEPTH_M) & (metres <= MAX_VALID_DEPTH_M))] = np.nan
    return metres


def sample_depth(depth_metres, pixels, window=2):
    """Median depth in a (2*window+1)^2 patch around each pixel; NaN where the patch has no valid value or the pixel is
    outside the image. depth_metres: (H, W) float metres with NaN invalid; pixels: (N, 2) -> (N,)."""
    h, w = depth_metres.shape
    out = np.full(len(pixels), np.nan)
    for i, (u, v) in enumerate(np.asarray(pixels, dtype=np.float64)):
        if not (np.isfinite(u) and np.isfinite(v)):
            continue
        col, row = int(round(u)), int(round(v))
        if not (0 <= col < w and 0 <= row < h):
            continue
        patch = depth_metres[max(row - window, 0):row + window + 1, max(col - window, 0):col + window + 1]
        patch = patch[np.isfinite(patch)]
        if patch.size:
            out[i] = float(np.median(patch))
    return out


def depth_image_to_points(depth_metres, intrinsics, stride=1):
    """Lift a depth image to an (M, 3) point cloud of its valid pixels (every `stride`-th row and column)."""
    rows, cols = np.mgrid[0:depth_metres.shape[0]:stride, 0:depth_metres.shape[1]:stride]
    z = depth_metres[rows, cols]
    valid = np.isfinite(z)
    pixels = np.stack([cols[valid], rows[valid]], axis=-1).astype(np.float64)
    return back_project(pixels, z[valid], intrinsics)
