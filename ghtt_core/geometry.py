"""Rotations and rigid transforms in the row-vector convention (x_b = x_a @ R + t), batched over leading dims.

Every function accepts float32 or float64 tensors with any number of leading dimensions and keeps the dtype.

Row-vector convention: a rotation matrix R used as `x @ R` is the TRANSPOSE of the usual column-vector matrix
(`R_col @ x`). So `axis_angle_to_matrix(a)` returns R with `x @ R` = x rotated by |a| radians about a/|a|
(right-hand rule), and `quaternion_xyzw_to_matrix(q)` returns R with `x @ R` = x rotated by q. A ROS transform
parent <- child with quaternion q maps child coordinates to parent ones as `x_parent = x_child @ R + t`.

6D rotation = the first two ROWS of R flattened (pytorch3d `matrix_to_rotation_6d`), decoded by Gram-Schmidt.
"""

import torch
import torch.nn.functional as F

# Below this squared angle (rad^2) the Rodrigues coefficients use their Taylor series; both forms agree to
# machine precision there, and the series avoids 0/0 in the values and gradients.
_SMALL_ANGLE_SQ = 1e-8


def _check_last_dims(name, tensor, dims):
    if tuple(tensor.shape[-len(dims):]) != tuple(dims):
        raise ValueError(f"{name} must have shape (..., {', '.join(map(str, dims))}), got {tuple(tensor.shape)}")


def rotation_6d_to_matrix(d6):
    """(..., 6) -> (..., 3, 3). Gram-Schmidt on the two rows; row 3 = row1 x row2. Always a proper rotation."""
    _check_last_dims("d6", d6, (6,))
    row1 = F.normalize(d6[..., :3], dim=-1)
    second = d6[..., 3:]
    row2 = F.normalize(second - (row1 * second).sum(-1, keepdim=True) * row1, dim=-1)
    row3 = torch.linalg.cross(row1, row2, dim=-1)
    return torch.stack((row1, row2, row3), dim=-2)


def matrix_to_rotation_6d(R):
    """(..., 3, 3) -> (..., 6): the first two rows, flattened."""
    _check_last_dims("R", R, (3, 3))
    return R[..., :2, :].reshape(*R.shape[:-2], 6)


def _skew(v):
    """(..., 3) -> (..., 3, 3) K with K @ u = v x u (column-vector cross-product matrix)."""
    x, y, z = v.unbind(-1)
    zero = torch.zeros_like(x)
    return torch.stack(
        (torch.stack((zero, -z, y), -1), torch.stack((z, zero, -x), -1), torch.stack((-y, x, zero), -1)), dim=-2
    )


def axis_angle_to_matrix(axis_angle):
    """(..., 3) rotation vector (axis * angle, radians) -> (..., 3, 3) R such that x @ R rotates x about the axis.

    R is the transpose of the column-vector Rodrigues matrix I + sin(a) K + (1 - cos(a)) K^2 (K = skew(axis)).
    """
    _check_last_dims("axis_angle", axis_angle, (3,))
    angle_sq = (axis_angle * axis_angle).sum(-1)
    small = angle_sq < _SMALL_ANGLE_SQ
    angle = torch.sqrt(torch.where(small, torch.ones_like(angle_sq), angle_sq))
    # sin(a)/a and (1 - cos a)/a^2 = 0.5 (sin(a/2)/(a/2))^2; the latter has no cancellation for small a.
    sinc = torch.where(small, 1.0 - angle_sq / 6.0, torch.sin(angle) / angle)
    half_sinc = torch.sin(0.5 * angle) / (0.5 * angle)
    cos_term = torch.where(small, 0.5 - angle_sq / 24.0, 0.5 * half_sinc * half_sinc)
    K = _skew(axis_angle)
    eye = torch.eye(3, dtype=axis_angle.dtype, device=axis_angle.device)
    R_col = eye + sinc[..., None, None] * K + cos_term[..., None, None] * (K @ K)
    return R_col.transpose(-1, -2)


def quaternion_xyzw_to_matrix(quaternion):
    """(..., 4) quaternion (x, y, z, w), any norm > 0 -> (..., 3, 3) R such that x @ R rotates x by q."""
    _check_last_dims("quaternion", quaternion, (4,))
    x, y, z, w = F.normalize(quaternion, dim=-1).unbind(-1)
    R_col = torch.stack(
        (
            torch.stack((1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)), -1),
            torch.stack((2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)), -1),
            torch.stack((2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)), -1),
        ),
        dim=-2,
    )
    return R_col.transpose(-1, -2)


