"""A-Block (method-notes section 4): clip mid-levels + object tokens <-> an action latent aligned with text.

Encoder tokens per clip k: [m_k + phi_k, o_k + phi_k], phi_k = sinusoidal phase code of "clips since the action
started". mu_A is matched to projected label text embeddings (recognition); the decoder predicts the mid-levels of
future clips from their phase codes, which the frozen P-Dec turns into poses (P.b).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from ghtt_core.config import ActionBlockConfig
from ghtt_core.nn import (
    Generators,
    TransformerVAE,
    VAEEncoding,
    cosine_logits,
    draw_latents,
    kl_to_standard_normal,
    masked_mean,
    reparameterise,
    use_skip_memory,
)
from ghtt_core.pose_block import PoseBlock


class ObjectTokens(nn.Module):
    """Object text embeddings -> d_model tokens; a learned "unknown object" token where no object is given.

    The projection is the identity when text_dim == d_model (the paper feeds raw CLIP embeddings) and a learned
    Linear otherwise (e.g. 384-d MiniLM into a 512-d model).
    """

    def __init__(self, text_dim: int, d_model: int):
        super().__init__()
        self.text_dim = text_dim
        self.projection = nn.Identity() if text_dim == d_model else nn.Linear(text_dim, d_model)
        self.unknown_object = nn.Parameter(torch.randn(d_model))

    def forward(self, shape, object_embeddings=None, object_known=None) -> torch.Tensor:
        """shape (B, K) -> (B, K, d). object_embeddings (B, K, text_dim) or None (all unknown); object_known (B, K)."""
        unknown = self.unknown_object.expand(*shape, -1)
        if object_embeddings is None:
            return unknown
        if object_embeddings.shape != (*shape, self.text_dim):
            raise ValueError(
                f"object_embeddings must be {(*shape, self.text_dim)}, got {tuple(object_embeddings.shape)}"
            )
        known = self.projection(object_embeddings)
        if object_known is None:
            return known
        if object_known.shape != tuple(shape) or object_known.dtype != torch.bool:
            raise ValueError(f"object_known must be bool of shape {tuple(shape)}")
        return torch.where(object_known.unsqueeze(-1), known, unknown)


class TextAlignment(nn.Module):
    """Learned Linear text -> latent (the authors' `bert_to_latent`), the L_dist + L_con losses and label scores."""

    def __init__(self, text_dim: int, d_model: int, tau: float, label_smoothing: float = 0.0):
        super().__init__()
        self.text_dim = text_dim
        self.tau = tau
        self.label_smoothing = label_smoothing
        self.text_to_latent = nn.Linear(text_dim, d_model)

    def project(self, label_embeddings: torch.Tensor) -> torch.Tensor:
        if label_embeddings.shape[-1] != self.text_dim:
            raise ValueError(
                f"label embeddings must be (..., {self.text_dim}), got {tuple(label_embeddings.shape)}; "
                "does the text encoder match text_dim?"
            )
        return self.text_to_latent(label_embeddings)

    def losses(self, latent, label_embeddings, labels) -> dict[str, torch.Tensor]:
        """latent (B, d), label_embeddings (C, text_dim), labels (B,) indices into them -> L_dist (L1), L_con (CE)."""
        if labels.dim() != 1 or len(labels) != len(latent):
            raise ValueError(f"labels must be ({len(latent)},), got {tuple(labels.shape)}")
        if labels.numel() and (labels.min() < 0 or labels.max() >= len(label_embeddings)):
            raise ValueError(f"labels must index the {len(label_embeddings)} label embeddings")
        anchors = self.project(label_embeddings)
        return {
            "dist": F.l1_loss(latent, anchors[labels]),
            "con": F.cross_entropy(cosine_logits(latent, anchors, self.tau), labels,
                                   label_smoothing=self.label_smoothing),
        }

    def top_k(self, latent, label_embeddings, k: int):
        """Nearest projected labels by cosine: scores = softmax(cos / tau) over all labels -> (B, k) scores, indices."""
        k = min(k, len(label_embeddings))
        probabilities = cosine_logits(latent, self.project(label_embeddings), self.tau).softmax(dim=-1)
        return probabilities.topk(k, dim=-1)


def encode_with_objects(
    vae: TransformerVAE, objects: ObjectTokens, content, valid, phase, object_embeddings=None, object_known=None
) -> VAEEncoding:
    """Encode [c_1+phi_1, o_1+phi_1, c_2+phi_2, ...] (phi = phase code) -> mu, logvar and the encoder outputs at
    the content positions (B, K, d). Both tokens of an invalid step are masked."""
    phase_codes = vae.positions.lookup(phase)
    object_tokens = objects(phase.shape, object_embeddings, object_known)
    tokens = torch.stack([content + phase_codes, object_tokens + phase_codes], dim=2).flatten(1, 2)
    encoding = vae.encode(tokens, valid.repeat_interleave(2, dim=1))
    return VAEEncoding(mu=encoding.mu, logvar=encoding.logvar, tokens=encoding.tokens[:, 0::2])


@dataclass
class ActionInputs:
    """The observed part of an A-Block sample (B items, K <= max_clips clips)."""

    mids: torch.Tensor  # (B, K, d) P-Enc mu of each observed clip
    clip_valid: torch.Tensor  # (B, K) bool
    phase: torch.Tensor  # (B, K) int: clips since the action started
    object_embeddings: torch.Tensor | None = None  # (B, K, text_dim) text embedding of the object name
    object_known: torch.Tensor | None = None  # (B, K) bool; False -> learned unknown-object token


@dataclass
class ActionBlockOutput:
    encoding: VAEEncoding  # mu/logvar (B, d); tokens = skip tokens at the mid-level positions (B, K, d)
    latent: torch.Tensor  # (B, d) z used for the decoder (sampled in training)
    predicted_mids: torch.Tensor  # (B, F, d)
    used_skip: bool


def following_phases(inputs: ActionInputs, num_future: int) -> torch.Tensor:
    """Phases of the clips after the last valid observed clip: (B, num_future), last phase + 1, + 2, ..."""
    last_phase = torch.where(inputs.clip_valid, inputs.phase, torch.full_like(inputs.phase, -1)).max(dim=1).values
    return last_phase.unsqueeze(1) + 1 + torch.arange(num_future, device=inputs.phase.device)


class ActionBlock(nn.Module):
    def __init__(self, cfg: ActionBlockConfig):
        super().__init__()
        self.cfg = cfg
        d = cfg.transformer.d_model
        self.vae = TransformerVAE(cfg.transformer)
        self.objects = ObjectTokens(cfg.text_dim, d)
        self.alignment = TextAlignment(cfg.text_dim, d, cfg.tau, cfg.label_smoothing)

    @property
    def d_model(self) -> int:
        return self.cfg.transformer.d_model

    def _check_inputs(self, inputs: ActionInputs):
        mids, valid, phase = inputs.mids, inputs.clip_valid, inputs.phase
        if mids.dim() != 3 or mids.shape[-1] != self.d_model:
            raise ValueError(f"mids must be (B, K, {self.d_model}), got {tuple(mids.shape)}")
        if mids.shape[1] > self.cfg.max_clips:
            raise ValueError(f"the A-Block holds at most {self.cfg.max_clips} clips, got {mids.shape[1]}")
        if valid.dtype != torch.bool or valid.shape != mids.shape[:2]:
            raise ValueError(f"clip_valid must be bool of shape {tuple(mids.shape[:2])}")
        if phase.shape != mids.shape[:2] or phase.dtype.is_floating_point:
            raise ValueError(f"phase must be integer of shape {tuple(mids.shape[:2])}")

    def encode(self, inputs: ActionInputs, add_noise: bool = False) -> VAEEncoding:
        """A-Enc over [m_1+phi_1, o_1+phi_1, ...] -> mu_A, logvar_A and the skip tokens at the m positions."""
        self._check_inputs(inputs)
        mids = inputs.mids
        if add_noise and self.cfg.noise_std > 0:
            mids = mids + torch.randn_like(mids) * self.cfg.noise_std
        return encode_with_objects(
            self.vae, self.objects, mids, inputs.clip_valid, inputs.phase, inputs.object_embeddings, inputs.object_known
        )

    def decode(self, latent, skip_tokens, clip_valid, future_phase, future_valid=None):
        """Predict future mid-levels (B, F, d) from the phase queries; memory [z] or, when skip_tokens (B, K, d)
        are given, [z, skip tokens] with the clip mask."""
        if future_phase.shape[-1] > self.cfg.max_clips:
            raise ValueError(f"the A-Block predicts at most {self.cfg.max_clips} clips, got {future_phase.shape[-1]}")
        return self.vae.decode_latent(latent, skip_tokens, clip_valid, future_phase, future_valid)

    def forward(self, inputs: ActionInputs, future_phase, future_valid=None, use_skip: bool | None = None):
        """Training pass (noise on mids and sampled z when training). use_skip None: coin flip with skip_prob in
        training, always on in eval."""
        encoding = self.encode(inputs, add_noise=self.training)
        latent = reparameterise(encoding.mu, encoding.logvar) if self.training else encoding.mu
        if use_skip is None:
            use_skip = use_skip_memory(self.training, self.cfg.skip_prob, at_test=True)
        predicted = self.decode(
            latent, encoding.tokens if use_skip else None, inputs.clip_valid, future_phase, future_valid
        )
        return ActionBlockOutput(encoding=encoding, latent=latent, predicted_mids=predicted, used_skip=use_skip)

    def loss(self, output: ActionBlockOutput, label_embeddings, labels, future_mids, future_valid):
        """L_A = lambda_kl KL + lambda_action (L_dist + L_con) + lambda_mid L_mid.

        label_embeddings (C, text_dim) raw text embeddings of the taxonomy, labels (B,) indices; future_mids
        (B, F, d) P-Enc mu of the GT future clips, future_valid (B, F) bool.
        """
        if future_mids.shape != output.predicted_mids.shape:
            raise ValueError(
                f"future_mids must be {tuple(output.predicted_mids.shape)}, got {tuple(future_mids.shape)}"
            )
        if future_valid.shape != future_mids.shape[:2] or future_valid.dtype != torch.bool:
            raise ValueError(f"future_valid must be bool of shape {tuple(future_mids.shape[:2])}")
        terms = self.alignment.losses(output.latent, label_embeddings, labels)
        terms["kl"] = kl_to_standard_normal(output.encoding.mu, output.encoding.logvar)
        # Mean over the latent dims per clip, then over valid clips.
        per_clip = (output.predicted_mids - future_mids).abs().mean(dim=-1)
        terms["mid"] = masked_mean(per_clip, future_valid)
        terms["total"] = (
            self.cfg.lambda_kl * terms["kl"]
            + self.cfg.lambda_action * (terms["dist"] + terms["con"])
            + self.cfg.lambda_mid * terms["mid"]
        )
        return terms

    @torch.no_grad()
    def recognize(self, inputs: ActionInputs, label_embeddings, k: int = 5):
        """Top-k labels by cosine between mu_A and the projected label embeddings -> scores, indices (B, k)."""
        return self.alignment.top_k(self.encode(inputs).mu, label_embeddings, k)

    @torch.no_grad()
    def predict_midlevels(
        self,
        inputs: ActionInputs,
        future_phase,
        future_valid=None,
        num_samples: int = 1,
        temperature: float | None = None,
        action_embedding: torch.Tensor | None = None,
        generator: Generators = None,
        encoding: VAEEncoding | None = None,
    ) -> torch.Tensor:
        """Future mid-levels (B, S, F, d). Sample 0 decodes the mean; samples 1.. draw z with std x temperature
        (default cfg.sample_factor). action_embedding (B, text_dim) replaces mu_A by the projected label
        embedding (action-controlled generation); the encoder's logvar still drives the samples. encoding: the
        A-Enc output of these inputs when the caller already has it (recognition), so the A-Enc runs once."""
        temperature = self.cfg.sample_factor if temperature is None else temperature
        encoding = self.encode(inputs) if encoding is None else encoding
        centre = encoding.mu
        if action_embedding is not None:
            if action_embedding.shape != (len(centre), self.cfg.text_dim):
                raise ValueError(
                    f"action_embedding must be ({len(centre)}, {self.cfg.text_dim}), "
                    f"got {tuple(action_embedding.shape)}"
                )
            centre = self.alignment.project(action_embedding)
        latents = draw_latents(centre, encoding.logvar, num_samples, temperature, generator)  # (B, S, d)
        predicted = self.decode(
            latents.flatten(0, 1),
            encoding.tokens.repeat_interleave(num_samples, 0),
            inputs.clip_valid.repeat_interleave(num_samples, 0),
            future_phase.repeat_interleave(num_samples, 0),
            None if future_valid is None else future_valid.repeat_interleave(num_samples, 0),
        )
        return predicted.unflatten(0, (len(centre), num_samples))

    @torch.no_grad()
    def predict_future_features(
        self,
        pose_block: PoseBlock,
        clip_features,
        clip_feature_mask,
        clip_frame_valid,
        clip_valid,
        phase,
        future_phase,
        object_embeddings=None,
        object_known=None,
        num_samples: int = 1,
        temperature: float | None = None,
        action_embedding=None,
        generator: Generators = None,
    ) -> torch.Tensor:
        """P.b: P-Enc (clip -> mu) -> A-Enc -> A-Dec -> P-Dec with memory = one predicted mid-level.

        clip_features/clip_feature_mask (B, K, N, 153), clip_frame_valid (B, K, N), clip_valid/phase (B, K),
        future_phase (B, F) -> future features (B, S, F, N, 153). Predicted mid-level j decodes into the clip
        after future clip j (method-notes 4.5).
        """
        inputs = ActionInputs(
            mids=pose_block.encode_clips(clip_features, clip_feature_mask, clip_frame_valid),
            clip_valid=clip_valid,
            phase=phase,
            object_embeddings=object_embeddings,
            object_known=object_known,
        )
        mids = self.predict_midlevels(
            inputs,
            future_phase,
            num_samples=num_samples,
            temperature=temperature,
            action_embedding=action_embedding,
            generator=generator,
        )
        return pose_block.decode_mid(mids)
