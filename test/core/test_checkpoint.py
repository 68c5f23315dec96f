import pytest
import torch

from ghtt_core.action_block import ActionBlock, ActionInputs
from ghtt_core.checkpoint import (
    FORMAT_VERSION,
    CheckpointError,
    TrainingState,
    config_hash,
    export_for_inference,
    load_checkpoint,
    save_checkpoint,
)
from ghtt_core.pose_block import PoseBlock
from model_batches import pose_batch
from training_data import action_sequences, taxonomy_and_embeddings, tiny_config


def _blocks(config, seed=0):
    torch.manual_seed(seed)
    return PoseBlock(config.pose).eval(), ActionBlock(config.action).eval()


def _full_checkpoint(path, seed=0):
    config = tiny_config()
    pose_block, action_block = _blocks(config, seed)
    taxonomy, embeddings = taxonomy_and_embeddings(action_sequences(1))
    model_id = save_checkpoint(path, config, pose_block, action_block, taxonomy, embeddings)
    return config, pose_block, action_block, taxonomy, embeddings, model_id


def test_full_round_trip_rebuilds_identical_models(tmp_path):
    path = tmp_path / "model.pt"
    config, pose_block, action_block, taxonomy, embeddings, model_id = _full_checkpoint(path)
    loaded = load_checkpoint(path, require="full")

    assert loaded.kind == "full"
    assert loaded.config == config
    assert loaded.taxonomy == taxonomy
    assert model_id == loaded.model_id == f"model-{config_hash(config)}"
    assert loaded.label_embeddings.encoder_id == "test:random"
    assert torch.equal(loaded.label_embeddings.actions, embeddings.actions)

    batch = pose_batch(batch=2)
    observed = batch.observed()
    expected = pose_block(*observed)
    actual = loaded.pose_block(*observed)
    assert torch.equal(expected.encoding.refined, actual.encoding.refined)
    assert torch.equal(expected.predicted, actual.predicted)

    inputs = ActionInputs(mids=expected.encoding.mu.unsqueeze(1), clip_valid=torch.ones(2, 1, dtype=torch.bool),
                          phase=torch.zeros(2, 1, dtype=torch.long))
    assert torch.equal(action_block.recognize(inputs, embeddings.actions, k=2)[1],
                       loaded.action_block.recognize(inputs, loaded.label_embeddings.actions, k=2)[1])
    assert torch.equal(action_block.encode(inputs).mu, loaded.action_block.encode(inputs).mu)


def test_config_hash_changes_with_the_config(tmp_path):
    config = tiny_config()
    other = tiny_config()
    other.pose.lambda_kl = 0.5
    assert config_hash(config) != config_hash(other)
    assert config_hash(config) == config_hash(tiny_config())


def test_pose_checkpoint_with_training_state_and_wrong_kind(tmp_path):
    config = tiny_config()
    pose_block, _ = _blocks(config)
    optimizer = torch.optim.AdamW(pose_block.parameters(), lr=1e-3)
    pose_block(*pose_batch().observed()).predicted.sum().backward()
    optimizer.step()
    state = TrainingState(stage="pose", step=7, epoch=1, batches_in_epoch=2, optimizer=optimizer.state_dict(),
                          rng={"per_rank": [{"torch": torch.get_rng_state()}]}, run={"lr": 1e-3})
    path = tmp_path / "pose.pt"
    save_checkpoint(path, config, pose_block, training=state)

    loaded = load_checkpoint(path, require="pose")
    assert loaded.kind == "pose" and loaded.action_block is None
    assert loaded.training.step == 7 and loaded.training.batches_in_epoch == 2
    restored = torch.optim.AdamW(loaded.pose_block.parameters(), lr=1e-3)
    restored.load_state_dict(loaded.training.optimizer)
    assert restored.state_dict()["state"][0]["step"] == optimizer.state_dict()["state"][0]["step"]
    with pytest.raises(CheckpointError, match="only the P-Block"):
        load_checkpoint(path, require="full")


def test_missing_corrupt_and_foreign_files(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "absent.pt")

    path = tmp_path / "model.pt"
    _full_checkpoint(path)
    data = path.read_bytes()
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="corrupt"):
        load_checkpoint(truncated)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="corrupt"):
        load_checkpoint(garbage)

    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(3)}, foreign)
    with pytest.raises(CheckpointError, match="not a ghtt model checkpoint"):
        load_checkpoint(foreign)

    payload = torch.load(path, weights_only=True)
    payload["format_version"] = FORMAT_VERSION + 1
    newer = tmp_path / "newer.pt"
    torch.save(payload, newer)
    with pytest.raises(CheckpointError, match="format version"):
        load_checkpoint(newer)

    payload = torch.load(path, weights_only=True)
    del payload["state_dicts"]["action"]["alignment.text_to_latent.weight"]
    broken = tmp_path / "broken.pt"
    torch.save(payload, broken)
    with pytest.raises(CheckpointError, match="inconsistent"):
        load_checkpoint(broken)


def test_full_checkpoint_needs_matching_label_embeddings(tmp_path):
    config = tiny_config()
    pose_block, action_block = _blocks(config)
    taxonomy, embeddings = taxonomy_and_embeddings(action_sequences(1))
    with pytest.raises(ValueError, match="label embeddings"):
        save_checkpoint(tmp_path / "m.pt", config, pose_block, action_block, taxonomy, None)
    with pytest.raises(ValueError, match="do not match the taxonomy"):
        embeddings.actions = embeddings.actions[:1]
        save_checkpoint(tmp_path / "m.pt", config, pose_block, action_block, taxonomy, embeddings)


def test_export_drops_the_training_state_and_renames_the_model(tmp_path):
    config = tiny_config()
    pose_block, action_block = _blocks(config)
    taxonomy, embeddings = taxonomy_and_embeddings(action_sequences(1))
    optimizer = torch.optim.AdamW(action_block.parameters())
    state = TrainingState(stage="action", step=3, epoch=0, batches_in_epoch=3, optimizer=optimizer.state_dict(),
                          rng={}, run={})
    save_checkpoint(tmp_path / "run.pt", config, pose_block, action_block, taxonomy, embeddings, training=state)
    model_id = export_for_inference(tmp_path / "run.pt", tmp_path / "ghtt_tiny.pt")
    exported = load_checkpoint(tmp_path / "ghtt_tiny.pt", require="full")
    assert model_id == exported.model_id == f"ghtt_tiny-{config_hash(config)}"
    assert exported.training is None and exported.provenance["training_steps"] == 3
    for name, value in action_block.state_dict().items():
        assert torch.equal(value, exported.action_block.state_dict()[name])
