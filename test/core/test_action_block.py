import pytest
import torch
from model_batches import TINY, pose_batch

from ghtt_core.action_block import ActionBlock, ActionInputs, ObjectTokens, TextAlignment, following_phases
from ghtt_core.config import ActionBlockConfig, PoseBlockConfig, TransformerConfig, preset
from ghtt_core.pose_block import PoseBlock

TEXT_DIM = 12


def tiny_block(**overrides):
    torch.manual_seed(0)
    settings = dict(transformer=TINY, text_dim=TEXT_DIM, max_clips=8)
    settings.update(overrides)
    return ActionBlock(ActionBlockConfig(**settings))


def random_inputs(batch=3, clips=4, seed=0, with_objects=True):
    generator = torch.Generator().manual_seed(seed)
    valid = torch.ones(batch, clips, dtype=torch.bool)
    valid[0, 2:] = False
    return ActionInputs(
        mids=torch.randn(batch, clips, 32, generator=generator),
        clip_valid=valid,
        phase=torch.arange(clips).expand(batch, -1).clone(),
        object_embeddings=torch.randn(batch, clips, TEXT_DIM, generator=generator) if with_objects else None,
    )


def test_encode_shapes_and_padded_clips_are_ignored():
    block = tiny_block().eval()
    inputs = random_inputs()
    encoding = block.encode(inputs)
    assert encoding.mu.shape == encoding.logvar.shape == (3, 32)
    assert encoding.tokens.shape == (3, 4, 32)  # one skip token per clip (the mid-level positions)
    changed = ActionInputs(
        mids=inputs.mids.clone(), clip_valid=inputs.clip_valid, phase=inputs.phase.clone(),
        object_embeddings=inputs.object_embeddings.clone(),
    )
    changed.mids[0, 2:] = 40.0
    changed.object_embeddings[0, 2:] = -3.0
    changed.phase[0, 2:] = 99
    other = block.encode(changed)
    torch.testing.assert_close(encoding.mu, other.mu)
    torch.testing.assert_close(encoding.tokens[0, :2], other.tokens[0, :2])


def test_object_tokens_projection_and_unknown():
    torch.manual_seed(0)
    identity = ObjectTokens(text_dim=32, d_model=32)
    embeddings = torch.randn(2, 3, 32)
    torch.testing.assert_close(identity((2, 3), embeddings), embeddings)
    known = torch.tensor([[True, False, True], [False, False, False]])
    tokens = identity((2, 3), embeddings, known)
    torch.testing.assert_close(tokens[0, 1], identity.unknown_object)
    torch.testing.assert_close(tokens[0, 2], embeddings[0, 2])
    projected = ObjectTokens(text_dim=TEXT_DIM, d_model=32)
    assert projected((2, 3), torch.randn(2, 3, TEXT_DIM)).shape == (2, 3, 32)
    torch.testing.assert_close(projected((2, 3)), projected.unknown_object.expand(2, 3, 32))
    with pytest.raises(ValueError, match="object_embeddings"):
        projected((2, 3), torch.randn(2, 3, 32))


def test_alignment_top_k_ordering():
    torch.manual_seed(0)
    alignment = TextAlignment(TEXT_DIM, 32, tau=0.07)
    labels = torch.randn(6, TEXT_DIM)
    anchors = alignment.project(labels).detach()
    latent = torch.stack([anchors[4], 0.9 * anchors[1] + 0.1 * anchors[3]])
    scores, indices = alignment.top_k(latent, labels, k=3)
    assert indices[:, 0].tolist() == [4, 1]
    assert (scores[:, :-1] >= scores[:, 1:]).all()
    assert (scores.sum(dim=-1) <= 1.0 + 1e-6).all()
    full, _ = alignment.top_k(latent, labels, k=10)  # k clipped to the number of labels
    torch.testing.assert_close(full.sum(dim=-1), torch.ones(2))


def test_training_noise_and_skip_behaviour():
    inputs = random_inputs()
    phases = following_phases(inputs, 3)
    assert phases[0].tolist() == [2, 3, 4] and phases[1].tolist() == [4, 5, 6]
    block = tiny_block().eval()
    first, second = block(inputs, phases), block(inputs, phases)
    assert first.used_skip  # always on at test
    torch.testing.assert_close(first.predicted_mids, second.predicted_mids)
    without = block(inputs, phases, use_skip=False)
    assert not torch.allclose(first.predicted_mids, without.predicted_mids)
    noisy = tiny_block(skip_prob=1.0, noise_std=1.0).train()
    clean = tiny_block(skip_prob=1.0, noise_std=0.0).train()
    torch.manual_seed(1)
    noisy_mu = noisy(inputs, phases).encoding.mu
    torch.manual_seed(1)
    clean_mu = clean(inputs, phases).encoding.mu
    assert not torch.allclose(noisy_mu, clean_mu)
    assert not tiny_block(skip_prob=0.0).train()(inputs, phases).used_skip


