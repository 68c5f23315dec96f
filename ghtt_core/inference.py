"""Test-time flows of G-HTT without ROS: refinement, action recognition and diverse motion prediction.

Method-notes sections 1.5, 4.5 and 5. Every entry point is batched, runs under no_grad on the model's device and
returns tensors on that device. Geometry (features <-> joints) runs in float64, the networks in float32.

An observation is a batch of B sequences of K consecutive clips of N = 16 frames: joints (B, K, N, 2, 21, 3) metres
in the camera frame, presence (B, K, N, 2), frame_valid (B, K, N) (False = a filled-in frame, e.g. a dropped camera
frame). `encode_observation` runs the P-Enc once on every clip; refinement, recognition and both prediction modes
start from that encoding. The P-Enc and the features of a clip depend on that clip alone (its first frame has identity
velocity), so `encode_clips` + `observation_from_clips` let a streaming caller keep the encodings of completed clips
and encode only the new one per result (ghtt_core.pipeline does); only the placement looks at the whole observation.

Sampling: sample 0 always decodes the means (deterministic); samples 1..S-1 draw latents with std x temperature
(method-notes 5.4) from the given torch.Generator, so a seeded generator makes every sample reproducible. A sequence
of B generators, one per item, gives each item of a batch the samples it would get alone with its generator: several
camera streams can share one forward pass without changing their results.
"""

from __future__ import annotations

import contextlib
import dataclasses
from dataclasses import dataclass

import torch

from ghtt_core import forecast_calibration
from ghtt_core.action_block import ActionInputs, following_phases
from ghtt_core.checkpoint import ModelCheckpoint
from ghtt_core.nn import Generators, VAEEncoding, draw_latents, standard_normal
from ghtt_core.pose_block import PoseEncoding
from ghtt_core.representation import (
    FEATURE_DIM,
    JOINT_SLICES,
    LEFT_TO_RIGHT_SLICE,
    VELOCITY_SLICES,
    HandFeatures,
    HandPlacement,
    anchor_local_joints,
    decode_features,
    decode_observed_clip,
    encode_features,
    local_joints_at,
    placement_from_features,
)
from ghtt_core.results import Hypothesis
from ghtt_core.skeleton import FINGERS, NUM_HANDS, NUM_JOINTS, UNUSED_JOINT, palm_size

# A hand last seen at most this many frames before the end of the observation is still predicted, anchored at the
# frame where it was last seen (it is assumed to have stayed there during the short dropout).
DEFAULT_END_TOLERANCE_FRAMES = 4
DEFAULT_TEMPERATURE = 5.0  # the authors' test-time std factor

_THUMB_MCP = FINGERS["thumb"][1]
_GEOMETRY_DTYPE = torch.float64
_IDENTITY_VELOCITY = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0)  # 6D identity rotation, zero translation


@dataclass
class ClipEncodings:
    """What the P-Enc gives for K clips (B items), each clip encoded on its own; fields as in EncodedObservation.

    Every field depends on its own clip only, so the record of an observation is the concatenation of the records of
    its clips along K (`concat`), wherever and whenever each was computed.
    """

    hand_features: HandFeatures
    encoder_valid: torch.Tensor
    clip_valid: torch.Tensor
    mu: torch.Tensor
    logvar: torch.Tensor
    tokens: torch.Tensor
    refined: torch.Tensor

    @property
    def num_clips(self) -> int:
        return self.clip_valid.shape[1]

    def clips(self, start: int, stop: int) -> "ClipEncodings":
        """Clips start..stop-1 (copies, so a kept slice does not hold on to the whole batch)."""
        return ClipEncodings(**{name: _map_clip_fields(getattr(self, name), lambda x: x[:, start:stop].clone())
                                for name in ClipEncodings.__dataclass_fields__})

    @staticmethod
    def concat(parts) -> "ClipEncodings":
        """Records of consecutive clips (same B) -> one record of all their clips, in order."""
        parts = list(parts)
        if not parts:
            raise ValueError("an observation needs at least one clip")
        return ClipEncodings(**{
            name: _concat_fields([getattr(part, name) for part in parts], dim=1)
            for name in ClipEncodings.__dataclass_fields__
        })


def _map_clip_fields(value, function):
    if isinstance(value, HandFeatures):
        return HandFeatures(*(function(getattr(value, name)) for name in HandFeatures.__dataclass_fields__))
    return function(value)


