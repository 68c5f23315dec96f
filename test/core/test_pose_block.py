import pytest
import torch
from model_batches import TINY, pose_batch, pose_loss_args

from ghtt_core.config import PoseBlockConfig, preset
from ghtt_core.pose_block import (
    FrameFeatureEmbedding,
    PoseBlock,
    hand_presence_from_mask,
    trajectory_from_features,
    unused_joint_slice,
)
from ghtt_core.representation import LEFT_TO_RIGHT_SLICE, VELOCITY_SLICES


def tiny_block(**overrides):
    torch.manual_seed(0)
    return PoseBlock(PoseBlockConfig(transformer=TINY, **overrides))


def test_shapes_and_refinement():
    block = tiny_block().eval()
    batch = pose_batch()
    encoding = block.encode(*batch.observed())
    assert encoding.mu.shape == encoding.logvar.shape == (2, 32)
    assert encoding.tokens.shape == (2, 16, 32)
    assert encoding.refined.shape == (2, 16, 153)
    output = block(*batch.observed())
    assert output.predicted.shape == (2, 16, 153)
    torch.testing.assert_close(output.mid, encoding.mu)  # eval: no sampling
    assert not output.used_skip  # eval default: memory [m] only


def test_gt_velocities_accumulate_to_gt_local2base():
    batch = pose_batch()
    future, _, _ = batch.future()
    torch.testing.assert_close(trajectory_from_features(future), batch.future_local2base, atol=1e-4, rtol=0)


def test_padded_frames_and_masked_slots_do_not_change_valid_outputs():
    block = tiny_block().eval()
    batch = pose_batch()
    features, mask, valid = batch.observed()
    valid = valid.clone()
    valid[0, 10:] = False
    first = block.encode(features, mask, valid)
    junk = features.clone()
    junk[0, 10:] = torch.randn(6, 153) * 10  # padded frames
    junk[~mask] = 123.0  # slots the mask marks invalid (joint 1, ...)
    second = block.encode(junk, mask, valid)
    torch.testing.assert_close(first.mu, second.mu)
    torch.testing.assert_close(first.refined[0, :10], second.refined[0, :10])
    torch.testing.assert_close(first.refined[1], second.refined[1])


def test_absent_hand_does_not_look_like_a_zero_hand():
    torch.manual_seed(0)
    embedding = FrameFeatureEmbedding(32)
    features = torch.zeros(1, 1, 153)
    present = torch.ones(1, 1, 153, dtype=torch.bool)
    absent_left = present.clone()
    absent_left[..., :63] = False
    absent_left[..., VELOCITY_SLICES[0]] = False
    absent_left[..., LEFT_TO_RIGHT_SLICE] = False
    assert hand_presence_from_mask(absent_left).tolist() == [[[False, True]]]
    difference = embedding(features, absent_left) - embedding(features, present)
    # The only difference is the learned absent-left embedding.
    torch.testing.assert_close(difference[0, 0], embedding.absent_hand[0])


def test_unused_joint_slots_get_the_placeholder():
    torch.manual_seed(0)
    embedding = FrameFeatureEmbedding(32)
    filled = embedding.fill_unused_joint(torch.zeros(2, 153))
    torch.testing.assert_close(filled[:, unused_joint_slice(0)], embedding.unused_joint_placeholder[0].expand(2, 3))
    torch.testing.assert_close(filled[:, unused_joint_slice(1)], embedding.unused_joint_placeholder[1].expand(2, 3))
    assert unused_joint_slice(1) == slice(66, 69)
    assert filled[:, 6:66].abs().sum() == 0


def test_skip_memory_on_off():
    batch = pose_batch()
    always = tiny_block(skip_prob=1.0).train()
    never = tiny_block(skip_prob=0.0).train()
    assert always(*batch.observed()).used_skip and not never(*batch.observed()).used_skip
    block = tiny_block().eval()
    with_skip = block(*batch.observed(), use_skip=True).predicted
    without = block(*batch.observed(), use_skip=False).predicted
    assert not torch.allclose(with_skip, without)
    encoding = block.encode(*batch.observed())
    torch.testing.assert_close(without, block.decode_mid(encoding.mu))


