"""Two-hand joints <-> the 153-d per-frame feature of G-HTT (method-notes 1.3-1.5), with presence masks.

Layouts (docs/conventions.md): joints (..., T, 2, 21, 3) metres in the camera frame, presence (..., T, 2) bool,
frame_valid (..., T) bool. Transforms are row-vector (x_b = x_a @ R + t). See docs/representation.md.
"""

from dataclasses import dataclass

import torch

from ghtt_core import geometry
from ghtt_core.skeleton import HAND_SCALE, NUM_HANDS, NUM_JOINTS, PALM_JOINTS, PALM_TEMPLATES, UNUSED_JOINT, palm_size

FEATURE_DIM = 153
JOINT_SLICES = (slice(0, 63), slice(63, 126))  # per hand: local joints / palm size
VELOCITY_SLICES = (slice(126, 135), slice(135, 144))  # per hand: local(t) -> local(t-1), 6D + t in m x S
LEFT_TO_RIGHT_SLICE = slice(144, 153)  # left local -> right local, 6D + t in metres
LOCAL2BASE_DIM = 18  # per frame: left (6D, t m x S), right (6D, t m x S)

_IDENTITY_6D = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
# Refined clips are placed in the camera by the input's palm frames within this many frames (decode_observed_clip).
PLACEMENT_RADIUS_FRAMES = 2
_IDENTITY_9D = _IDENTITY_6D + (0.0, 0.0, 0.0)


@dataclass
class HandFeatures:
    """Encoded two-hand sequence.

    features:     (..., T, 153) float, layout in FEATURE_DIM slices above.
    feature_mask: (..., T, 153) bool, which slots count (docs/representation.md, "Mask rules").
    R_cam2local:  (..., T, 2, 3, 3) camera -> palm frame per hand (identity where the hand is not observed).
    t_cam2local:  (..., T, 2, 3) metres.
    palm_size:    (..., T, 2) metres (1 where the hand is not observed).
    presence:     (..., T, 2) bool, hand observed in a real frame (input presence AND frame_valid).
    """

    features: torch.Tensor
    feature_mask: torch.Tensor
    R_cam2local: torch.Tensor
    t_cam2local: torch.Tensor
    palm_size: torch.Tensor
    presence: torch.Tensor


@dataclass
class HandPlacement:
    """Where decoded hands go in the camera: base->camera transform and palm size per hand.

    R_base2cam (..., 2, 3, 3), t_base2cam (..., 2, 3) metres, mean_palm_size (..., 2) metres,
    base_index (..., 2) long: the frame used as base; has_base (..., 2) bool: False when the hand was never observed
    (identity placement and the template palm size are used then, and its decoded joints are meaningless).
    """

    R_base2cam: torch.Tensor
    t_base2cam: torch.Tensor
    mean_palm_size: torch.Tensor
    base_index: torch.Tensor
    has_base: torch.Tensor


def _check_joints(joints, presence, frame_valid):
    if joints.dim() < 4 or tuple(joints.shape[-3:]) != (NUM_HANDS, NUM_JOINTS, 3):
        raise ValueError(f"joints must be (..., T, 2, 21, 3), got {tuple(joints.shape)}")
    if presence is not None and tuple(presence.shape) != tuple(joints.shape[:-2]):
        raise ValueError(f"presence must be (..., T, 2) = {tuple(joints.shape[:-2])}, got {tuple(presence.shape)}")
    if frame_valid is not None and tuple(frame_valid.shape) != tuple(joints.shape[:-3]):
        raise ValueError(f"frame_valid must be (..., T) = {tuple(joints.shape[:-3])}, got {tuple(frame_valid.shape)}")


def _observed(presence, frame_valid):
    presence = presence.bool()
    if frame_valid is None:
        return presence
    return presence & frame_valid.bool().unsqueeze(-1)


def _identity_like(R):
    return torch.eye(3, dtype=R.dtype, device=R.device).expand_as(R)


