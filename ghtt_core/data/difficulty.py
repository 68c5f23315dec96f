"""How hard a dataset is: trivial and simple baselines for the dataset card (`ghtt data card`).

- chance: one over the number of classes;
- action accuracy of 1-nearest-neighbour on the mean wrist-relative pose of each trimmed action;
- action accuracy of the BiGRU recognition baseline (ghtt_core.evaluate.gru_baseline: the one `ghtt training-report`
  and `ghtt benchmark` report), trained for a fixed number of steps;
- zero-velocity motion prediction: ADE (mm) over the 30 frames (1 s) after 16 observed frames.
Train on one split, report on another (default train -> test), ground-truth poses of whole actions, in every view of
the dataset unless views are given.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import torch

from ghtt_core.evaluate.gru_baseline import (GRUClassifier, baseline_fit_options, fit_gru_features, predict_classes,
                                             sequence_inputs)
from ghtt_core.evaluate.protocols import CLIP_FRAMES, recognition_sequences
from ghtt_core.skeleton import NUM_HANDS, NUM_JOINTS, USED_JOINTS

OBSERVED_FRAMES = 16
PREDICTED_FRAMES = 30
POSE_FEATURES = NUM_HANDS * NUM_JOINTS * 3  # the wrist-relative joints at the start of each GRU input frame


def ground_truth_action_inputs(sequences, taxonomy, frames: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Every whole action of the sequences as the BiGRU's inputs from the ground truth: features (N, frames, 134)
    and labels (N,) (-1 = outside the taxonomy). One sequence at a time, so only its own actions are padded."""
    features, labels = [], []
    for sequence in sequences:
        if not sequence.actions:
            continue
        clips = max(-(-(segment.end - segment.start) // CLIP_FRAMES) for segment in sequence.actions)
        actions = recognition_sequences([sequence], taxonomy, max_clips=clips)
        truth = dataclasses.replace(actions, input_joints=actions.truth_joints.float(),
                                    input_presence=actions.truth_presence)
        features.append(sequence_inputs(truth, frames))
        labels.append(actions.labels)
    if not features:
        raise ValueError("no action segments in the sequences")
    return torch.cat(features), torch.cat(labels)


def nearest_neighbour_accuracy(train_x, train_y, test_x, test_y) -> float:
    """1-NN on the time-averaged wrist-relative pose part of the inputs (N, frames, 134)."""
    train_mean, test_mean = train_x[..., :POSE_FEATURES].mean(dim=1), test_x[..., :POSE_FEATURES].mean(dim=1)
    nearest = torch.cdist(test_mean, train_mean).argmin(dim=1)
    return float((train_y[nearest] == test_y).double().mean())


def zero_velocity_ade_mm(sequences, stride=16) -> tuple[float, int]:
    """Mean per-joint error (joints 0, 2..20, present hands) of repeating the last observed frame for 1 s, over
    windows every `stride` frames of each action with 16 observed + 30 future frames inside it."""
    errors = []
    joints_used = list(USED_JOINTS)
    for seq in sequences:
        for segment in seq.actions:
            for start in range(segment.start, segment.end - OBSERVED_FRAMES - PREDICTED_FRAMES + 1, stride):
                last = start + OBSERVED_FRAMES - 1
                future = slice(last + 1, last + 1 + PREDICTED_FRAMES)
                visible = seq.presence[future] & seq.presence[last]
                error = np.linalg.norm(seq.joints[future][:, :, joints_used] - seq.joints[last][None, :, joints_used],
                                       axis=-1).mean(-1)
                if visible.any():
                    errors.append(error[visible].mean())
    if not errors:
        return float("nan"), 0
    return float(np.mean(errors) * 1000.0), len(errors)


def difficulty_report(dataset, views=None, train_split="train", test_split="test", gru_steps=1000, seed=0,
                      progress=False) -> dict:
    """The card of a StoredDataset. views: None = every view of each recording."""
    splits = sorted({entry["split"] for entry in dataset.entries})
    for split, option in ((train_split, "--train-split"), (test_split, "--test-split")):
        if split not in splits:
            raise ValueError(f"{dataset.root}: no recordings in split {split!r} (splits: {splits}); choose one with "
                             f"{option}")
    train = dataset.sequences(train_split, views)
    test = dataset.sequences(test_split, views)
    if not train or not test:
        available = sorted({view for entry in dataset.entries for view in entry["views"]})
        raise ValueError(f"{dataset.root}: no sequences in view(s) {views} (views: {available}); choose with --views")
    taxonomy = dataset.taxonomy
    torch.manual_seed(seed)
    model = GRUClassifier(len(taxonomy.actions))
    train_x, train_y = ground_truth_action_inputs(train, taxonomy, model.cfg.frames)
    test_x, test_y = ground_truth_action_inputs(test, taxonomy, model.cfg.frames)
    started = time.perf_counter()
    losses = fit_gru_features(model, train_x, train_y, baseline_fit_options(gru_steps, seed),
                              progress_label="BiGRU baseline" if progress else None)
    gru_seconds = time.perf_counter() - started
    known = test_y >= 0
    ade, windows = zero_velocity_ade_mm(test)
    return {
        "views": views or sorted({sequence.view for sequence in train + test}),
        "train_split": train_split,
        "test_split": test_split,
        "train_actions": int((train_y >= 0).sum()),
        "test_actions": int(known.sum()),
        "classes": len(taxonomy.actions),
        "chance_accuracy": round(1.0 / len(taxonomy.actions), 3),
        "nearest_neighbour_mean_pose_accuracy": round(
            nearest_neighbour_accuracy(train_x[train_y >= 0], train_y[train_y >= 0], test_x[known], test_y[known]), 3),
        "bigru_accuracy": round(float((predict_classes(model, test_x[known]) == test_y[known]).double().mean()), 3),
        "bigru_steps": gru_steps,
        "bigru_final_loss": round(sum(losses[-20:]) / len(losses[-20:]), 3),
        "bigru_train_seconds": round(gru_seconds, 1),
        "zero_velocity_ade_1s_mm": round(ade, 1),
        "zero_velocity_windows": windows,
    }