def matrix_to_quaternion_xyzw(R):
    """(..., 3, 3) rotation -> (..., 4) unit quaternion (x, y, z, w) with w >= 0.

    Shepperd's method: of the four ways to read q from R, use the one whose pivot (4 q_i^2) is largest, so no
    division is ever by a small number (stable at 0 and at 180 degrees).
    """
    _check_last_dims("R", R, (3, 3))
    m = R.transpose(-1, -2)  # column-vector matrix
    m00, m01, m02 = m[..., 0, 0], m[..., 0, 1], m[..., 0, 2]
    m10, m11, m12 = m[..., 1, 0], m[..., 1, 1], m[..., 1, 2]
    m20, m21, m22 = m[..., 2, 0], m[..., 2, 1], m[..., 2, 2]
    pivots = torch.stack(
        (1 + m00 - m11 - m22, 1 - m00 + m11 - m22, 1 - m00 - m11 + m22, 1 + m00 + m11 + m22), dim=-1
    )  # 4 x^2, 4 y^2, 4 z^2, 4 w^2
    # Row i = 4 q_i * (x, y, z, w); dividing by 2 sqrt(pivot_i) = 4 |q_i| gives q up to sign.
    numerators = torch.stack(
        (
            torch.stack((pivots[..., 0], m01 + m10, m02 + m20, m21 - m12), -1),
            torch.stack((m01 + m10, pivots[..., 1], m12 + m21, m02 - m20), -1),
            torch.stack((m02 + m20, m12 + m21, pivots[..., 2], m10 - m01), -1),
            torch.stack((m21 - m12, m02 - m20, m10 - m01, pivots[..., 3]), -1),
        ),
        dim=-2,
    )
    # The chosen pivot is >= 1 (the four sum to 4); the clamp only keeps unused candidates finite.
    candidates = numerators / (2.0 * torch.sqrt(pivots.clamp_min(0.1)))[..., None]
    best = pivots.argmax(dim=-1)
    quaternion = torch.gather(candidates, -2, best[..., None, None].expand(*best.shape, 1, 4)).squeeze(-2)
    quaternion = torch.where(quaternion[..., 3:] < 0, -quaternion, quaternion)
    return F.normalize(quaternion, dim=-1)


def matrix_to_axis_angle(R):
    """(..., 3, 3) -> (..., 3) rotation vector with angle in [0, pi]; inverse of axis_angle_to_matrix.

    Goes through the quaternion, where angle = 2 atan2(|v|, w) is well conditioned everywhere.
    """
    quaternion = matrix_to_quaternion_xyzw(R)
    vector, w = quaternion[..., :3], quaternion[..., 3]
    sin_half_sq = (vector * vector).sum(-1)
    small = sin_half_sq < _SMALL_ANGLE_SQ
    sin_half = torch.sqrt(torch.where(small, torch.ones_like(sin_half_sq), sin_half_sq))
    # angle / sin(angle/2); near 0 its series in s = sin(angle/2) (w ~ 1) is 2/w (1 - s^2/(3 w^2)).
    ratio = torch.where(
        small, 2.0 / w * (1.0 - sin_half_sq / (3.0 * w * w)), 2.0 * torch.atan2(sin_half, w) / sin_half
    )
    return vector * ratio[..., None]


def random_rotation(shape=(), generator=None, dtype=torch.float32, device=None):
    """Uniformly distributed rotations, (*shape, 3, 3) (normalised Gaussian quaternions)."""
    quaternion = torch.randn(*shape, 4, generator=generator, dtype=dtype, device=device)
    return quaternion_xyzw_to_matrix(quaternion)


def _row_times(t, R):
    """(..., 3) row vectors times (..., 3, 3) matrices -> (..., 3)."""
    return (t.unsqueeze(-2) @ R).squeeze(-2)


def invert_transform(R, t):
    """a->b (R, t) -> b->a: (R^T, -t @ R^T)."""
    R_inv = R.transpose(-1, -2)
    return R_inv, -_row_times(t, R_inv)


def compose_transforms(R_ac, t_ac, R_cb, t_cb):
    """Chain a->c then c->b into a->b: (R_ac @ R_cb, t_ac @ R_cb + t_cb)."""
    return R_ac @ R_cb, _row_times(t_ac, R_cb) + t_cb


