"""The flattened ablation (method-notes 11.2): one Transformer VAE at frame level instead of the P/A hierarchy.

Encoder tokens per observed frame t: [h_t + phi_t, o_t + phi_t] (hand token from the same 153-d embedding as the
P-Block, object token as in the A-Block, phi_t = phase code of "frames since the action started"). The latent z is
aligned with text like the A-Block; the decoder predicts the future frames directly from their phase codes, with
memory [z] or [z, encoder hand tokens]. Test-time samples use std x 10.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ghtt_core.action_block import ObjectTokens, TextAlignment, encode_with_objects
from ghtt_core.config import FlattenedConfig
from ghtt_core.nn import TransformerVAE, draw_latents, kl_to_standard_normal, reparameterise, use_skip_memory
from ghtt_core.pose_block import (
    FeatureHead,
    FrameFeatureEmbedding,
    check_features,
    check_local2base,
    hand_loss_terms,
)


@dataclass
class FlattenedInputs:
    features: torch.Tensor  # (B, T, 153) observed frames
    feature_mask: torch.Tensor  # (B, T, 153) bool
    frame_valid: torch.Tensor  # (B, T) bool
    phase: torch.Tensor  # (B, T) int: frames since the action started
    object_embeddings: torch.Tensor | None = None  # (B, T, text_dim)
    object_known: torch.Tensor | None = None  # (B, T) bool


@dataclass
class FlattenedOutput:
    mu: torch.Tensor
    logvar: torch.Tensor
    latent: torch.Tensor  # (B, d)
    hand_tokens: torch.Tensor  # (B, T, d) encoder outputs at the hand-token positions
    refined: torch.Tensor  # (B, T, 153)
    predicted: torch.Tensor  # (B, F, 153)
    used_skip: bool


class FlattenedModel(nn.Module):
    def __init__(self, cfg: FlattenedConfig):
        super().__init__()
        self.cfg = cfg
        d = cfg.transformer.d_model
        self.embedding = FrameFeatureEmbedding(d)
        self.objects = ObjectTokens(cfg.text_dim, d)
        self.alignment = TextAlignment(cfg.text_dim, d, cfg.tau)
        self.vae = TransformerVAE(cfg.transformer)
        self.output_head = FeatureHead(d)

    def encode(self, inputs: FlattenedInputs):
        """-> mu, logvar (B, d), hand tokens (B, T, d)."""
        check_features(inputs.features, inputs.feature_mask, inputs.frame_valid)
        frames = inputs.features.shape[1]
        if frames > self.cfg.max_obs_frames:
            raise ValueError(f"at most {self.cfg.max_obs_frames} observed frames, got {frames}")
        if inputs.phase.shape != inputs.frame_valid.shape or inputs.phase.dtype.is_floating_point:
            raise ValueError(f"phase must be integer of shape {tuple(inputs.frame_valid.shape)}")
        encoding = encode_with_objects(
            self.vae,
            self.objects,
            self.embedding(inputs.features, inputs.feature_mask),
            inputs.frame_valid,
            inputs.phase,
            inputs.object_embeddings,
            inputs.object_known,
        )
        return encoding.mu, encoding.logvar, encoding.tokens

    def decode(self, latent, hand_tokens, frame_valid, future_phase, future_valid=None):
        """Future frames (B, F, 153) from phase queries; memory [z] or [z, hand tokens] when hand_tokens is given."""
        if future_phase.shape[-1] > self.cfg.max_pred_frames:
            raise ValueError(f"at most {self.cfg.max_pred_frames} future frames, got {future_phase.shape[-1]}")
        return self.output_head(self.vae.decode_latent(latent, hand_tokens, frame_valid, future_phase, future_valid))

    def forward(self, inputs: FlattenedInputs, future_phase, future_valid=None, use_skip: bool | None = None):
        """use_skip None: coin flip with skip_prob in training, always on in eval."""
        mu, logvar, hand_tokens = self.encode(inputs)
        latent = reparameterise(mu, logvar) if self.training else mu
        if use_skip is None:
            use_skip = use_skip_memory(self.training, self.cfg.skip_prob, at_test=True)
        predicted = self.decode(
            latent, hand_tokens if use_skip else None, inputs.frame_valid, future_phase, future_valid
        )
        return FlattenedOutput(
            mu=mu,
            logvar=logvar,
            latent=latent,
            hand_tokens=hand_tokens,
            refined=self.output_head(hand_tokens),
            predicted=predicted,
            used_skip=use_skip,
        )

    def loss(
        self,
        output: FlattenedOutput,
        inputs: FlattenedInputs,
        observed,
        observed_mask,
        future,
        future_mask,
        future_frame_valid,
        future_local2base,
        future_local2base_mask,
        label_embeddings,
        labels,
    ) -> dict[str, torch.Tensor]:
        """lambda_hand (L_obs + L_pred + L_trj) + lambda_kl KL + lambda_action (L_dist + L_con).

        Same targets as PoseBlock.loss (trajectory base = last observed frame) plus the action labels.
        """
        check_features(observed, observed_mask, inputs.frame_valid)
        check_features(future, future_mask, future_frame_valid)
        check_local2base(future_local2base, future_local2base_mask, future.shape[:-1])
        terms = hand_loss_terms(
            output.refined,
            observed,
            observed_mask & inputs.frame_valid.unsqueeze(-1),
            output.predicted,
            future,
            future_mask & future_frame_valid.unsqueeze(-1),
            future_local2base,
            future_local2base_mask & future_frame_valid.unsqueeze(-1),
        )
        terms.update(self.alignment.losses(output.latent, label_embeddings, labels))
        terms["kl"] = kl_to_standard_normal(output.mu, output.logvar)
        terms["total"] = (
            self.cfg.lambda_hand * (terms["obs"] + terms["pred"] + terms["trj"])
            + self.cfg.lambda_kl * terms["kl"]
            + self.cfg.lambda_action * (terms["dist"] + terms["con"])
        )
        return terms

    @torch.no_grad()
    def recognize(self, inputs: FlattenedInputs, label_embeddings, k: int = 5):
        mu, _, _ = self.encode(inputs)
        return self.alignment.top_k(mu, label_embeddings, k)

    @torch.no_grad()
    def predict(
        self,
        inputs: FlattenedInputs,
        future_phase,
        num_samples: int = 1,
        temperature: float | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Future frames (B, S, F, 153): sample 0 from mu, the others with std x temperature (default 10)."""
        temperature = self.cfg.sample_factor if temperature is None else temperature
        mu, logvar, hand_tokens = self.encode(inputs)
        latents = draw_latents(mu, logvar, num_samples, temperature, generator)
        predicted = self.decode(
            latents.flatten(0, 1),
            hand_tokens.repeat_interleave(num_samples, 0),
            inputs.frame_valid.repeat_interleave(num_samples, 0),
            future_phase.repeat_interleave(num_samples, 0),
        )
        return predicted.unflatten(0, (len(mu), num_samples))