def _palm_templates(like):
    return torch.as_tensor(PALM_TEMPLATES, dtype=like.dtype, device=like.device)


def _neutral_hands(like):
    """(2, 21, 3): each side's palm template at the palm joints, other joints at the wrist."""
    hands = torch.zeros(NUM_HANDS, NUM_JOINTS, 3, dtype=like.dtype, device=like.device)
    hands[:, list(PALM_JOINTS)] = _palm_templates(like)
    return hands


def palm_frames(joints, presence=None):
    """Camera -> palm ("local") frame per hand and frame: (R (..., T, 2, 3, 3), t (..., T, 2, 3) metres).

    Kabsch (no scale, no reflection) from the observed palm joints [0, 5, 9, 13, 17] onto the side's palm template
    (skeleton.PALM_TEMPLATES), then re-centred so the wrist maps exactly to the origin. Hands absent per `presence`
    get the identity (their joints are never touched, so garbage there cannot leak into values or gradients).
    """
    _check_joints(joints, presence, None)
    palm = joints[..., list(PALM_JOINTS), :]
    templates = _palm_templates(joints)
    if presence is not None:
        palm = torch.where(presence.bool()[..., None, None], palm, templates)
    # The notes fit onto the template scaled to the observed palm size; a uniform scale of the target does not
    # change the Kabsch rotation, and the translation is re-derived below, so the unscaled template gives the same.
    R, _ = geometry.kabsch(palm, templates.expand_as(palm))
    # Re-centring: t = -wrist @ R puts the wrist exactly at the origin of the local frame.
    t = -(palm[..., :1, :] @ R).squeeze(-2)
    if presence is not None:
        present = presence.bool()
        R = torch.where(present[..., None, None], R, _identity_like(R))
        t = torch.where(present[..., None], t, torch.zeros_like(t))
    return R, t


def palm_size_of_palm(palm):
    """Palm size from the five palm joints (..., 5, 3) in PALM_JOINTS order -> (...)."""
    return (palm[..., 1:, :] - palm[..., :1, :]).norm(dim=-1).mean(dim=-1)


def _transform_to_9d(R, t):
    return torch.cat((geometry.matrix_to_rotation_6d(R), t), dim=-1)


def encode_features(joints, presence, frame_valid=None):
    """Joints (..., T, 2, 21, 3) metres -> HandFeatures with the 153-d per-frame feature.

    [0:126] local joints / per-frame palm size (joint-1 slot 0); [126:144] velocity local(t) -> local(t-1) in m x S
    (frame 0 identity); [144:153] left local -> right local in metres. Slots that do not count hold neutral values
    (0 joints, identity transforms) and are False in feature_mask.
    """
    _check_joints(joints, presence, frame_valid)
    present = _observed(presence, frame_valid)
    # Absent hands are replaced by a neutral hand so that arbitrary (even NaN) values there never reach any
    # computation or gradient.
    joints = torch.where(present[..., None, None], joints, _neutral_hands(joints))
    R, t = palm_frames(joints, present)

    sizes = torch.where(present, palm_size(joints), torch.ones_like(present, dtype=joints.dtype))
    local = geometry.apply_transform(joints, R, t) / sizes[..., None, None]
    joint_counts = present[..., None].expand(*present.shape, NUM_JOINTS).clone()
    joint_counts[..., UNUSED_JOINT] = False
    local = torch.where(joint_counts[..., None], local, torch.zeros_like(local))

    # Velocity at t: local(t) -> local(t-1), built from cam2local at t ("c->a") and t-1 ("c->b"), in m x S.
    t_scaled = HAND_SCALE * t
    R_vel, t_vel = geometry.relative_transform(R[..., 1:, :, :, :], t_scaled[..., 1:, :, :], R[..., :-1, :, :, :],
                                               t_scaled[..., :-1, :, :])
    velocity_counts = torch.cat((present[..., :1, :], present[..., 1:, :] & present[..., :-1, :]), dim=-2)
    identity = _identity_like(R[..., :1, :, :, :])
    R_vel = torch.cat((identity, R_vel), dim=-4)
    t_vel = torch.cat((torch.zeros_like(t[..., :1, :, :]), t_vel), dim=-3)
    velocity = _masked_9d(R_vel, t_vel, velocity_counts)

    both_present = present[..., 0] & present[..., 1]
    R_l2r, t_l2r = geometry.relative_transform(R[..., 0, :, :], t[..., 0, :], R[..., 1, :, :], t[..., 1, :])
    left_to_right = _masked_9d(R_l2r, t_l2r, both_present)

    features = torch.cat((local.flatten(-3), velocity.flatten(-2), left_to_right), dim=-1)
    feature_mask = torch.cat(
        (
            joint_counts[..., None].expand(*joint_counts.shape, 3).flatten(-3),
            velocity_counts[..., None].expand(*velocity_counts.shape, 9).flatten(-2),
            both_present[..., None].expand(*both_present.shape, 9),
        ),
        dim=-1,
    )
    return HandFeatures(features, feature_mask, R, t, sizes, present)


