import dataclasses

import pytest
import torch

from ghtt_core.action_block import ActionBlock
from ghtt_core.checkpoint import load_checkpoint, save_checkpoint
from ghtt_core.pose_block import PoseBlock
from ghtt_core.pose_block import trajectory_from_features
from ghtt_core.representation import encode_features, local2base
from ghtt_core.train.action import (
    ActionTrainingOptions,
    ActionTrainingStep,
    ActionWindowDataset,
    rollout_loss_terms,
    train_action,
)
from ghtt_core.train.loop import LoopOptions
from ghtt_core.train.pose import PoseTrainingOptions, train_pose
from ghtt_core.train.midlevels import action_clips, build_midlevel_cache
from training_data import WindowList, action_sequences, taxonomy_and_embeddings, tiny_config


def _pose_checkpoint(path):
    config = tiny_config()
    torch.manual_seed(0)
    save_checkpoint(path, config, PoseBlock(config.pose))
    return config


def _options(steps, **loop):
    loop = {"lr": 3e-3, "batch_size": 8, "steps": steps, "seed": 1, "checkpoint_every": 1000, "val_every": 1000,
            "log_every": 1, **loop}
    return ActionTrainingOptions(loop=LoopOptions(**loop), object_drop_prob=0.3)


def test_action_clips_tile_the_action_and_pad_with_the_last_frame():
    joints = torch.arange(100 * 2 * 21 * 3, dtype=torch.float32).reshape(100, 2, 21, 3).numpy()
    presence = torch.ones(100, 2, dtype=torch.bool).numpy()
    clip_joints, clip_presence, frame_valid = action_clips(joints, presence, 10, 45, 16)
    assert clip_joints.shape == (3, 16, 2, 21, 3)
    assert frame_valid.sum() == 35 and frame_valid[2, :3].all() and not frame_valid[2, 3:].any()
    assert (clip_joints[0, 0] == joints[10]).all()
    assert (clip_joints[2, 15] == joints[44]).all()  # padding repeats the last real frame