def _concat_fields(values, dim: int):
    """Records of the same type (tensors, None, or dataclasses of them, nested) -> one, concatenated along dim (1:
    clips of the same items, 0: items)."""
    if len(values) == 1 or values[0] is None:
        return values[0]
    if dataclasses.is_dataclass(values[0]):
        return type(values[0])(*(_concat_fields([getattr(value, field.name) for value in values], dim)
                                 for field in dataclasses.fields(values[0])))
    return torch.cat(values, dim=dim)


@dataclass
class EncodedObservation(ClipEncodings):
    """P-Enc outputs for every clip of an observation (B items, K clips, N frames per clip), plus where its
    predictions go.

    hand_features: per-clip HandFeatures (leading dims (B, K)); each clip's first frame has identity velocity.
    encoder_valid: (B, K, N) frames the P-Enc attends to: real frames with at least one hand.
    clip_valid:    (B, K) clips with at least one such frame; the others have zero mu/tokens/refined.
    mu, logvar:    (B, K, d) mid-level posterior per clip (mu = the mid-level fed to the A-Block).
    tokens:        (B, K, N, d) P-Enc frame tokens (the P.a skip memory).
    refined:       (B, K, N, 153) output head on the frame tokens.
    placement:     where predictions go: per hand, base = the last frame where it is present in the whole
                   observation, mean palm size over all its present frames.
    hand_present_at_end: (B, 2) hands seen within the end tolerance: only these are predicted.
    """

    placement: HandPlacement
    hand_present_at_end: torch.Tensor

    def last_clip_encoding(self) -> PoseEncoding:
        """The P-Enc outputs of clip K-1 in the PoseBlock's own record (for the skip-memory decoder)."""
        return PoseEncoding(
            mu=self.mu[:, -1],
            logvar=self.logvar[:, -1],
            tokens=self.tokens[:, -1],
            refined=self.refined[:, -1],
            frame_valid=self.encoder_valid[:, -1],
        )


@dataclass
class Refinement:
    """joints (B, K, N, 2, 21, 3) float32 metres (NaN where the hand is absent), presence (B, K, N, 2), mu (B, K, d)."""

    joints: torch.Tensor
    presence: torch.Tensor
    mu: torch.Tensor


@dataclass
class ActionScores:
    """Top-k labels per item: scores (B, k) (softmax of cos / tau over the taxonomy, descending), indices (B, k),
    latent = mu_A (B, d); encoding = the whole A-Enc output, which predict_action_guided can reuse."""

    scores: torch.Tensor
    indices: torch.Tensor
    latent: torch.Tensor
    encoding: VAEEncoding


@dataclass
class MotionForecast:
    """joints (B, S, T, 2, 21, 3) float32 metres, camera frame; frame i follows the last observed frame by i + 1
    frame periods. Sample 0 decodes the means. hand_present (B, 2): hands not predicted are NaN.
    trust (B, 2): how far the forecast was kept (1) or shrunk towards holding the last pose (towards 0) by the
    checkpoint's forecast calibration (ghtt_core.calibration); None when no calibration was applied."""

    joints: torch.Tensor
    hand_present: torch.Tensor
    trust: torch.Tensor | None = None


def batch_observations(observations) -> EncodedObservation:
    """Observations with the same number of clips (e.g. one per camera stream) -> one batch, their items in order."""
    observations = list(observations)
    if not observations or len({observation.num_clips for observation in observations}) != 1:
        raise ValueError("a batch needs at least one observation, all with the same number of clips")
    return _concat_fields(observations, dim=0)


def _item(forecast: MotionForecast, index: int) -> MotionForecast:
    return MotionForecast(*(None if value is None else value[index:index + 1]
                            for value in (forecast.joints, forecast.hand_present, forecast.trust)))