def _masked_9d(R, t, counts):
    """[6D, t] of a transform where counts is True, the identity [6D, 0] elsewhere."""
    value = _transform_to_9d(R, t)
    neutral = torch.tensor(_IDENTITY_9D, dtype=value.dtype, device=value.device)
    return torch.where(counts[..., None], value, neutral)


def _select_frame(x, index, frame_dim):
    """x[..., index, ...] along frame_dim (negative), with index an int or a (...,) tensor over x's leading dims."""
    if isinstance(index, int):
        return x.narrow(frame_dim, index % x.shape[frame_dim], 1).squeeze(frame_dim)
    index = torch.as_tensor(index, device=x.device).long()
    trailing = x.shape[x.dim() + frame_dim + 1:]
    gather_index = index.reshape(*index.shape, 1, *([1] * len(trailing))).expand(*index.shape, 1, *trailing)
    return torch.gather(x, frame_dim, gather_index).squeeze(frame_dim)


def local2base(R_cam2local, t_cam2local, base_index):
    """Per-frame transform local(t) -> local(base) as (..., T, 18): [left 6D, left t, right 6D, right t], t in m x S.

    R_cam2local (..., T, 2, 3, 3), t_cam2local (..., T, 2, 3) metres; base_index an int or a (...,) long tensor.
    It counts where the hand is present at t and at the base frame (see local2base_mask).
    """
    t_scaled = HAND_SCALE * t_cam2local
    R_base = _select_frame(R_cam2local, base_index, -4).unsqueeze(-4)
    t_base = _select_frame(t_scaled, base_index, -3).unsqueeze(-3)
    R, t = geometry.relative_transform(R_cam2local, t_scaled, R_base, t_base)
    return _transform_to_9d(R, t).flatten(-2)


def local2base_mask(presence, base_index):
    """(..., T, 18) bool: local2base slots count where the hand is present at t and at the base frame."""
    presence = presence.bool()
    counts = presence & _select_frame(presence, base_index, -2).unsqueeze(-2)
    return counts[..., None].expand(*counts.shape, 9).flatten(-2)