def test_midlevel_cache_matches_the_frozen_encoder():
    config = tiny_config()
    torch.manual_seed(0)
    pose_block = PoseBlock(config.pose)
    sequences = action_sequences(2)
    taxonomy, _ = taxonomy_and_embeddings(sequences)
    cache = build_midlevel_cache(pose_block, sequences, taxonomy, use_estimated_input=True)

    assert len(cache) == 6
    segment = sequences[1].actions[2]
    entry = cache[5]
    assert entry.label == taxonomy.action_index(segment.label) and entry.noun == taxonomy.object_index(segment.noun)
    assert len(entry.target_mids) == -(-(segment.end - segment.start) // 16)
    # estimated input differs from the truth, and the truth mids equal a direct encoding of the clips
    assert not torch.allclose(entry.input_mids, entry.target_mids)
    truth_only = build_midlevel_cache(pose_block, sequences, taxonomy, use_estimated_input=False)
    assert torch.equal(truth_only[5].input_mids, entry.target_mids)


def test_windows_respect_capacity_and_phases():
    config = tiny_config()
    torch.manual_seed(0)
    sequences = action_sequences(2)
    taxonomy, _ = taxonomy_and_embeddings(sequences)
    cache = build_midlevel_cache(PoseBlock(config.pose), sequences, taxonomy)
    dataset = ActionWindowDataset(cache, capacity=3, random_lengths=True)
    assert len(dataset) == sum(len(entry.input_mids) for entry in cache)
    for index in range(len(dataset)):
        item = dataset[index]
        action_index, start = dataset.index[index]
        n_obs, n_pred = int(item["clip_valid"].sum()), int(item["future_valid"].sum())
        clips_left = len(cache[action_index].input_mids) - start
        assert min(3, clips_left) >= n_obs >= 1 and n_obs + n_pred <= clips_left  # every clip shows hands here
        assert int(item["future_phase"][0]) == start + n_obs == int(item["phase"][0]) + n_obs
        assert torch.equal(item["mids"][:n_obs], cache[action_index].input_mids[start:start + n_obs])
        assert torch.equal(item["future_mids"][:n_pred],
                           cache[action_index].target_mids[start + n_obs:start + n_obs + n_pred])


def test_object_drop_uses_the_unknown_token_only_in_training():
    config = tiny_config()
    torch.manual_seed(0)
    sequences = action_sequences(1)
    taxonomy, embeddings = taxonomy_and_embeddings(sequences)
    block = ActionBlock(config.action)
    step = ActionTrainingStep(block, embeddings, object_drop_prob=1.0)
    cache = build_midlevel_cache(PoseBlock(config.pose), sequences, taxonomy)
    batch = torch.utils.data.default_collate([ActionWindowDataset(cache, 4, False)[i] for i in range(4)])
    seen = []
    block.objects.register_forward_hook(lambda module, args, kwargs_out: seen.append(kwargs_out.detach()))
    step.eval()
    step(batch)
    step.train()
    step(batch)
    unknown = block.objects.unknown_object.detach()
    assert not torch.allclose(seen[0][0, 0], unknown)
    assert torch.allclose(seen[1], unknown.expand_as(seen[1]))


def test_training_reduces_the_loss_and_writes_a_full_checkpoint(tmp_path):
    config = _pose_checkpoint(tmp_path / "pose.pt")
    sequences = action_sequences(4)
    taxonomy, embeddings = taxonomy_and_embeddings(sequences)
    train_sequences, val_sequences = sequences[:3], sequences[3:]

    def val_loss(action_block):
        pose_block = load_checkpoint(tmp_path / "pose.pt").pose_block
        cache = build_midlevel_cache(pose_block, val_sequences, taxonomy)
        data = ActionWindowDataset(cache, config.action.max_clips, random_lengths=False)
        batch = torch.utils.data.default_collate([data[i] for i in range(len(data))])
        with torch.no_grad():
            return float(ActionTrainingStep(action_block, embeddings, 0.0).eval()(batch)["total"])

    torch.manual_seed(1)
    before = val_loss(ActionBlock(config.action))
    result = train_action(tmp_path / "pose.pt", train_sequences, val_sequences, taxonomy, embeddings,
                          _options(40), tmp_path / "model.pt", log_path=tmp_path / "log.jsonl", device="cpu",
                          progress=False)
    loaded = load_checkpoint(tmp_path / "model.pt", require="full")
    after = val_loss(loaded.action_block)

    assert result.step == 40 and loaded.training.stage == "action"
    assert after < 0.7 * before
    assert abs(result.last_val["total"] - after) < 1e-4
    # the P-Block is frozen: identical to the pose checkpoint
    pose_before = load_checkpoint(tmp_path / "pose.pt").pose_block.state_dict()
    for name, value in loaded.pose_block.state_dict().items():
        assert torch.equal(value, pose_before[name]), name
    assert loaded.taxonomy == taxonomy and torch.equal(loaded.label_embeddings.objects, embeddings.objects)


def test_resume_continues_the_action_run(tmp_path):
    _pose_checkpoint(tmp_path / "pose.pt")
    sequences = action_sequences(2)
    taxonomy, embeddings = taxonomy_and_embeddings(sequences)
    common = dict(device="cpu", progress=False)
    train_action(tmp_path / "pose.pt", sequences, [], taxonomy, embeddings, _options(6), tmp_path / "a.pt", **common)
    train_action(tmp_path / "pose.pt", sequences, [], taxonomy, embeddings, _options(3), tmp_path / "b.pt", **common)
    result = train_action(tmp_path / "pose.pt", sequences, [], taxonomy, embeddings, _options(6), tmp_path / "b.pt",
                          resume_path=tmp_path / "b.pt", **common)
    assert result.step == 6
    straight = load_checkpoint(tmp_path / "a.pt").action_block.state_dict()
    resumed = load_checkpoint(tmp_path / "b.pt").action_block.state_dict()
    for name in straight:
        assert torch.allclose(straight[name], resumed[name], atol=1e-6), name


def _rollout_cache(config, sequences, taxonomy):
    torch.manual_seed(0)
    pose_block = PoseBlock(config.pose)
    return pose_block, build_midlevel_cache(pose_block, sequences, taxonomy, keep_truth_joints=True)


def test_rollout_targets_start_at_the_end_of_future_clip_zero_and_stop_at_the_action_end():
    config = tiny_config()
    sequences = action_sequences(1)
    taxonomy, _ = taxonomy_and_embeddings(sequences)
    _, cache = _rollout_cache(config, sequences, taxonomy)
    segment = sequences[0].actions[1]
    action_index = 1
    action = cache[action_index]
    assert torch.equal(action.truth_joints, torch.from_numpy(sequences[0].joints[segment.start:segment.end]))
    dataset = ActionWindowDataset(cache, capacity=4, random_lengths=False, rollout_clips=3)
    item = dataset[dataset.index.index((action_index, 0))]
    num_frames = segment.end - segment.start  # 48..64 frames: 3..4 clips, n_obs = clips // 2
    n_obs = int(item["clip_valid"].sum())
    n_pred = int(item["future_valid"].sum())
    base = (n_obs + 1) * 16 - 1
    assert item["rollout_joints"].shape == (1 + 3 * 16, 2, 21, 3)
    assert torch.equal(item["rollout_joints"][0], action.truth_joints[base])
    frames = base + torch.arange(1 + 3 * 16)
    expected_valid = (frames < num_frames) & ((torch.arange(1 + 3 * 16) - 1).div(16, rounding_mode="floor") < n_pred)
    expected_valid[0] = True
    assert torch.equal(item["rollout_valid"], expected_valid)
    last = int(expected_valid.nonzero().max())
    assert torch.equal(item["rollout_joints"][last], action.truth_joints[base + last])


def test_rollout_targets_need_a_cache_with_truth_joints():
    config = tiny_config()
    sequences = action_sequences(1)
    taxonomy, _ = taxonomy_and_embeddings(sequences)
    cache = build_midlevel_cache(PoseBlock(config.pose), sequences, taxonomy)
    with pytest.raises(ValueError, match="keep_truth_joints"):
        ActionWindowDataset(cache, capacity=4, random_lengths=True, rollout_clips=2)


def test_rollout_trajectory_target_is_the_integral_of_the_true_velocities():
    """The decoded velocities are integrated like the truth's: the same convention on both sides of the loss."""
    joints = torch.from_numpy(action_sequences(1)[0].joints[:33]).double()
    truth = encode_features(joints, torch.ones(33, 2, dtype=torch.bool))
    target = local2base(truth.R_cam2local, truth.t_cam2local, 0)[1:]
    integrated = trajectory_from_features(truth.features[1:])
    assert torch.allclose(integrated, target, atol=1e-9)


def test_rollout_loss_trains_the_action_block_through_the_frozen_decoder():
    config = tiny_config()
    config.action.lambda_rollout = 1.0
    config.action.rollout_clips = 2
    sequences = action_sequences(2)
    taxonomy, embeddings = taxonomy_and_embeddings(sequences)
    pose_block, cache = _rollout_cache(config, sequences, taxonomy)
    block = ActionBlock(config.action)
    step = ActionTrainingStep(block, embeddings, 0.0, pose_block).train()
    assert not pose_block.training and not any(p is q for p in step.parameters() for q in pose_block.parameters())
    data = ActionWindowDataset(cache, 4, random_lengths=False, rollout_clips=2)
    batch = torch.utils.data.default_collate([data[i] for i in range(len(data))])
    terms = step(batch)
    assert terms["roll_pred"] > 0 and terms["roll_trj"] > 0
    (terms["roll_pred"] + terms["roll_trj"]).backward()
    assert all(p.grad is None for p in pose_block.parameters())
    grads = [p.grad for p in block.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads) and sum(float(g.abs().sum()) for g in grads) > 0
    # total = the authors' terms + lambda_rollout x the rollout terms
    plain = ActionTrainingStep(ActionBlock(dataclasses.replace(config.action, lambda_rollout=0.0)), embeddings,
                               0.0).eval()
    plain.action_block.load_state_dict(block.state_dict())
    step.eval()
    with torch.no_grad():
        weighted, authors = step(batch), plain(batch)
    assert "roll_trj" not in authors
    assert torch.isclose(weighted["total"], authors["total"] + weighted["roll_pred"] + weighted["roll_trj"],
                         atol=1e-5)
    with pytest.raises(ValueError, match="frozen P-Block"):
        ActionTrainingStep(block, embeddings, 0.0)


def test_the_rollout_loss_is_minimised_through_the_frozen_decoder(tmp_path):
    config = tiny_config()
    # A P-Dec that has learnt something: a random one hardly depends on its mid-level.
    train_pose(config, WindowList(64, seed=3), None, PoseTrainingOptions(loop=LoopOptions(
        lr=3e-3, batch_size=16, steps=80, seed=0, checkpoint_every=1000, val_every=1000, log_every=1000)),
        tmp_path / "pose.pt", device="cpu", progress=False)
    pose_block = load_checkpoint(tmp_path / "pose.pt").pose_block
    sequences = action_sequences(3)
    taxonomy, embeddings = taxonomy_and_embeddings(sequences)
    cache = build_midlevel_cache(pose_block, sequences, taxonomy, keep_truth_joints=True)
    data = ActionWindowDataset(cache, config.action.max_clips, random_lengths=False, rollout_clips=2)
    batch = torch.utils.data.default_collate([data[i] for i in range(len(data))])
    config.action.lambda_rollout = 1.0
    torch.manual_seed(0)
    block = ActionBlock(config.action)
    step = ActionTrainingStep(block, embeddings, 0.0, pose_block).eval()
    optimiser = torch.optim.Adam(block.parameters(), lr=3e-3)
    losses = []
    for _ in range(100):
        terms = step(batch)
        loss = terms["roll_pred"] + terms["roll_trj"]
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(float(loss.detach()))
    with torch.no_grad():
        true_mids = rollout_loss_terms(pose_block, batch["future_mids"], batch)
    assert losses[-1] < 0.9 * losses[0]
    # below what the P-Dec makes of the true future mid-levels, which is all that L_mid asks for
    assert losses[-1] < float(true_mids["roll_pred"] + true_mids["roll_trj"])
    assert all(p.grad is None for p in pose_block.parameters())


def test_rollout_from_the_observation_starts_at_the_last_observed_frame_with_its_mid_level():
    config = tiny_config()
    sequences = action_sequences(1)
    taxonomy, _ = taxonomy_and_embeddings(sequences)
    _, cache = _rollout_cache(config, sequences, taxonomy)
    action_index = 1
    action = cache[action_index]
    dataset = ActionWindowDataset(cache, capacity=4, random_lengths=False, rollout_clips=2,
                                  rollout_from_observation=True)
    item = dataset[dataset.index.index((action_index, 0))]
    n_obs = int(item["clip_valid"].sum())
    n_pred = int(item["future_valid"].sum())
    base = n_obs * 16 - 1  # the last observed frame
    assert item["rollout_joints"].shape == (1 + 3 * 16, 2, 21, 3)
    assert torch.equal(item["rollout_joints"][0], action.truth_joints[base])
    assert torch.equal(item["rollout_first_mid"], action.input_mids[n_obs - 1])
    frames = base + torch.arange(1 + 3 * 16)
    # future clip 0 (decoded from the observed mid-level) counts whenever it is inside the action
    decoded_from = (torch.arange(1 + 3 * 16) - 1).div(16, rounding_mode="floor") - 1
    expected = (frames < len(action.truth_joints)) & (decoded_from < n_pred)
    expected[0] = True
    assert torch.equal(item["rollout_valid"], expected) and item["rollout_valid"][1:17].all()


def test_rollout_joint_term_is_the_camera_distance_of_the_decoded_joints(monkeypatch):
    """Decoding the true features places every joint where it was (0 mm); a constant 1 cm offset of the true
    trajectory gives 0.1 dm."""
    config = tiny_config()
    sequences = action_sequences(1)
    taxonomy, _ = taxonomy_and_embeddings(sequences)
    pose_block, cache = _rollout_cache(config, sequences, taxonomy)
    data = ActionWindowDataset(cache, 4, random_lengths=False, rollout_clips=2, rollout_from_observation=True)
    batch = torch.utils.data.default_collate([data[i] for i in range(len(data))])
    truth = encode_features(batch["rollout_joints"].double(), batch["rollout_presence"], batch["rollout_valid"])
    true_clips = truth.features[:, 1:].float().unflatten(1, (-1, 16))
    monkeypatch.setattr(pose_block, "decode_mid", lambda mids: true_clips[:, :mids.shape[1]])
    terms = rollout_loss_terms(pose_block, torch.zeros(len(true_clips), 4, config.action.transformer.d_model), batch,
                               with_joints=True)
    assert terms["roll_pred"] < 1e-6 and terms["roll_trj"] < 1e-6 and terms["roll_joints"] < 1e-5
    shifted = batch["rollout_joints"].clone()
    shifted[:, 1:] += torch.tensor([0.01, 0.0, 0.0])
    offset = rollout_loss_terms(pose_block, torch.zeros(len(true_clips), 4, config.action.transformer.d_model),
                                {**batch, "rollout_joints": shifted}, with_joints=True)
    assert abs(float(offset["roll_joints"]) - 0.1) < 0.02


def test_augmented_cache_adds_warped_and_mirrored_copies_of_every_action():
    import numpy as np

    from ghtt_core.train.midlevels import MidLevelAugmentation, mirror_hands, time_warp

    joints = np.random.default_rng(0).normal(size=(10, 2, 21, 3)).astype(np.float32)
    presence = np.ones((10, 2), dtype=bool)
    presence[3, 0] = False
    twice = mirror_hands(*mirror_hands(joints, presence))
    assert np.array_equal(twice[0], joints) and np.array_equal(twice[1], presence)
    mirrored, mirrored_presence = mirror_hands(joints, presence)
    assert np.array_equal(mirrored[:, 1, :, 1:], joints[:, 0, :, 1:]) and np.array_equal(mirrored[:, 0, :, 0],
                                                                                       -joints[:, 1, :, 0])
    assert not mirrored_presence[3, 1] and mirrored_presence[3, 0]
    fast, = time_warp([joints], 10, 2.0)
    assert np.array_equal(fast, joints[[0, 2, 4, 6, 8]])
    slow, = time_warp([joints], 10, 0.5)
    assert len(slow) == 20 and np.array_equal(slow[::2], joints)

    config = tiny_config()
    sequences = action_sequences(1)
    taxonomy, _ = taxonomy_and_embeddings(sequences)
    pose_block = PoseBlock(config.pose)
    plain = build_midlevel_cache(pose_block, sequences, taxonomy, keep_truth_joints=True)
    augmented = build_midlevel_cache(pose_block, sequences, taxonomy, keep_truth_joints=True,
                                     augment=MidLevelAugmentation(copies=2, seed=1))
    assert len(augmented) == 3 * len(plain)
    for index, action in enumerate(plain):
        original, *copies = augmented[3 * index: 3 * index + 3]
        assert torch.equal(original.input_mids, action.input_mids) and original.label == action.label
        for copy in copies:
            assert copy.label == action.label and copy.noun == action.noun
            length = len(copy.truth_joints)
            assert 0.7 * len(action.truth_joints) <= length <= 1.3 * len(action.truth_joints)
            assert len(copy.input_mids) == -(-length // 16)
