"""Training of the flattened single-VAE ablation (method-notes 11.2) on prediction windows.

A sample is a window of the prediction protocol (ghtt_core.evaluate.protocols.prediction_windows) of the training
split: 16 observed ground-truth frames (with the P-Block's encoder-input noise, method-notes 7) and the following
frames of the same action (at most 96) as targets. Loss: FlattenedModel.loss (observed + predicted hand terms,
trajectory from the last observed frame, KL, text alignment of z with the action label). The object token is the
action's noun, replaced by the unknown-object token with probability object_drop_prob (as for the A-Block).
"""

from __future__ import annotations

import torch

from ghtt_core.evaluate.fitting import FitOptions, fit
from ghtt_core.evaluate.protocols import PredictionWindows, flattened_window_inputs, sequence_with_future
from ghtt_core.flattened import FlattenedModel
from ghtt_core.representation import encode_features, local2base, local2base_mask
from ghtt_core.train.pose import InputNoise, add_input_noise


def flattened_loss(model: FlattenedModel, windows: PredictionWindows, label_embeddings, object_known,
                   noise: InputNoise | None) -> dict[str, torch.Tensor]:
    """Loss terms of one batch of windows; label_embeddings: (actions (C, D), objects (O, D))."""
    joints, presence, valid = sequence_with_future(windows, windows.future_joints, windows.future_presence)
    truth = encode_features(joints.double(), presence, valid)
    features = truth.features.float()
    observed = windows.observed_joints.shape[1]
    base = observed - 1
    observed_features = features[:, :observed]
    if noise is not None:
        observed_features = add_input_noise(observed_features, noise)
    action_embeddings, object_embeddings = label_embeddings
    inputs, future_phase = flattened_window_inputs(windows, observed_features, truth.feature_mask[:, :observed],
                                                   object_embeddings, object_known)
    output = model(inputs, future_phase, windows.future_valid)
    trajectory = local2base(truth.R_cam2local, truth.t_cam2local, base).float()
    trajectory_mask = local2base_mask(truth.presence, base)
    return model.loss(output, inputs, features[:, :observed], truth.feature_mask[:, :observed],
                      features[:, observed:], truth.feature_mask[:, observed:], windows.future_valid,
                      trajectory[:, observed:], trajectory_mask[:, observed:], action_embeddings, windows.labels)


def train_flattened(model: FlattenedModel, train: PredictionWindows, action_embeddings, object_embeddings,
                    options: FitOptions, object_drop_prob: float = 0.3) -> list[float]:
    """Fit the flattened model on the training windows; returns the total loss of every step."""
    noise = InputNoise()

    def batch_loss(batch, generator):
        known = torch.rand(len(batch), generator=generator) >= object_drop_prob
        return flattened_loss(model, train.select(batch), (action_embeddings, object_embeddings), known, noise)["total"]

    return fit(model, len(train), batch_loss, options)