def test_loss_masks_future_clips_and_tiny_overfit_recognises():
    block = tiny_block(noise_std=0.1).train()
    inputs = random_inputs(batch=4, seed=3)
    label_embeddings = torch.randn(3, TEXT_DIM)
    labels = torch.tensor([0, 2, 1, 2])
    future_phase = following_phases(inputs, 3)
    future_mids = torch.randn(4, 3, 32)
    future_valid = torch.tensor([[True, True, False]] * 4)
    optimiser = torch.optim.Adam(block.parameters(), lr=3e-3)
    totals = []
    for _ in range(60):
        terms = block.loss(block(inputs, future_phase, future_valid), label_embeddings, labels, future_mids,
                           future_valid)
        optimiser.zero_grad()
        terms["total"].backward()
        optimiser.step()
        totals.append(terms["total"].item())
    assert set(terms) == {"dist", "con", "kl", "mid", "total"}
    assert totals[-1] < 0.5 * totals[0]
    _, indices = block.eval().recognize(inputs, label_embeddings, k=2)
    assert indices[:, 0].tolist() == labels.tolist()

    output = block(inputs, future_phase, future_valid)
    junk = future_mids.clone()
    junk[:, 2] = 1e3
    torch.testing.assert_close(
        block.loss(output, label_embeddings, labels, future_mids, future_valid)["mid"],
        block.loss(output, label_embeddings, labels, junk, future_valid)["mid"],
    )


def test_predict_midlevels_samples_and_action_control():
    block = tiny_block().eval()
    inputs = random_inputs()
    phases = following_phases(inputs, 5)
    generator = torch.Generator().manual_seed(0)
    mids = block.predict_midlevels(inputs, phases, num_samples=4, generator=generator)
    assert mids.shape == (3, 4, 5, 32)
    torch.testing.assert_close(mids[:, 0], block(inputs, phases).predicted_mids)  # sample 0 = deterministic
    assert not torch.allclose(mids[:, 1], mids[:, 2])
    cold = block.predict_midlevels(inputs, phases, num_samples=3, temperature=0.0)
    torch.testing.assert_close(cold[:, 1], cold[:, 0])

    action = torch.randn(3, TEXT_DIM)
    controlled = block.predict_midlevels(inputs, phases, num_samples=2, action_embedding=action)
    encoding = block.encode(inputs)
    expected = block.decode(block.alignment.project(action), encoding.tokens, inputs.clip_valid, phases)
    torch.testing.assert_close(controlled[:, 0], expected)
    assert not torch.allclose(controlled[:, 0], mids[:, 0])
    with pytest.raises(ValueError, match="action_embedding"):
        block.predict_midlevels(inputs, phases, action_embedding=torch.randn(3, 32))


def test_pb_chain_output_shapes_and_sampling():
    torch.manual_seed(0)
    pose = PoseBlock(PoseBlockConfig(transformer=TINY)).eval()
    action = tiny_block().eval()
    batch = pose_batch(batch=2)
    clip_features = batch.features.view(2, 2, 16, 153)
    clip_masks = batch.feature_mask.view(2, 2, 16, 153)
    clip_frames = batch.frame_valid.view(2, 2, 16)
    clip_valid = torch.ones(2, 2, dtype=torch.bool)
    phase = torch.tensor([[0, 1], [3, 4]])
    future_phase = torch.tensor([[2, 3, 4], [5, 6, 7]])
    args = (pose, clip_features, clip_masks, clip_frames, clip_valid, phase, future_phase)
    first = action.predict_future_features(*args, num_samples=5)
    second = action.predict_future_features(*args, num_samples=5)
    assert first.shape == (2, 5, 3, 16, 153)
    torch.testing.assert_close(first[:, 0], second[:, 0])
    assert not torch.allclose(first[:, 1], second[:, 1])
    assert not torch.allclose(first[:, 1], first[:, 2])
    mids = pose.encode_clips(clip_features, clip_masks, clip_frames)
    deterministic = action.predict_midlevels(ActionInputs(mids, clip_valid, phase), future_phase)[:, 0]
    torch.testing.assert_close(first[:, 0], pose.decode_mid(deterministic))


def test_bad_inputs_raise():
    block = tiny_block()
    inputs = random_inputs()
    with pytest.raises(ValueError, match="at most 8 clips"):
        block.encode(ActionInputs(torch.randn(1, 9, 32), torch.ones(1, 9, dtype=torch.bool),
                                  torch.zeros(1, 9, dtype=torch.long)))
    with pytest.raises(ValueError, match="phase"):
        block.encode(ActionInputs(inputs.mids, inputs.clip_valid, inputs.phase.float()))
    with pytest.raises(ValueError, match="text_dim"):
        block.alignment.losses(torch.randn(2, 32), torch.randn(3, 7), torch.tensor([0, 1]))


def test_paper_preset_instantiates():
    cfg = preset("paper")
    block = ActionBlock(cfg.action)
    assert 50e6 < sum(p.numel() for p in block.parameters()) < 80e6
    assert isinstance(block.objects.projection, torch.nn.Linear)  # 384-d MiniLM -> 512
    narrow = TransformerConfig(d_model=512, n_heads=8, d_ff=64, n_enc_layers=1, n_dec_layers=1)
    clip_block = ActionBlock(ActionBlockConfig(text_dim=512, transformer=narrow))
    assert isinstance(clip_block.objects.projection, torch.nn.Identity)  # OpenCLIP 512-d enters raw
