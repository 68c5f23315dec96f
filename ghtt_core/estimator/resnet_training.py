"""Training the ResNet image estimator over image + pose data (method-notes 8.1).

Any dataset works whose items are dicts with image (3, H, W) from preprocess_images, uv (2, 21, 2) virtual-camera
pixels, depth (2, 21) m, presence (2,) bool and object_index (long, -1 = unknown): SkeletonImageDataset (synthetic)
or PoseImageDataset (real frames with camera-frame GT joints, e.g. H2O / AssemblyHands HandSequences).
"""

from dataclasses import dataclass

import numpy as np
import torch

from ghtt_core.estimator.camera import CameraIntrinsics
from ghtt_core.estimator.image_input import read_rgb_image
from ghtt_core.estimator.object_embedding import label_embedding_tensor
from ghtt_core.estimator.resnet_estimator import preprocess_images, resnet_estimator_loss, virtual_camera_targets


@dataclass(frozen=True)
class ResNetTrainConfig:
    epochs: int = 30
    batch_size: int = 32
    learning_rate: float = 1e-4
    weight_decay: float = 0.0
    num_workers: int = 0
    seed: int = 0


def train_resnet_estimator(model, dataset, label_embeddings, config=None, device="cpu", on_step=None):
    """Adam over the dataset for config.epochs; returns the per-step loss parts (list of dicts with 'total').

    label_embeddings: (L, D) text embeddings of the object taxonomy, D = model.config.object_embedding_dim.
    on_step(step, parts) is called after every optimiser step (logging, checkpoints).
    """
    config = config or ResNetTrainConfig()
    embeddings = label_embedding_tensor(label_embeddings).to(device)
    if embeddings.shape[1] != model.config.object_embedding_dim:
        raise ValueError(
            f"label embeddings are {embeddings.shape[1]}-d but the object head outputs "
            f"{model.config.object_embedding_dim}-d"
        )
    generator = torch.Generator().manual_seed(config.seed)
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=config.batch_size, shuffle=True, num_workers=config.num_workers, generator=generator
    )
    model.to(device).train()
    optimiser = torch.optim.Adam(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    history = []
    for _ in range(config.epochs):
        for batch in loader:
            batch = {name: value.to(device) for name, value in batch.items()}
            total, parts = resnet_estimator_loss(model(batch["image"]), batch, embeddings, model.config)
            optimiser.zero_grad(set_to_none=True)
            total.backward()
            optimiser.step()
            parts["total"] = float(total.detach())
            history.append(parts)
            if on_step is not None:
                on_step(len(history), parts)
    model.eval()
    return history


def _object_name_at(sequence, frame):
    for segment in sequence.actions:
        if segment.start <= frame < segment.end:
            return segment.noun
    return None


class PoseImageDataset(torch.utils.data.Dataset):
    """Real frames for the estimator: HandSequences with image_paths, intrinsics and camera-frame GT joints.

    The object of a frame is the noun of the action segment covering it (unknown outside segments, -1).
    Targets are re-expressed in the virtual camera with EPnP when the dataset is built; images are read lazily.
    """

    def __init__(self, sequences, object_names, config, frame_stride=1):
        self.config = config
        name_to_index = {name: i for i, name in enumerate(object_names)}
        self.items = []
        for sequence in sequences:
            if sequence.image_paths is None or sequence.intrinsics is None:
                raise ValueError(f"sequence {sequence.name!r} has no image_paths or intrinsics")
            for frame in range(0, sequence.num_frames, frame_stride):
                if not sequence.presence[frame].any():
                    continue
                self.items.append((sequence, frame, name_to_index.get(_object_name_at(sequence, frame), -1)))

    def __len__(self):
        return len(self.items)

    def __getitem__(self, index):
        sequence, frame, object_index = self.items[index]
        image = read_rgb_image(sequence.image_paths[frame])
        intrinsics = CameraIntrinsics.from_matrix(sequence.intrinsics, image.shape[1], image.shape[0])
        presence = sequence.presence[frame]
        uv, depth = virtual_camera_targets(sequence.joints[frame], presence, intrinsics, self.config)
        return {
            "image": preprocess_images([image], self.config)[0],
            "uv": torch.from_numpy(np.nan_to_num(uv)),
            "depth": torch.from_numpy(depth),
            "presence": torch.from_numpy(presence.copy()),
            "object_index": torch.tensor(object_index),
        }
