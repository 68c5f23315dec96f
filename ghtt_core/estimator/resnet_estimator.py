"""The paper's image estimator (method-notes 8.1): ResNet-18 -> two-hand 2.5D joints in a normalised virtual camera
and an object feature in the text-embedding space.

Normalised virtual camera: the full frame is resized to image_width x image_height (paper: 480 x 270) and seen by
K_n = [[W/2, 0, W/2], [0, W/2, H/2], [0, 0, 1]] (paper: f = 240, c = (240, 135); 90 deg horizontal FOV).
To25D (HTT / G-HTT `To25DBranch`): per joint the head predicts (dx, dy, s);
u = cx + trans_factor * (W / 480) * dx, v = cy + trans_factor * (W / 480) * dy, Z = depth_factor * s + depth_offset,
and X, Y are back-projected with K_n. depth_factor = 240 * 1e-4 (the paper's f * scale_factor at 480 px wide).
"""

from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from ghtt_core.estimator.camera import CameraIntrinsics, project
from ghtt_core.estimator.frame_hands import FrameHands
from ghtt_core.estimator.image_input import as_rgb_image
from ghtt_core.estimator.object_embedding import object_feature_loss
from ghtt_core.skeleton import NUM_HANDS, NUM_JOINTS, UNUSED_JOINT

REFERENCE_WIDTH = 480.0


@dataclass(frozen=True)
class ResNetEstimatorConfig:
    image_height: int = 270
    image_width: int = 480
    object_embedding_dim: int = 512  # 512 for OpenCLIP ViT-B-32 text embeddings, 384 for MiniLM
    hidden_dim: int = 512
    trans_factor: float = 100.0
    depth_factor: float = 0.024
    depth_offset: float = 0.4
    # Loss weights (HTT defaults; the paper does not give them). The 2D loss is on the head's offset units
    # (pixels / pixel_scale, ~ 1 for a hand's extent), the depth loss in metres.
    weight_2d: float = 1.0
    weight_depth: float = 100.0
    weight_object: float = 1.0
    temperature: float = 0.07

    def __post_init__(self):
        if self.image_height < 32 or self.image_width < 32:
            raise ValueError(f"image size must be at least 32x32, got {self.image_width}x{self.image_height}")

    @property
    def virtual_camera(self):
        focal = self.image_width / 2.0
        return CameraIntrinsics(
            focal, focal, self.image_width / 2.0, self.image_height / 2.0, self.image_width, self.image_height
        )

    @property
    def pixel_scale(self):
        """Pixels per unit of the head's (dx, dy) output."""
        return self.trans_factor * self.image_width / REFERENCE_WIDTH


def to_25d(raw, config):
    """Head output (..., 3) = (dx, dy, s) -> (uv (..., 2) virtual-camera pixels, depth (...) metres)."""
    cam = config.virtual_camera
    centre = raw.new_tensor([cam.cx, cam.cy])
    uv = centre + config.pixel_scale * raw[..., :2]
    depth = config.depth_factor * raw[..., 2] + config.depth_offset
    return uv, depth


def lift_25d(uv, depth, config):
    """Back-project virtual-camera pixels and depths to (..., 3) points in the virtual camera (metres)."""
    cam = config.virtual_camera
    x = (uv[..., 0] - cam.cx) / cam.fx * depth
    y = (uv[..., 1] - cam.cy) / cam.fy * depth
    return torch.stack([x, y, depth], dim=-1)


class ResNetHandObjectNet(nn.Module):
    """ResNet-18 (random init: no pretrained weights here) + hand head (126 = 2 x 21 x 3) + object head."""

    def __init__(self, config=None):
        super().__init__()
        from torchvision.models import resnet18

        self.config = config or ResNetEstimatorConfig()
        backbone = resnet18(weights=None)
        backbone.fc = nn.Identity()
        self.backbone = backbone
        hidden = self.config.hidden_dim
        self.hand_head = nn.Sequential(
            nn.Linear(512, hidden), nn.LeakyReLU(), nn.Linear(hidden, hidden), nn.LeakyReLU(),
            nn.Linear(hidden, NUM_HANDS * NUM_JOINTS * 3),
        )
        self.object_head = nn.Linear(512, self.config.object_embedding_dim)

    def forward(self, images):
        """images: (B, 3, H, W) from preprocess_images -> dict with uv (B,2,21,2), depth (B,2,21),
        joints_virtual (B,2,21,3) metres in the virtual camera, object_feature (B, D), image_feature (B, 512)."""
        feature = self.backbone(images)
        raw = self.hand_head(feature).view(-1, NUM_HANDS, NUM_JOINTS, 3)
        uv, depth = to_25d(raw, self.config)
        return {
            "uv": uv,
            "depth": depth,
            "joints_virtual": lift_25d(uv, depth, self.config),
            "object_feature": self.object_head(feature),
            "image_feature": feature,
        }


def preprocess_images(images_rgb, config):
    """RGB uint8 images (list or (B, H, W, 3)) -> (B, 3, image_height, image_width) float, to_tensor then mean 0.5 /
    std 1 (as the paper)."""
    import cv2

    batch = []
    for image in images_rgb:
        size = (config.image_width, config.image_height)
        resized = cv2.resize(as_rgb_image(image), size, interpolation=cv2.INTER_AREA)
        batch.append(torch.from_numpy(resized).permute(2, 0, 1))
    return torch.stack(batch).float() / 255.0 - 0.5


