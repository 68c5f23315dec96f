"""How hard a dataset is: trivial and simple baselines for the dataset card.

- action accuracy of 1-nearest-neighbour on the mean wrist-relative pose of each trimmed action;
- action accuracy of a small GRU on per-frame wrist-relative joints + wrist velocities, trained for a fixed time;
- zero-velocity motion prediction: ADE (mm) over the 30 frames (1 s) after 16 observed frames.
Train on the 'train' subject split, report on 'test', ground-truth poses of one view.
"""

import time

import numpy as np
import torch
from torch import nn

from ghtt_core.skeleton import USED_JOINTS

RESAMPLED_FRAMES = 48
OBSERVED_FRAMES = 16
PREDICTED_FRAMES = 30


def _frame_features(joints, presence):
    """(T, 2, 21, 3), (T, 2) -> (T, 134): wrist-relative joints (cm), wrist velocity (cm/frame), presence."""
    relative = (joints - joints[:, :, :1]) * 100.0
    wrist = joints[:, :, 0] * 100.0
    velocity = np.diff(wrist, axis=0, prepend=wrist[:1])
    features = np.concatenate([relative.reshape(len(joints), -1), velocity.reshape(len(joints), -1)], axis=1)
    mask = np.concatenate([np.repeat(presence, 63, axis=1), np.repeat(presence, 3, axis=1)], axis=1)
    return np.concatenate([features * mask, presence.astype(np.float32)], axis=1).astype(np.float32)


def _action_examples(sequences, taxonomy):
    features, labels = [], []
    for seq in sequences:
        for segment in seq.actions:
            frames = np.linspace(segment.start, segment.end - 1, RESAMPLED_FRAMES).round().astype(int)
            features.append(_frame_features(seq.joints[frames], seq.presence[frames]))
            labels.append(taxonomy.action_index(segment.label))
    return np.stack(features), np.array(labels)


def nearest_neighbour_accuracy(train_x, train_y, test_x, test_y):
    """1-NN on the time-averaged pose part of the features."""
    train_mean, test_mean = train_x[..., :126].mean(axis=1), test_x[..., :126].mean(axis=1)
    distances = ((test_mean[:, None] - train_mean[None]) ** 2).sum(-1)
    return float((train_y[distances.argmin(axis=1)] == test_y).mean())


class _GRUClassifier(nn.Module):
    def __init__(self, in_features, num_classes, hidden=128):
        super().__init__()
        self.norm = nn.LayerNorm(in_features)
        self.gru = nn.GRU(in_features, hidden, batch_first=True)
        self.head = nn.Linear(hidden, num_classes)

    def forward(self, x):
        _, last = self.gru(self.norm(x))
        return self.head(last[-1])


def gru_accuracy(train_x, train_y, test_x, test_y, num_classes, train_seconds, seed):
    torch.manual_seed(seed)
    model = _GRUClassifier(train_x.shape[-1], num_classes)
    optimiser = torch.optim.Adam(model.parameters(), lr=2e-3)
    x, y = torch.from_numpy(train_x), torch.from_numpy(train_y)
    started, epochs = time.perf_counter(), 0
    while time.perf_counter() - started < train_seconds:
        for batch in torch.randperm(len(x)).split(64):
            loss = nn.functional.cross_entropy(model(x[batch]), y[batch])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        epochs += 1
    with torch.no_grad():
        predicted = model(torch.from_numpy(test_x)).argmax(-1).numpy()
    return float((predicted == test_y).mean()), epochs


def zero_velocity_ade_mm(sequences, stride=16):
    """Mean per-joint error (joints 0, 2..20, present hands) of repeating the last observed frame for 1 s."""
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
    return float(np.mean(errors) * 1000.0), len(errors)


def difficulty_report(dataset, view="front", train_seconds=120.0, seed=0):
    train = dataset.sequences("train", views=[view])
    test = dataset.sequences("test", views=[view])
    train_x, train_y = _action_examples(train, dataset.taxonomy)
    test_x, test_y = _action_examples(test, dataset.taxonomy)
    gru, epochs = gru_accuracy(train_x, train_y, test_x, test_y, len(dataset.taxonomy.labels), train_seconds, seed)
    ade, windows = zero_velocity_ade_mm(test)
    return {
        "view": view,
        "train_actions": len(train_y),
        "test_actions": len(test_y),
        "classes": len(dataset.taxonomy.labels),
        "chance_accuracy": round(1.0 / len(dataset.taxonomy.labels), 3),
        "nearest_neighbour_mean_pose_accuracy": round(nearest_neighbour_accuracy(train_x, train_y, test_x, test_y), 3),
        "gru_accuracy": round(gru, 3),
        "gru_epochs": epochs,
        "gru_train_seconds": train_seconds,
        "zero_velocity_ade_1s_mm": round(ade, 1),
        "zero_velocity_windows": windows,
    }