def test_pa_step_samples():
    block = tiny_block().eval()
    batch = pose_batch()
    samples = block.predict_next_clip(*batch.observed(), num_samples=3, generator=torch.Generator().manual_seed(0))
    assert samples.shape == (2, 3, 16, 153)
    torch.testing.assert_close(samples[:, 0], block(*batch.observed(), use_skip=True).predicted)
    assert not torch.allclose(samples[:, 1], samples[:, 2])
    cold = block.predict_next_clip(*batch.observed(), num_samples=2, temperature=0.0)
    torch.testing.assert_close(cold[:, 1], cold[:, 0])


def test_loss_terms_masks_and_tiny_overfit():
    block = tiny_block(skip_prob=0.5).train()
    batch = pose_batch(batch=4)
    args = pose_loss_args(batch)
    optimiser = torch.optim.Adam(block.parameters(), lr=3e-3)
    totals = []
    for _ in range(40):
        terms = block.loss(block(*batch.observed()), **args)
        optimiser.zero_grad()
        terms["total"].backward()
        optimiser.step()
        totals.append(terms["total"].item())
    assert set(terms) == {"obs", "pred", "trj", "kl", "total"}
    assert all(torch.isfinite(value) for value in terms.values())
    assert totals[-1] < 0.5 * totals[0]

    block.eval()
    output = block(*batch.observed())
    nothing_counts = dict(args, observed_mask=torch.zeros_like(args["observed_mask"]))
    assert block.loss(output, **nothing_counts)["obs"].item() == 0.0
    # Invalid future frames count nowhere, whatever their targets hold.
    invalid_tail = dict(args, future_frame_valid=args["future_frame_valid"].clone())
    invalid_tail["future_frame_valid"][:, 8:] = False
    junk = dict(invalid_tail, future=args["future"].clone(), future_local2base=args["future_local2base"].clone())
    junk["future"][:, 8:] = 99.0
    junk["future_local2base"][:, 8:] = 99.0
    first, second = block.loss(output, **invalid_tail), block.loss(output, **junk)
    torch.testing.assert_close(first["pred"], second["pred"])
    torch.testing.assert_close(first["trj"], second["trj"])


def test_encode_clips_handles_empty_clips():
    block = tiny_block().eval()
    batch = pose_batch(batch=2)
    clips = batch.features.view(2, 2, 16, 153)
    masks = batch.feature_mask.view(2, 2, 16, 153)
    valid = batch.frame_valid.view(2, 2, 16).clone()
    valid[1, 1] = False
    mids = block.encode_clips(clips, masks, valid)
    assert mids.shape == (2, 2, 32)
    assert mids[1, 1].abs().sum() == 0
    torch.testing.assert_close(mids[0, 1], block.encode(clips[0, 1:], masks[0, 1:], valid[0, 1:]).mu[0])


def test_bad_inputs_raise():
    block = tiny_block()
    batch = pose_batch()
    features, mask, valid = batch.observed()
    with pytest.raises(ValueError, match="feature_mask"):
        block.encode(features, mask.float(), valid)
    with pytest.raises(ValueError, match="at most 16"):
        block.encode(batch.features, batch.feature_mask, batch.frame_valid)
    with pytest.raises(ValueError, match="at least one valid frame"):
        block.encode(features, mask, torch.zeros_like(valid))


def test_paper_preset_instantiates():
    block = PoseBlock(preset("paper").pose)
    parameters = sum(p.numel() for p in block.parameters())
    assert 50e6 < parameters < 80e6
    assert block.embedding.joints.out_features == 256 and block.embedding.velocities.out_features == 128


def test_untrained_head_outputs_identity_rotations():
    from ghtt_core.geometry import rotation_6d_to_matrix
    from ghtt_core.pose_block import ROTATION_6D_SLICES, FeatureHead

    head = FeatureHead(32)
    features = head(torch.randn(4, 16, 32))
    for rotation_slice in ROTATION_6D_SLICES:
        rotation = rotation_6d_to_matrix(features[..., rotation_slice])
        torch.testing.assert_close(rotation, torch.eye(3).expand_as(rotation))
    assert features[..., :126].std() > 0  # the joint outputs are not constrained