def joint_loss_mask(presence):
    """(B, 2) hand presence -> (B, 2, 21) bool: present hands, thumb CMC excluded (never supervised)."""
    mask = presence[:, :, None].expand(-1, -1, NUM_JOINTS).clone()
    mask[:, :, UNUSED_JOINT] = False
    return mask


def resnet_estimator_loss(outputs, batch, label_embeddings, config):
    """Weighted sum of the 2D loss, the absolute-depth loss and the object losses; returns (total, parts dict).

    batch: uv (B,2,21,2) virtual-camera px, depth (B,2,21) m, presence (B,2) bool, object_index (B,) long (-1 unknown).
    """
    mask = joint_loss_mask(batch["presence"])
    count = mask.sum().clamp(min=1)
    uv_error = ((outputs["uv"] - batch["uv"]) / config.pixel_scale).pow(2).sum(-1)
    loss_2d = (uv_error * mask).sum() / count
    loss_depth = ((outputs["depth"] - batch["depth"]).pow(2) * mask).sum() / count
    code_loss, contrastive_loss = object_feature_loss(
        outputs["object_feature"], batch["object_index"], label_embeddings, config.temperature
    )
    total = (
        config.weight_2d * loss_2d + config.weight_depth * loss_depth
        + config.weight_object * (code_loss + contrastive_loss)
    )
    parts = {"2d": loss_2d, "depth": loss_depth, "object_code": code_loss, "object_contrastive": contrastive_loss}
    return total, {name: float(value.detach()) for name, value in parts.items()}


def virtual_camera_targets(joints_camera, presence, intrinsics, config):
    """Ground truth for the hand head: re-express camera-frame GT joints in the virtual camera of the resized image.

    Fits a rigid transform (EPnP, as the paper's solve_pnp_and_transform) so that the 3D joints project with K_n onto
    their 2D positions in the resized image. joints_camera: (2, 21, 3) m; presence: (2,) bool;
    intrinsics: the real camera. Returns (uv (2,21,2), depth (2,21)) float32.
    """
    import cv2

    joints_camera = np.asarray(joints_camera, dtype=np.float64)
    presence = np.asarray(presence, dtype=bool)
    if not presence.any():
        raise ValueError("virtual_camera_targets needs at least one present hand")
    virtual = config.virtual_camera
    pixels = project(joints_camera, intrinsics.scaled(config.image_width, config.image_height))
    points = joints_camera[presence].reshape(-1, 3)
    ok, rvec, tvec = cv2.solvePnP(
        points, pixels[presence].reshape(-1, 2), virtual.matrix, None, flags=cv2.SOLVEPNP_EPNP
    )
    if not ok:
        raise ValueError("EPnP failed to map the joints into the virtual camera")
    rotation = cv2.Rodrigues(rvec)[0]
    joints_virtual = joints_camera @ rotation.T + tvec.reshape(1, 1, 3)
    return project(joints_virtual, virtual).astype(np.float32), joints_virtual[..., 2].astype(np.float32)


class ResNetHandEstimator:
    """HandEstimator around a trained ResNetHandObjectNet. The network always predicts both hands (it has no presence
    head, as in the paper), so presence is all True and confidence 1. The virtual-camera prediction is mapped to the
    real camera by EPnP with the predicted 2D and the real intrinsics (the paper's back_to_ori_camera)."""

    def __init__(self, model, default_horizontal_fov_deg=60.0, device="cpu"):
        self.model = model.to(device).eval()
        self.device = device
        self.default_horizontal_fov_deg = default_horizontal_fov_deg

    @classmethod
    def from_checkpoint(cls, path, device="cpu"):
        state = torch.load(path, map_location=device, weights_only=True)
        model = ResNetHandObjectNet(ResNetEstimatorConfig(**state["config"]))
        model.load_state_dict(state["model"])
        return cls(model, device=device)

    def reset(self):
        """Stateless per frame: nothing to forget."""

    @torch.no_grad()
    def estimate(self, image_rgb, intrinsics=None, depth=None, stamp=None):
        import cv2

        image = as_rgb_image(image_rgb)
        height, width = image.shape[:2]
        if intrinsics is None:
            intrinsics = CameraIntrinsics.from_fov(width, height, self.default_horizontal_fov_deg)
        config = self.model.config
        outputs = self.model(preprocess_images([image], config).to(self.device))
        joints_virtual = outputs["joints_virtual"][0].double().cpu().numpy()
        keypoints = outputs["uv"][0].double().cpu().numpy() * np.array([width / config.image_width,
                                                                          height / config.image_height])
        ok, rvec, tvec = cv2.solvePnP(
            joints_virtual.reshape(-1, 3), keypoints.reshape(-1, 2), intrinsics.matrix, None, flags=cv2.SOLVEPNP_EPNP
        )
        if not ok:
            raise ValueError("EPnP failed to map the prediction into the real camera")
        joints = joints_virtual @ cv2.Rodrigues(rvec)[0].T + tvec.reshape(1, 1, 3)
        return FrameHands(joints, np.ones(NUM_HANDS, bool), np.ones(NUM_HANDS), keypoints, intrinsics, stamp)


def save_checkpoint(model, path):
    torch.save({"config": asdict(model.config), "model": model.state_dict()}, path)