def _check_observation(joints, presence, frame_valid, clip_len):
    if joints.dim() != 6 or tuple(joints.shape[2:]) != (clip_len, NUM_HANDS, NUM_JOINTS, 3):
        raise ValueError(f"observation joints must be (B, K, {clip_len}, 2, 21, 3), got {tuple(joints.shape)}")
    if tuple(presence.shape) != tuple(joints.shape[:4]) or presence.dtype != torch.bool:
        raise ValueError(
            f"presence must be bool {tuple(joints.shape[:4])}, got {presence.dtype} {tuple(presence.shape)}"
        )
    if tuple(frame_valid.shape) != tuple(joints.shape[:3]) or frame_valid.dtype != torch.bool:
        raise ValueError(
            f"frame_valid must be bool {tuple(joints.shape[:3])}, got {frame_valid.dtype} {tuple(frame_valid.shape)}"
        )
    counted = presence & frame_valid.unsqueeze(-1)
    if not torch.isfinite(joints[counted]).all():
        raise ValueError("observation joints contain NaN or inf for a hand marked present in a valid frame")


def _check_end_tolerance(end_tolerance_frames: int):
    if end_tolerance_frames < 0:
        raise ValueError(f"end_tolerance_frames must be >= 0, got {end_tolerance_frames}")


def _flatten_clips(features: HandFeatures) -> HandFeatures:
    """(B, K, N, ...) -> (B, K*N, ...). The velocity slots keep their per-clip values (identity at clip starts);
    only the camera placement (palm frames, sizes, presence) is read from the result."""
    return HandFeatures(*(getattr(features, name).flatten(1, 2) for name in HandFeatures.__dataclass_fields__))


def _present_at_end(placement: HandPlacement, num_frames: int, tolerance: int) -> torch.Tensor:
    return placement.has_base & (placement.base_index >= num_frames - 1 - tolerance)


