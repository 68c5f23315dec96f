"""Tiny randomly initialised G-HTT models and exactly predictable hand motion for the inference/pipeline tests."""

import torch
from model_batches import TINY, canonical_hands

from ghtt_core import geometry
from ghtt_core.action_block import ActionBlock
from ghtt_core.checkpoint import LabelEmbeddings, ModelCheckpoint
from ghtt_core.config import ActionBlockConfig, FlattenedConfig, ModelConfig, PoseBlockConfig
from ghtt_core.pose_block import PoseBlock
from ghtt_core.representation import encode_features
from ghtt_core.taxonomy import ActionLabel, Taxonomy

TEXT_DIM = 12
TAXONOMY = Taxonomy(
    actions=(
        ActionLabel("grab cup", "grab", "cup"),
        ActionLabel("open jar", "open", "jar"),
        ActionLabel("pour cup", "pour", "cup"),
        ActionLabel("place jar", "place", "jar"),
    ),
    objects=("cup", "jar"),
)


def tiny_config() -> ModelConfig:
    return ModelConfig(
        pose=PoseBlockConfig(transformer=TINY),
        action=ActionBlockConfig(transformer=TINY, text_dim=TEXT_DIM, max_clips=16),
        flattened=FlattenedConfig(transformer=TINY, text_dim=TEXT_DIM),
    )


def tiny_model(with_action_block: bool = True, seed: int = 0) -> ModelCheckpoint:
    torch.manual_seed(seed)
    config = tiny_config()
    generator = torch.Generator().manual_seed(seed)
    embeddings = LabelEmbeddings(
        "random-test",
        torch.nn.functional.normalize(torch.randn(len(TAXONOMY.actions), TEXT_DIM, generator=generator), dim=-1),
        torch.nn.functional.normalize(torch.randn(len(TAXONOMY.objects), TEXT_DIM, generator=generator), dim=-1),
    )
    return ModelCheckpoint(
        config=config,
        pose_block=PoseBlock(config.pose).eval(),
        action_block=ActionBlock(config.action).eval() if with_action_block else None,
        taxonomy=TAXONOMY,
        label_embeddings=embeddings,
        model_id="tiny-test",
    )


def constant_twist_hands(frames: int, seed: int = 0) -> torch.Tensor:
    """(frames, 2, 21, 3) float64 metres: each rigid hand moves by the same palm-frame step every frame, i.e. its
    velocity feature (local(t) -> local(t-1)) is constant, so the motion's continuation is known exactly."""
    generator = torch.Generator().manual_seed(seed)
    hands = canonical_hands().double()
    step_R = geometry.axis_angle_to_matrix(torch.randn(2, 3, generator=generator, dtype=torch.float64) * 0.03)
    step_t = torch.randn(2, 3, generator=generator, dtype=torch.float64) * 0.004
    R = geometry.axis_angle_to_matrix(torch.randn(2, 3, generator=generator, dtype=torch.float64))
    t = torch.tensor([[-0.15, 0.0, 0.5], [0.15, 0.0, 0.5]], dtype=torch.float64)
    poses = []
    for _ in range(frames):
        poses.append(geometry.apply_transform(hands, R, t))
        R, t = geometry.compose_transforms(step_R, step_t, R, t)
    return torch.stack(poses)


def make_decoder_output_constant(model: ModelCheckpoint, joints: torch.Tensor):
    """Make the shared P-Block output head emit frame 1's feature of `joints` (T, 2, 21, 3) for every token: a
    decoder that continues a constant-twist motion exactly, whatever the latent."""
    features = encode_features(joints, torch.ones(joints.shape[:2], dtype=torch.bool)).features
    last_layer = model.pose_block.output_head[-1]
    with torch.no_grad():
        last_layer.weight.zero_()
        last_layer.bias.copy_(features[1].float())