def relative_transform(R_c2a, t_c2a, R_c2b, t_c2b):
    """a->b from two transforms out of a common frame c: R = R_c2a^T @ R_c2b, t = t_c2b - t_c2a @ R."""
    R_a2b = R_c2a.transpose(-1, -2) @ R_c2b
    return R_a2b, t_c2b - _row_times(t_c2a, R_a2b)


def apply_transform(points, R, t):
    """points (..., N, 3) @ R (..., 3, 3) + t (..., 3) -> (..., N, 3)."""
    return points @ R + t.unsqueeze(-2)


def _centre(points, weights):
    """Weighted centroid (..., 1, 3) and the centred points. weights (..., N) or None (uniform)."""
    if weights is None:
        centroid = points.mean(dim=-2, keepdim=True)
    else:
        w = weights.to(points.dtype).unsqueeze(-1)
        centroid = (w * points).sum(-2, keepdim=True) / w.sum(-2, keepdim=True)
    return centroid, points - centroid


def _best_rotation(cross_covariance):
    """R maximising trace(R^T H) among proper rotations (det +1), and the sign-corrected singular values."""
    U, S, Vh = torch.linalg.svd(cross_covariance)
    # Flip the weakest direction when U V^T would be a reflection.
    det_sign = torch.sign(torch.det(U @ Vh))
    det_sign = torch.where(det_sign == 0, torch.ones_like(det_sign), det_sign)
    signs = torch.stack((torch.ones_like(det_sign), torch.ones_like(det_sign), det_sign), dim=-1)
    return (U * signs.unsqueeze(-2)) @ Vh, S * signs


def _check_point_sets(source, target, weights):
    if source.shape != target.shape or source.shape[-1] != 3 or source.dim() < 2:
        raise ValueError(
            f"source and target must both be (..., N, 3) with the same shape, got {tuple(source.shape)} "
            f"and {tuple(target.shape)}"
        )
    if weights is not None and tuple(weights.shape) != tuple(source.shape[:-1]):
        raise ValueError(f"weights must be (..., N) = {tuple(source.shape[:-1])}, got {tuple(weights.shape)}")


def kabsch(source, target, weights=None):
    """Rigid fit (rotation + translation; no scale, no reflection) with target ~ source @ R + t.

    source, target: (..., N, 3); weights: (..., N) non-negative or None. Returns R (..., 3, 3), t (..., 3).
    """
    _check_point_sets(source, target, weights)
    source_mean, source_c = _centre(source, weights)
    target_mean, target_c = _centre(target, weights)
    if weights is not None:
        source_c = source_c * weights.to(source.dtype).unsqueeze(-1)
    R, _ = _best_rotation(source_c.transpose(-1, -2) @ target_c)
    t = (target_mean - source_mean @ R).squeeze(-2)
    return R, t


def mean_rotation(rotations, weights, dim):
    """Weighted mean of rotations (..., 3, 3) over the dimension `dim` of the weights (...); all weights 0 -> identity.

    Gram-Schmidt of the weighted sum of the matrices: for rotations within a few tens of degrees of each other this
    agrees with the chordal (SVD) mean to second order, and unlike an SVD its gradient stays finite when the
    rotations coincide.
    """
    weights = weights.to(rotations.dtype)
    summed = (rotations * weights[..., None, None]).sum(dim=dim - 2 if dim < 0 else dim)
    identity = torch.eye(3, dtype=summed.dtype, device=summed.device).expand_as(summed)
    summed = torch.where((weights.sum(dim=dim) > 0)[..., None, None], summed, identity)
    return rotation_6d_to_matrix(matrix_to_rotation_6d(summed))


def similarity_procrustes(source, target):
    """Align source to target with rotation, uniform scale and translation (no reflection); returns aligned source.

    source, target: (..., N, 3). Umeyama's closed form; used for MPJPE-PA.
    """
    _check_point_sets(source, target, None)
    source_mean, source_c = _centre(source, None)
    target_mean, target_c = _centre(target, None)
    R, signed_singular_values = _best_rotation(source_c.transpose(-1, -2) @ target_c)
    source_var = (source_c * source_c).sum(dim=(-1, -2))
    scale = signed_singular_values.sum(-1) / source_var.clamp_min(torch.finfo(source.dtype).tiny)
    return scale[..., None, None] * (source_c @ R) + target_mean