def accumulate_trajectory(velocity_6d, velocity_t):
    """Paper eq. 3: integrate per-frame velocities local(k) -> local(k-1) into local(k) -> base.

    velocity_6d (..., T, 6), velocity_t (..., T, 3) (m x S). Velocity 0 maps the first frame to the base frame.
    Returns R (..., T, 3, 3), t (..., T, 3): R_0 = R_vel,0, t_0 = t_vel,0; R_k = R_vel,k @ R_{k-1},
    t_k = t_vel,k @ R_{k-1} + t_{k-1}.
    """
    if velocity_6d.shape[-1] != 6 or velocity_t.shape[-1] != 3 or velocity_6d.shape[:-1] != velocity_t.shape[:-1]:
        raise ValueError(
            f"velocity_6d must be (..., T, 6) and velocity_t (..., T, 3) with equal leading dims, got "
            f"{tuple(velocity_6d.shape)} and {tuple(velocity_t.shape)}"
        )
    # A prefix scan in log2(T) batched steps instead of T small ones (a forecast has 96 frames): after the step with
    # offset s, frame k holds the composition of velocities k .. k - 2s + 1, so chaining it with frame k - 2s's
    # composition doubles the span; composition is associative, so this equals the frame-by-frame recursion.
    R, t = geometry.rotation_6d_to_matrix(velocity_6d), velocity_t
    offset = 1
    while offset < velocity_6d.shape[-2]:
        R_done, t_done = geometry.compose_transforms(R[..., offset:, :, :], t[..., offset:, :],
                                                     R[..., :-offset, :, :], t[..., :-offset, :])
        R = torch.cat((R[..., :offset, :, :], R_done), dim=-3)
        t = torch.cat((t[..., :offset, :], t_done), dim=-2)
        offset *= 2
    return R, t


def split_features(features):
    """(..., T, 153) -> local joints / palm size (..., T, 2, 21, 3), velocity 6D (..., T, 2, 6), t (..., T, 2, 3)."""
    if features.shape[-1] != FEATURE_DIM:
        raise ValueError(f"features must be (..., T, {FEATURE_DIM}), got {tuple(features.shape)}")
    local = features[..., JOINT_SLICES[0].start: JOINT_SLICES[1].stop].unflatten(-1, (NUM_HANDS, NUM_JOINTS, 3))
    velocity = features[..., VELOCITY_SLICES[0].start: VELOCITY_SLICES[1].stop].unflatten(-1, (NUM_HANDS, 9))
    return local, velocity[..., :6], velocity[..., 6:]


def _hand_trajectories(velocity_6d, velocity_t):
    """Accumulate each hand over time: inputs (..., T, 2, k) -> R (..., T, 2, 3, 3), t (..., T, 2, 3)."""
    R, t = accumulate_trajectory(velocity_6d.transpose(-2, -3), velocity_t.transpose(-2, -3))
    return R.transpose(-3, -4), t.transpose(-2, -3)


def _scaled_local_joints(local_normed, mean_palm_size, renormalize):
    """Unit-palm local joints -> local joints in m x S using the observed mean palm size."""
    if renormalize:
        own_size = palm_size(local_normed).clamp_min(torch.finfo(local_normed.dtype).eps)
        local_normed = local_normed / own_size[..., None, None]
    return local_normed * (HAND_SCALE * mean_palm_size)[..., None, :, None, None]


def local_joints_at(features, base_index):
    """features (B, T, 153), base_index (B, 2) -> each hand's local-joint slots at its base frame (B, 2, 63)."""
    rows = torch.arange(len(features), device=features.device)
    return torch.stack([features[rows, base_index[:, hand].to(features.device), JOINT_SLICES[hand]]
                        for hand in range(NUM_HANDS)], dim=1)


def anchor_local_joints(features, observed_local):
    """Predicted features (B, ..., T, 153) whose local joints continue the observed ones (B, 2, 63): observed +
    (predicted - predicted at frame 0) per hand, so the forecast starts from the observed hand shape and keeps only
    the predicted change of shape."""
    anchored = features.clone()
    observed = observed_local.reshape(len(features), *([1] * (features.dim() - 2)), NUM_HANDS, -1)
    for hand in range(NUM_HANDS):
        local = features[..., JOINT_SLICES[hand]]
        anchored[..., JOINT_SLICES[hand]] = observed[..., hand, :].to(local.dtype) + local - local[..., :1, :]
    return anchored