def _output_joints(joints: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
    """Decoded joints -> what leaves ghtt_core: float32, NaN for hands not present (present broadcasts as (..., 2)).

    The network never learns joint 1 (thumb CMC, loss weight 0), so its decoded value is arbitrary; it is put
    halfway between the wrist and the thumb MCP, so that no consumer sees a stray point.
    """
    joints = joints.clone()
    joints[..., UNUSED_JOINT, :] = 0.5 * (joints[..., 0, :] + joints[..., _THUMB_MCP, :])
    return torch.where(present[..., None, None], joints, torch.full_like(joints, float("nan"))).float()


def _repeat_rows(x: torch.Tensor, times: int) -> torch.Tensor:
    return x.repeat_interleave(times, dim=0)


def _draw_per_sample(mu, logvar, num_samples, temperature, generator: Generators):
    """Rows b * S + s of (B * S, d): the mean for s = 0, mu + eps * std * temperature for the others."""
    eps = standard_normal((len(mu) // num_samples, num_samples, mu.shape[-1]), generator, mu.device, mu.dtype)
    eps[:, 0] = 0.0
    return mu + eps.flatten(0, 1) * torch.exp(0.5 * logvar) * temperature


def _unit_palm_feedback(predicted: torch.Tensor, hand_predicted: torch.Tensor):
    """Decoded clip features (M, N, 153) -> the P-Enc input of the next P.a iteration and its mask.

    Local joints are re-normalised to unit predicted palm size and the first frame's velocity is set to identity,
    as for any encoded clip (method-notes 5.2). Hands that are not predicted are masked out.
    """
    local = predicted[..., : JOINT_SLICES[-1].stop].unflatten(-1, (NUM_HANDS, NUM_JOINTS, 3))
    own_size = palm_size(local).clamp_min(torch.finfo(local.dtype).eps)
    velocities = predicted[..., VELOCITY_SLICES[0].start: LEFT_TO_RIGHT_SLICE.start].clone()
    velocities[:, 0] = predicted.new_tensor(_IDENTITY_VELOCITY * NUM_HANDS)
    features = torch.cat(
        [(local / own_size[..., None, None]).flatten(-3), velocities, predicted[..., LEFT_TO_RIGHT_SLICE]], dim=-1
    )
    joint_counts = hand_predicted[:, None, :, None].expand(-1, predicted.shape[1], -1, NUM_JOINTS).clone()
    joint_counts[..., UNUSED_JOINT] = False
    velocity_counts = hand_predicted[:, None, :].expand(-1, predicted.shape[1], -1)
    both = (hand_predicted[:, 0] & hand_predicted[:, 1])[:, None, None].expand(-1, predicted.shape[1], 9)
    mask = torch.cat(
        [
            joint_counts.repeat_interleave(3, dim=-1).flatten(-2),
            velocity_counts.repeat_interleave(9, dim=-1),
            both,
        ],
        dim=-1,
    )
    return features, mask


AUTOCAST_DTYPES = ("bfloat16", "float16")


class GHTTInference:
    """Test-time flows on one loaded model (a ghtt_core.checkpoint.ModelCheckpoint).

    autocast "bfloat16" or "float16": the networks run under torch.autocast in that precision (on a GPU, or on a CPU
    with bf16/fp16 matmul units); their outputs are turned back into float32 and the geometry stays float64, so only
    the network rounding changes (docs/inference.md gives the error of the shipped model).
    """

    def __init__(self, model: ModelCheckpoint, device: str | torch.device | None = None, autocast: str | None = None):
        if autocast is not None and autocast not in AUTOCAST_DTYPES:
            raise ValueError(f"autocast must be None or one of {AUTOCAST_DTYPES}, got {autocast!r}")
        self.autocast_dtype = None if autocast is None else getattr(torch, autocast)
        self.model = model
        self.device = torch.device(device) if device is not None else next(model.pose_block.parameters()).device
        self.pose_block = model.pose_block.to(self.device).eval()
        self.action_block = None if model.action_block is None else model.action_block.to(self.device).eval()
        self.clip_len = model.config.pose.clip_len
        self.label_embeddings = None
        if model.label_embeddings is not None:
            self.label_embeddings = model.label_embeddings.to(self.device)
        self.calibration = model.calibration

    def _networks(self):
        """The context of every network call: autocast in the chosen precision, or nothing."""
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast_dtype)

    @property
    def default_temperature(self) -> float:
        """The sampling temperature whose spread was calibrated (ghtt calibrate), else the authors' 5."""
        return DEFAULT_TEMPERATURE if self.calibration is None else self.calibration.temperature

    # ---- observation -----------------------------------------------------------------------------------------

    @torch.no_grad()
    def encode_observation(
        self, joints, presence, frame_valid=None, end_tolerance_frames: int = DEFAULT_END_TOLERANCE_FRAMES
    ) -> EncodedObservation:
        """Run the P-Enc on every clip. joints (B, K, N, 2, 21, 3), presence (B, K, N, 2), frame_valid (B, K, N)."""
        _check_end_tolerance(end_tolerance_frames)
        return self.observation_from_clips(self.encode_clips(joints, presence, frame_valid), end_tolerance_frames)

    @torch.no_grad()
    def encode_clips(self, joints, presence, frame_valid=None) -> ClipEncodings:
        """Features and P-Enc outputs of K clips, each on its own (inputs as encode_observation); one P-Enc batch."""
        joints = torch.as_tensor(joints, device=self.device, dtype=_GEOMETRY_DTYPE)
        presence = torch.as_tensor(presence, device=self.device, dtype=torch.bool)
        if frame_valid is None:
            frame_valid = torch.ones(joints.shape[:3], dtype=torch.bool, device=self.device)
        frame_valid = torch.as_tensor(frame_valid, device=self.device, dtype=torch.bool)
        _check_observation(joints, presence, frame_valid, self.clip_len)
        if joints.shape[1] < 1:
            raise ValueError("an observation needs at least one clip")

        hand_features = encode_features(joints, presence, frame_valid)
        encoder_valid = hand_features.presence.any(dim=-1)
        clip_valid = encoder_valid.any(dim=-1)
        batch, clips, frames = encoder_valid.shape
        d = self.pose_block.d_model
        mu = torch.zeros(batch, clips, d, device=self.device)
        logvar = torch.zeros_like(mu)
        tokens = torch.zeros(batch, clips, frames, d, device=self.device)
        refined = torch.zeros(batch, clips, frames, FEATURE_DIM, device=self.device)
        if clip_valid.any():
            # Clips without a single hand carry no information; the P-Enc needs at least one frame to attend to.
            with self._networks():
                encoding = self.pose_block.encode(
                    hand_features.features[clip_valid].float(),
                    hand_features.feature_mask[clip_valid],
                    encoder_valid[clip_valid],
                )
            mu[clip_valid], logvar[clip_valid] = encoding.mu.float(), encoding.logvar.float()
            tokens[clip_valid], refined[clip_valid] = encoding.tokens.float(), encoding.refined.float()
        return ClipEncodings(hand_features, encoder_valid, clip_valid, mu, logvar, tokens, refined)

    @torch.no_grad()
    def observation_from_clips(
        self, clips, end_tolerance_frames: int = DEFAULT_END_TOLERANCE_FRAMES
    ) -> EncodedObservation:
        """The observation made of consecutive clips: one ClipEncodings or a sequence of them (oldest first, e.g.
        kept from earlier results plus the newest clip). Equal to encode_observation on all their frames: the
        placement and hand_present_at_end are computed here from the features of every frame."""
        _check_end_tolerance(end_tolerance_frames)
        encoded = clips if isinstance(clips, ClipEncodings) else ClipEncodings.concat(clips)
        placement = placement_from_features(_flatten_clips(encoded.hand_features))
        num_frames = encoded.encoder_valid.shape[1] * encoded.encoder_valid.shape[2]
        return EncodedObservation(
            **{name: getattr(encoded, name) for name in ClipEncodings.__dataclass_fields__},
            placement=placement,
            hand_present_at_end=_present_at_end(placement, num_frames, end_tolerance_frames),
        )

    # ---- refinement ------------------------------------------------------------------------------------------

    @torch.no_grad()
    def refine_observation(self, observation: EncodedObservation, last_clips: int | None = None) -> Refinement:
        """Refined camera joints of every clip, placed by all of the clip's input palm frames
        (representation.decode_observed_clip). last_clips: only the newest clips (K = last_clips), the same values
        as their part of the whole refinement, since every clip is refined on its own."""
        newest = slice(None) if last_clips is None else slice(-last_clips, None)
        reference = _map_clip_fields(observation.hand_features, lambda x: x[:, newest])
        joints = decode_observed_clip(observation.refined[:, newest].to(_GEOMETRY_DTYPE), reference)
        presence = reference.presence
        return Refinement(joints=_output_joints(joints, presence), presence=presence, mu=observation.mu[:, newest])

    def refine(self, joints, presence, frame_valid=None) -> Refinement:
        """One clip per item: joints (B, N, 2, 21, 3), presence (B, N, 2) -> joints (B, N, 2, 21, 3), mu (B, d)."""
        joints = torch.as_tensor(joints)
        if joints.dim() != 5:
            raise ValueError(f"refine takes clips (B, {self.clip_len}, 2, 21, 3), got {tuple(joints.shape)}")
        presence = torch.as_tensor(presence).unsqueeze(1)
        frame_valid = None if frame_valid is None else torch.as_tensor(frame_valid).unsqueeze(1)
        refinement = self.refine_observation(self.encode_observation(joints.unsqueeze(1), presence, frame_valid))
        return Refinement(refinement.joints[:, 0], refinement.presence[:, 0], refinement.mu[:, 0])

    # ---- recognition -----------------------------------------------------------------------------------------

    def action_hypothesis(self, index: int, score: float) -> Hypothesis:
        """Taxonomy entry `index` with its score, as the record the ROS side publishes."""
        action = self.model.taxonomy.actions[index]
        return Hypothesis(label=action.label, verb=action.verb, noun=action.noun, score=float(score))

    def _require_action_block(self, what: str):
        if self.action_block is None or self.label_embeddings is None:
            raise ValueError(f"{what} needs a full checkpoint (P-Block + A-Block + label embeddings)")

    def _action_inputs(self, observation: EncodedObservation, object_names, phase) -> ActionInputs:
        batch, clips = observation.clip_valid.shape
        if phase is None:
            phase = torch.arange(clips, device=self.device).expand(batch, clips)
        phase = torch.as_tensor(phase, device=self.device)
        object_embeddings, object_known = self._object_tokens(object_names, batch, clips)
        return ActionInputs(
            mids=observation.mu,
            clip_valid=observation.clip_valid,
            phase=phase,
            object_embeddings=object_embeddings,
            object_known=object_known,
        )

    def _object_tokens(self, object_names, batch, clips):
        """Nested (B, K) object names (None or a name outside the taxonomy = the unknown-object token)."""
        if object_names is None:
            return None, None
        if len(object_names) != batch or any(len(row) != clips for row in object_names):
            raise ValueError(f"object_names must be a ({batch}, {clips}) nested list of names or None")
        objects = self.model.taxonomy.objects
        indices = torch.tensor(
            [[objects.index(name) if name in objects else -1 for name in row] for row in object_names],
            device=self.device,
        )
        known = indices >= 0
        return self.label_embeddings.objects[indices.clamp_min(0)], known

    @torch.no_grad()
    def recognize(self, observation: EncodedObservation, object_names=None, phase=None, top_k: int = 5) -> ActionScores:
        """A-Enc over the clip mid-levels (+ object tokens and phase codes) -> top-k labels and mu_A.

        object_names: (B, K) nested list of names or None; phase (B, K) int, default 0..K-1 (the observation is taken
        to start at the action start).
        """
        self._require_action_block("action recognition")
        if top_k < 1:
            raise ValueError(f"top_k must be >= 1, got {top_k}")
        with self._networks():
            encoding = self.action_block.encode(self._action_inputs(observation, object_names, phase))
        latent = encoding.mu.float()
        scores, indices = self.action_block.alignment.top_k(latent, self.label_embeddings.actions, top_k)
        return ActionScores(scores=scores, indices=indices, latent=latent, encoding=encoding)

    # ---- prediction ------------------------------------------------------------------------------------------

    def _check_horizon(self, horizon_frames: int, num_samples: int) -> int:
        if horizon_frames < 1:
            raise ValueError(f"horizon_frames must be >= 1, got {horizon_frames}")
        if num_samples < 1:
            raise ValueError(f"num_samples must be >= 1, got {num_samples}")
        return -(-horizon_frames // self.clip_len)

    @staticmethod
    def _decode_forecast(placement: HandPlacement, present, features, horizon_frames, observed_local=None
                         ) -> MotionForecast:
        """features (B, S, C, N, 153) of consecutive future clips -> camera joints of the first horizon frames,
        NaN for hands not in `present` (B, 2). observed_local (B, 2, 63): anchor the hand shapes on these (the
        last observed local joints; see PoseBlockConfig.anchor_forecast_shape)."""
        features = features.flatten(2, 3)[:, :, :horizon_frames].to(_GEOMETRY_DTYPE)
        if observed_local is not None:
            features = anchor_local_joints(features, observed_local)
        joints = decode_features(
            features,
            placement.R_base2cam.unsqueeze(1),
            placement.t_base2cam.unsqueeze(1),
            placement.mean_palm_size.unsqueeze(1),
        )
        return MotionForecast(joints=_output_joints(joints, present[:, None, None]), hand_present=present)

    def _calibrated(self, observation: EncodedObservation, forecast: MotionForecast, calibrated: bool
                    ) -> MotionForecast:
        """Apply the checkpoint's forecast calibration (horizon gain x trust, towards holding the last pose)."""
        if not calibrated or self.calibration is None:
            return forecast
        present = forecast.hand_present
        trust = self.calibration.trust(forecast_calibration.observation_residual(observation))
        trust = torch.where(present, torch.nan_to_num(trust, nan=0.0), torch.full_like(trust, float("nan")))
        frames = forecast.joints.shape[2]
        factor = self.calibration.gain(frames, self.device)[None, :, None] * torch.nan_to_num(trust)[:, None, :]
        hold = forecast_calibration.hold_joints(observation)
        joints = forecast_calibration.shrink_towards_hold(forecast.joints.to(_GEOMETRY_DTYPE), hold, factor)
        return MotionForecast(joints=_output_joints(joints, present[:, None, None]), hand_present=present,
                              trust=trust.float())

    @torch.no_grad()
    def predict_action_guided(
        self,
        observation: EncodedObservation,
        object_names=None,
        phase=None,
        num_samples: int = 20,
        horizon_frames: int = 96,
        temperature: float | None = None,
        generator: Generators = None,
        action_label: str | None = None,
        calibrated: bool = True,
        action_encoding: VAEEncoding | None = None,
    ) -> MotionForecast:
        """P.b with gt_ite0=False (method-notes 4.5): P-Enc -> A-Enc -> A-Dec -> P-Dec, memory = one mid-level.

        Future clip 0 = P-Dec of the last observed clip's mid-level (sampled for samples >= 1), so the forecast
        starts right after the observation; A-Dec mid-level j decodes into future clip j + 1. Velocities are
        integrated continuously from the observation's base frame. action_label: action-controlled generation
        (the projected label embedding replaces mu_A as the A-Dec memory). temperature None: the calibrated one
        (default_temperature). calibrated: apply the checkpoint's forecast calibration, if it has one.
        action_encoding: ActionScores.encoding of `recognize` on this observation with the same object_names and
        phase, so a caller that recognizes and predicts runs the A-Enc once.
        """
        self._require_action_block("action-guided prediction")
        temperature = self.default_temperature if temperature is None else temperature
        num_clips = self._check_horizon(horizon_frames, num_samples)
        if num_clips - 1 > self.action_block.cfg.max_clips:
            raise ValueError(
                f"horizon_frames {horizon_frames} needs {num_clips - 1} A-Dec clips; the A-Block predicts at most "
                f"{self.action_block.cfg.max_clips}"
            )
        last = observation.last_clip_encoding()
        mids = [draw_latents(last.mu, last.logvar, num_samples, temperature, generator).unsqueeze(2)]  # (B, S, 1, d)
        if num_clips > 1:
            inputs = self._action_inputs(observation, object_names, phase)
            action_embedding = None
            if action_label is not None:
                index = self.model.taxonomy.action_index(action_label)
                action_embedding = self.label_embeddings.actions[index].expand(len(inputs.mids), -1)
            with self._networks():
                mids.append(self.action_block.predict_midlevels(
                    inputs,
                    following_phases(inputs, num_clips - 1),
                    num_samples=num_samples,
                    temperature=temperature,
                    action_embedding=action_embedding,
                    generator=generator,
                    encoding=action_encoding,
                ).float())  # (B, S, C-1, d)
        forecast = self.decode_midlevels(observation, torch.cat(mids, dim=2), horizon_frames)
        return self._calibrated(observation, forecast, calibrated)

    @torch.no_grad()
    def decode_midlevels(self, observation: EncodedObservation, mids: torch.Tensor, horizon_frames: int
                         ) -> MotionForecast:
        """mids (B, S, C, d): mid-level c decodes into future clip c (one P-Dec pass for all of them); the clips are
        integrated continuously from the observation's base frame and cut to horizon_frames."""
        with self._networks():
            future = self.pose_block.decode_mid(mids).float()
        return self._decode_forecast(observation.placement, observation.hand_present_at_end, future, horizon_frames,
                                     self._shape_anchor(observation))

    def _shape_anchor(self, observation: EncodedObservation) -> torch.Tensor | None:
        """The observed local joints forecasts are anchored on, or None (the authors' decoding)."""
        if not self.model.config.pose.anchor_forecast_shape:
            return None
        return local_joints_at(observation.hand_features.features.flatten(1, 2), observation.placement.base_index)

    @torch.no_grad()
    def predict_streams(self, observations, object_names=None, generators=None, action_encodings=None,
                        **options) -> list[MotionForecast]:
        """P.b for several independent streams in one forward pass per history length (not one per stream).

        observations: one EncodedObservation of one item per stream; object_names: per stream its (1, K) nested
        names or None; generators: one per stream, or None; action_encodings: per stream the A-Enc output of its
        recognition (ActionScores.encoding) to reuse, or None. options: as predict_action_guided. Each stream gets
        what predict_action_guided gives it alone with its generator.
        """
        count = len(observations)
        object_names = [None] * count if object_names is None else list(object_names)
        generators = [None] * count if generators is None else list(generators)
        if len(object_names) != count or len(generators) != count:
            raise ValueError(f"{count} streams need {count} object name lists and generators")
        if any(len(observation.clip_valid) != 1 for observation in observations):
            raise ValueError("predict_streams takes one observation of one item per stream")
        if None in generators and any(generator is not None for generator in generators):
            raise ValueError("give every stream a generator, or none")
        encodings = [None] * count if action_encodings is None else list(action_encodings)
        if len(encodings) != count or (None in encodings and any(e is not None for e in encodings)):
            raise ValueError(f"give each of the {count} streams an action encoding, or none")
        results = [None] * count
        for clips in sorted({observation.num_clips for observation in observations}):
            group = [i for i, observation in enumerate(observations) if observation.num_clips == clips]
            # A stream without object names gets the unknown-object token everywhere, as with object_names=None.
            names = [row for i in group for row in (object_names[i] or [[None] * clips])]
            forecast = self.predict_action_guided(
                batch_observations(observations[i] for i in group), names,
                generator=None if generators[0] is None else [generators[i] for i in group],
                action_encoding=None if encodings[0] is None else _concat_fields([encodings[i] for i in group], dim=0),
                **options,
            )
            for position, i in enumerate(group):
                results[i] = _item(forecast, position)
        return results

    def generate_for_action(self, observation: EncodedObservation, action_label: str, **options) -> MotionForecast:
        """Action-controlled generation (gt_action_for_dec): P.b with the A-Dec driven by the label's embedding."""
        return self.predict_action_guided(observation, action_label=action_label, **options)

    @torch.no_grad()
    def predict_pose_only(
        self,
        observation: EncodedObservation,
        num_samples: int = 20,
        horizon_frames: int = 96,
        temperature: float | None = None,
        generator: Generators = None,
        calibrated: bool = True,
    ) -> MotionForecast:
        """P.a (method-notes 5.2): the P-Block alone, one clip at a time with memory [m, e_1..e_N].

        Each decoded clip is re-normalised and fed back as the next P-Enc input; m is the mean for sample 0 and a
        draw with std x temperature for the others, at every iteration. Each clip's first velocity maps onto the
        previous clip's last frame, so integrating the concatenated clips from the observation's base frame is
        the same as chaining base->camera across iterations. temperature and calibrated: as in predict_action_guided.
        """
        temperature = self.default_temperature if temperature is None else temperature
        num_clips = self._check_horizon(horizon_frames, num_samples)
        batch = observation.mu.shape[0]
        last = observation.last_clip_encoding()
        # Rows are item-major (b * S + s), so every sample continues from its own previous clip.
        encoding = PoseEncoding(**{name: _repeat_rows(getattr(last, name), num_samples)
                                   for name in PoseEncoding.__dataclass_fields__})
        hand_predicted = _repeat_rows(observation.hand_present_at_end, num_samples)
        all_frames = torch.ones(len(hand_predicted), self.clip_len, dtype=torch.bool, device=self.device)
        decoded = []
        for iteration in range(num_clips):
            if iteration:
                features, mask = _unit_palm_feedback(decoded[-1], hand_predicted)
                with self._networks():
                    encoding = self.pose_block.encode(features, mask, all_frames)
            mids = _draw_per_sample(encoding.mu.float(), encoding.logvar.float(), num_samples, temperature, generator)
            with self._networks():
                decoded.append(self.pose_block.decode_with_skip(mids, encoding.tokens, encoding.frame_valid).float())
        features = torch.stack(decoded, dim=1).unflatten(0, (batch, num_samples))  # (B, S, C, N, 153)
        forecast = self._decode_forecast(observation.placement, observation.hand_present_at_end, features,
                                         horizon_frames, self._shape_anchor(observation))
        return self._calibrated(observation, forecast, calibrated)

    @torch.no_grad()
    def interpolate_midlevels(self, clip_a, presence_a, clip_b, presence_b, weights) -> MotionForecast:
        """Decode (1 - w) mu_a + w mu_b for each weight w (the mid-level interpolation experiment).

        clip_a, clip_b: (N, 2, 21, 3) metres; presence_a, presence_b: (N, 2); weights: (W,). Returns joints
        (1, W, N, 2, 21, 3): the clip each blended mid-level decodes into, placed after clip a (its last frame
        with the hand and its palm size); hands not present at the end of clip a are NaN.
        """
        weights = torch.as_tensor(weights, dtype=torch.float32, device=self.device)
        if weights.dim() != 1 or not len(weights):
            raise ValueError(f"weights must be a non-empty 1-D sequence, got shape {tuple(weights.shape)}")
        joints = torch.stack([torch.as_tensor(clip_a), torch.as_tensor(clip_b)]).unsqueeze(1)
        presence = torch.stack([torch.as_tensor(presence_a), torch.as_tensor(presence_b)]).unsqueeze(1)
        observation = self.encode_observation(joints, presence)
        if not observation.clip_valid.all():
            raise ValueError("both clips need at least one frame with a hand")
        mu_a, mu_b = observation.mu[0, 0], observation.mu[1, 0]
        mids = (1.0 - weights)[:, None] * mu_a + weights[:, None] * mu_b
        with self._networks():
            features = self.pose_block.decode_mid(mids).float().unsqueeze(0).unsqueeze(2)  # (1, W, 1, N, 153)
        clip_a_placement = HandPlacement(
            *(getattr(observation.placement, name)[:1] for name in HandPlacement.__dataclass_fields__)
        )
        return self._decode_forecast(clip_a_placement, observation.hand_present_at_end[:1], features, self.clip_len)
