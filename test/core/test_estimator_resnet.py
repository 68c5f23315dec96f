"""The paper's ResNet-18 image estimator: To25D mapping, virtual-camera targets, training, inference wrapper."""

import numpy as np
import pytest
import torch

from ghtt_core.estimator.camera import CameraIntrinsics, project
from ghtt_core.estimator.resnet_estimator import (
    ResNetEstimatorConfig,
    ResNetHandEstimator,
    ResNetHandObjectNet,
    lift_25d,
    save_checkpoint,
    to_25d,
    virtual_camera_targets,
)
from ghtt_core.estimator.resnet_training import ResNetTrainConfig, train_resnet_estimator
from ghtt_core.estimator.synthetic_images import SkeletonImageDataset

SMALL = ResNetEstimatorConfig(image_height=48, image_width=80, object_embedding_dim=16, hidden_dim=128)


def test_to25d_matches_the_papers_constants_at_480x270():
    config = ResNetEstimatorConfig()
    raw = torch.tensor([[0.0, 0.0, 0.0], [1.0, -0.5, 10.0]])
    uv, depth = to_25d(raw, config)
    np.testing.assert_allclose(uv.numpy(), [[240, 135], [340, 85]])
    # Z = f * 1e-4 * s + 0.4 with f = 240.
    np.testing.assert_allclose(depth.numpy(), [0.4, 0.4 + 240e-4 * 10], rtol=1e-6)
    lifted = lift_25d(uv, depth, config).numpy()
    np.testing.assert_allclose(project(lifted, config.virtual_camera), uv.numpy(), atol=1e-4)


def test_virtual_camera_targets_preserve_the_image_and_the_hand():
    rng = np.random.default_rng(0)
    real = CameraIntrinsics(900, 900, 640, 360, 1280, 720)
    joints = rng.normal(scale=0.04, size=(2, 21, 3)) + np.array([[[-0.1, 0.0, 0.6]], [[0.1, 0.02, 0.65]]])
    config = ResNetEstimatorConfig()
    uv, depth = virtual_camera_targets(joints, np.array([True, True]), real, config)
    # The 2D targets are where the joints appear in the resized image, up to what a rigid motion can do for a
    # camera with another focal length (a few pixels of 480).
    error = np.linalg.norm(uv - project(joints, real) * 480 / 1280, axis=-1)
    assert error.mean() < 2.0 and error.max() < 8.0
    # The fit is rigid: the hands keep their size in metres.
    lifted = lift_25d(torch.from_numpy(uv), torch.from_numpy(depth), config).numpy()
    for side in (0, 1):
        assert np.linalg.norm(lifted[side, 9] - lifted[side, 0]) == pytest.approx(
            np.linalg.norm(joints[side, 9] - joints[side, 0]), rel=0.02)
    with pytest.raises(ValueError, match="at least one present hand"):
        virtual_camera_targets(joints, np.array([False, False]), real, config)


def test_forward_shapes():
    model = ResNetHandObjectNet(SMALL).eval()
    with torch.no_grad():
        out = model(torch.zeros(3, 3, SMALL.image_height, SMALL.image_width))
    assert out["uv"].shape == (3, 2, 21, 2) and out["depth"].shape == (3, 2, 21)
    assert out["joints_virtual"].shape == (3, 2, 21, 3)
    assert out["object_feature"].shape == (3, 16) and out["image_feature"].shape == (3, 512)


def test_a_small_batch_can_be_overfit():
    torch.manual_seed(0)
    dataset = SkeletonImageDataset(4, SMALL, num_objects=4, seed=0)
    embeddings = torch.nn.functional.normalize(torch.randn(4, 16, generator=torch.Generator().manual_seed(1)), dim=-1)
    model = ResNetHandObjectNet(SMALL)
    history = train_resnet_estimator(model, dataset, embeddings, ResNetTrainConfig(epochs=40, batch_size=4,
                                                                                   learning_rate=1e-3))
    first, last = history[0], history[-1]
    assert last["total"] < 0.05 * first["total"]
    assert last["2d"] < 0.3 * first["2d"] and last["depth"] < 0.2 * first["depth"]
    model.train()  # BatchNorm statistics of four images are the batch statistics
    with torch.no_grad():
        out = model(dataset.images)
    predicted = (torch.nn.functional.normalize(out["object_feature"], dim=-1) @ embeddings.T).argmax(-1)
    assert torch.equal(predicted, dataset.object_index)


def test_training_rejects_embeddings_of_the_wrong_size():
    dataset = SkeletonImageDataset(2, SMALL, seed=0)
    with pytest.raises(ValueError, match="16-d"):
        train_resnet_estimator(ResNetHandObjectNet(SMALL), dataset, torch.randn(4, 8), ResNetTrainConfig(epochs=1))


def test_estimator_wrapper_returns_camera_frame_hands_and_survives_a_checkpoint(tmp_path):
    torch.manual_seed(0)
    model = ResNetHandObjectNet(SMALL)
    save_checkpoint(model, tmp_path / "estimator.pt")
    loaded = ResNetHandEstimator.from_checkpoint(tmp_path / "estimator.pt")
    image = np.random.default_rng(0).integers(0, 255, size=(120, 200, 3), dtype=np.uint8)
    cam = CameraIntrinsics.from_fov(200, 120, 70)
    direct = ResNetHandEstimator(model).estimate(image, intrinsics=cam, stamp=3)
    hands = loaded.estimate(image, intrinsics=cam, stamp=3)
    np.testing.assert_allclose(hands.joints, direct.joints, atol=1e-5)
    assert hands.presence.all() and hands.stamp == 3 and np.isfinite(hands.joints).all()
    # The hands are placed so that they project onto the predicted 2D keypoints of the real image.
    error = np.linalg.norm(project(hands.joints, cam) - hands.keypoints_2d, axis=-1)
    assert np.median(error) < 2.0
    with pytest.raises(ValueError, match="uint8"):
        loaded.estimate(image.astype(np.float32))
