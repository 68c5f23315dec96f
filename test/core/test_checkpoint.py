import time

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
    payload_checksum,
    save_checkpoint,
    weights_digest,
)
from ghtt_core.pose_block import PoseBlock
from model_batches import pose_batch
from training_data import action_sequences, taxonomy_and_embeddings, tiny_config


def _blocks(config, seed=0):
    torch.manual_seed(seed)
    return PoseBlock(config.pose).eval(), ActionBlock(config.action).eval()


def _full_checkpoint(path, seed=0, provenance=None):
    config = tiny_config()
    pose_block, action_block = _blocks(config, seed)
    taxonomy, embeddings = taxonomy_and_embeddings(action_sequences(1))
    model_id = save_checkpoint(path, config, pose_block, action_block, taxonomy, embeddings,
                               provenance=provenance or {"data": "data/tiny_set"})
    return config, pose_block, action_block, taxonomy, embeddings, model_id


def test_full_round_trip_rebuilds_identical_models(tmp_path):
    path = tmp_path / "model.pt"
    config, pose_block, action_block, taxonomy, embeddings, model_id = _full_checkpoint(path)
    loaded = load_checkpoint(path, require="full")

    assert loaded.kind == "full"
    assert loaded.config == config
    assert loaded.taxonomy == taxonomy
    digest = weights_digest(torch.load(path, weights_only=True))
    assert model_id == loaded.model_id == f"model-tiny_set-{digest[:8]}"
    assert loaded.data_name == "tiny_set"
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



def _rewritten(path, tmp_path, name, edit):
    """A copy of the checkpoint at path with its payload edited and a valid checksum (a well-formed but wrong file)."""
    payload = torch.load(path, weights_only=True)
    edit(payload)
    payload["checksum"] = payload_checksum(payload)
    target = tmp_path / name
    torch.save(payload, target)
    return target


def _one_line_error(path, match):
    started = time.monotonic()
    with pytest.raises(CheckpointError, match=match) as caught:
        load_checkpoint(path)
    assert time.monotonic() - started < 5.0  # generous on a loaded machine; typically a few ms
    message = str(caught.value)
    assert "\n" not in message and str(path) in message and len(message) < 400, message
    return message


def test_malformed_checkpoints_give_one_line_errors(tmp_path):
    path = tmp_path / "model.pt"
    _full_checkpoint(path)
    missing_weight = _rewritten(path, tmp_path, "missing_weight.pt", lambda p: p["state_dicts"]["action"].pop(
        "alignment.text_to_latent.weight"))
    message = _one_line_error(missing_weight, "inconsistent")
    assert "A-Block weights do not fit" in message and "alignment.text_to_latent.weight" in message
    _one_line_error(_rewritten(path, tmp_path, "no_id.pt", lambda p: p.pop("model_id")), "missing model_id")
    _one_line_error(_rewritten(path, tmp_path, "no_config.pt", lambda p: p["config"].pop("pose")), "inconsistent")
    _one_line_error(_rewritten(path, tmp_path, "bad_state.pt", lambda p: p["state_dicts"].update(pose=[1, 2])),
                    "state_dicts")
    reshaped = _rewritten(path, tmp_path, "reshaped.pt", lambda p: p["state_dicts"]["pose"].update(
        {name: tensor[:1] for name, tensor in list(p["state_dicts"]["pose"].items())[:1]}))
    assert "wrong shape" in _one_line_error(reshaped, "inconsistent")


def test_non_finite_weights_are_refused_on_save_load_and_export(tmp_path):
    config = tiny_config()
    pose_block, action_block = _blocks(config)
    taxonomy, embeddings = taxonomy_and_embeddings(action_sequences(1))
    with torch.no_grad():
        next(action_block.parameters()).fill_(float("nan"))
    with pytest.raises(CheckpointError, match="non-finite weights in action"):
        save_checkpoint(tmp_path / "nan.pt", config, pose_block, action_block, taxonomy, embeddings)
    assert not (tmp_path / "nan.pt").exists()

    path = tmp_path / "model.pt"
    _full_checkpoint(path)

    def poison(payload):
        next(iter(payload["state_dicts"]["pose"].values())).fill_(float("inf"))

    poisoned = _rewritten(path, tmp_path, "poisoned.pt", poison)
    _one_line_error(poisoned, "non-finite weights in pose")
    with pytest.raises(CheckpointError, match="non-finite"):
        export_for_inference(poisoned, tmp_path / "exported.pt")
    assert not (tmp_path / "exported.pt").exists()


@pytest.mark.parametrize("damage", ["zeroed", "flipped"])
def test_a_damaged_block_inside_the_file_is_detected_by_the_checksum(tmp_path, damage):
    path = tmp_path / "model.pt"
    _full_checkpoint(path)
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    block = slice(middle, middle + 4096)
    data[block] = bytes(4096) if damage == "zeroed" else bytes(b ^ 0xFF for b in data[block])
    damaged = tmp_path / f"{damage}.pt"
    damaged.write_bytes(bytes(data))
    message = _one_line_error(damaged, "corrupt")
    assert damaged.name in message


def test_same_config_different_weights_or_data_give_different_ids(tmp_path):
    first = _full_checkpoint(tmp_path / "model.pt", seed=0)[-1]
    again = _full_checkpoint(tmp_path / "model.pt", seed=0)[-1]
    other_weights = _full_checkpoint(tmp_path / "model.pt", seed=1)[-1]
    other_data = _full_checkpoint(tmp_path / "model.pt", seed=0, provenance={"data": "/datasets/h2o"})[-1]
    assert first == again
    assert other_weights != first and other_weights.startswith("model-tiny_set-")
    assert other_data.startswith("model-h2o-") and other_data.split("-")[-1] == first.split("-")[-1]


def test_a_version_1_file_loads_with_a_warning_and_a_weights_based_id(tmp_path):
    path = tmp_path / "model.pt"
    _full_checkpoint(path)
    payload = torch.load(path, weights_only=True)
    current_id = payload["model_id"]
    for key in ("checksum", "data_name"):
        del payload[key]
    payload.update(format_version=1, model_id=f"model-{config_hash(tiny_config())}")
    legacy = tmp_path / "legacy" / "model.pt"
    legacy.parent.mkdir()
    torch.save(payload, legacy)
    with pytest.warns(UserWarning, match="integrity cannot be verified"):
        loaded = load_checkpoint(legacy)
    assert loaded.model_id == current_id


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
    run_id = load_checkpoint(tmp_path / "run.pt").model_id
    model_id = export_for_inference(tmp_path / "run.pt", tmp_path / "ghtt_tiny.pt")
    exported = load_checkpoint(tmp_path / "ghtt_tiny.pt", require="full")
    # the new name, the same data name and weights digest as the run it was exported from
    assert model_id == exported.model_id == "ghtt_tiny" + run_id.removeprefix("run")
    assert exported.training is None and exported.provenance["training_steps"] == 3
    for name, value in action_block.state_dict().items():
        assert torch.equal(value, exported.action_block.state_dict()[name])