def decode_features(features, R_base2cam, t_base2cam, mean_palm_size, renormalize=True):
    """Predicted features (..., T, 153), frame 0 directly after the base frame -> camera joints (..., T, 2, 21, 3).

    Per hand (method-notes 1.5): local joints (re-normalised to unit palm size when `renormalize`) x mean palm size,
    placed with the trajectory accumulated from the velocity slots (eq. 3), then base -> camera.
    R_base2cam (..., 2, 3, 3), t_base2cam (..., 2, 3) metres, mean_palm_size (..., 2) metres. The left->right
    slots are not used.
    """
    local_normed, velocity_6d, velocity_t = split_features(features)
    R_traj, t_traj = _hand_trajectories(velocity_6d, velocity_t)
    local_scaled = _scaled_local_joints(local_normed, mean_palm_size, renormalize)
    # local -> base -> camera chained per frame first, so the joints are transformed once (m x S -> metres)
    R_base2cam, t_base2cam = R_base2cam.unsqueeze(-4), HAND_SCALE * t_base2cam.unsqueeze(-3)
    R_local2cam, t_local2cam = geometry.compose_transforms(R_traj, t_traj, R_base2cam, t_base2cam)
    return geometry.apply_transform(local_scaled, R_local2cam, t_local2cam) / HAND_SCALE


def _mean_palm_size(sizes, present):
    """Mean over frames where present (..., T, 2) -> (..., 2); the template palm size for never-observed hands."""
    weights = present.to(sizes.dtype)
    count = weights.sum(-2)
    template_size = palm_size_of_palm(_palm_templates(sizes))
    mean = (sizes * weights).sum(-2) / count.clamp_min(1.0)
    return torch.where(count > 0, mean, template_size)


def _placement_at(hand_features, base_index):
    """HandPlacement with the base at base_index (..., 2) per hand."""
    present = hand_features.presence
    has_base = present.any(dim=-2)
    R_base = _select_hand_frame(hand_features.R_cam2local, base_index, 2)
    t_base = _select_hand_frame(hand_features.t_cam2local, base_index, 1)
    R_base2cam, t_base2cam = geometry.invert_transform(R_base, t_base)
    mean_size = _mean_palm_size(hand_features.palm_size, present)
    return HandPlacement(R_base2cam, t_base2cam, mean_size, base_index, has_base)


def _select_hand_frame(x, index, trailing_dims):
    """x (..., T, 2, *trailing) at frame index[..., h] for each hand h -> (..., 2, *trailing)."""
    trailing = x.shape[x.dim() - trailing_dims:]
    gather_index = index.reshape(*index.shape[:-1], 1, NUM_HANDS, *([1] * trailing_dims))
    gather_index = gather_index.expand(*index.shape[:-1], 1, NUM_HANDS, *trailing)
    frame_dim = -2 - trailing_dims
    return torch.gather(x, frame_dim, gather_index).squeeze(frame_dim)


def _last_present_index(present):
    """(..., T, 2) bool -> (..., 2) index of the last True frame (0 when there is none)."""
    frames = torch.arange(present.shape[-2], device=present.device)[:, None]
    return torch.where(present, frames, torch.full_like(frames, -1)).amax(dim=-2).clamp_min(0)


def _first_present_index(present):
    """(..., T, 2) bool -> (..., 2) index of the first True frame (0 when there is none)."""
    num_frames = present.shape[-2]
    frames = torch.arange(num_frames, device=present.device)[:, None]
    first = torch.where(present, frames, torch.full_like(frames, num_frames)).amin(dim=-2)
    return torch.where(first < num_frames, first, torch.zeros_like(first))


def observed_placement(joints, presence, frame_valid=None):
    """Placement for decoding a prediction that follows an observation (per hand).

    base = the last real frame where the hand is present (if it vanished before the end of the observation, it is
    assumed to have stayed there); mean palm size = mean over the real frames where it is present.
    """
    return placement_from_features(encode_features(joints, presence, frame_valid))


def placement_from_features(hand_features):
    """observed_placement from an already encoded observation."""
    return _placement_at(hand_features, _last_present_index(hand_features.presence))


def decode_observed_clip(features, reference, renormalize=True):
    """Refined features (..., T, 153) of an observed clip -> camera joints (..., T, 2, 21, 3) metres.

    `reference` is the HandFeatures of the input clip. Per hand, the trajectory accumulated from the refined
    velocities (local(t) -> local(s), s = the first frame where the hand is present in the input) is placed in the
    camera by the one rigid transform that agrees best with the input's palm frames over ALL the frames where the
    hand is present: the chordal mean of the per-frame placements and the mean of their translations. The authors
    pin the trajectory to the input's palm frame at the first frame and bend it onto the last one (method-notes 1.5,
    "consistent goal"); with estimated inputs that copies the estimator's noise of those two frames into every refined
    frame, which made refined poses worse than their input on the synthetic benchmark (docs/representation.md).
    Hand size = the input's mean palm size.
    """
    local_normed, velocity_6d, velocity_t = split_features(features)
    present = reference.presence
    start = _first_present_index(present)

    # Velocity k maps local(k) -> local(k-1); integrating from frame 0 with an identity first step gives
    # local(t) -> local(0); re-basing at the start frame s gives local(t) -> local(s).
    identity_6d = torch.tensor(_IDENTITY_6D, dtype=features.dtype, device=features.device)
    velocity_6d = torch.cat((identity_6d.expand_as(velocity_6d[..., :1, :, :]), velocity_6d[..., 1:, :, :]), -3)
    velocity_t = torch.cat((torch.zeros_like(velocity_t[..., :1, :, :]), velocity_t[..., 1:, :, :]), -3)
    R_to0, t_to0 = _hand_trajectories(velocity_6d, velocity_t)
    R_s0, t_s0 = geometry.invert_transform(_select_hand_frame(R_to0, start, 2), _select_hand_frame(t_to0, start, 1))
    R_traj, t_traj = geometry.compose_transforms(R_to0, t_to0, R_s0.unsqueeze(-4), t_s0.unsqueeze(-3))

    # Each present frame t' implies a placement local(s) -> camera: back along the refined trajectory to local(t'),
    # then the input's local(t') -> camera (all in m x S). Frame t is placed with the mean of these over the present
    # frames t' with |t - t'| <= radius: chordal mean rotation, and the translation that puts the trajectory's
    # local-frame origins t_traj(t') on average onto the input's t_local2cam(t').
    R_local2cam, t_local2cam = geometry.invert_transform(reference.R_cam2local, HAND_SCALE * reference.t_cam2local)
    R_per_frame, _ = geometry.compose_transforms(
        *geometry.invert_transform(R_traj, t_traj), R_local2cam, t_local2cam)
    frames = torch.arange(features.shape[-2], device=features.device)
    window = ((frames[:, None] - frames[None, :]).abs() <= PLACEMENT_RADIUS_FRAMES).to(features.dtype)  # (t, t')
    weights = window[..., :, :, None] * present.to(features.dtype).unsqueeze(-3)  # (..., t, t', 2)
    R_place = geometry.mean_rotation(R_per_frame.unsqueeze(-5), weights, dim=-2)  # (..., t, 2, 3, 3)
    total = weights.sum(-2).clamp_min(1.0)[..., None]  # (..., t, 2, 1)
    mean_t_local2cam = torch.einsum("...tsh,...shc->...thc", weights, t_local2cam) / total
    mean_t_traj = torch.einsum("...tsh,...shc->...thc", weights, t_traj) / total
    t_place = mean_t_local2cam - (mean_t_traj.unsqueeze(-2) @ R_place).squeeze(-2)

    mean_palm_size = _mean_palm_size(reference.palm_size, present)
    local_scaled = _scaled_local_joints(local_normed, mean_palm_size, renormalize)
    joints_start = geometry.apply_transform(local_scaled, R_traj, t_traj)
    return (joints_start @ R_place + t_place.unsqueeze(-2)) / HAND_SCALE
