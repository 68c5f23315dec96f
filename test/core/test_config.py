import io
import json

import pytest
import torch

from ghtt_core.config import ModelConfig, config_from_mapping, load_config, preset


@pytest.mark.parametrize("name", ["paper", "small"])
def test_to_dict_round_trip_and_weights_only_checkpoint(name):
    cfg = preset(name)
    data = cfg.to_dict()
    json.dumps(data)  # plain python values only
    buffer = io.BytesIO()
    torch.save({"config": data}, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=True)["config"]
    assert ModelConfig.from_dict(loaded) == cfg


def test_presets_sizes():
    paper, small = preset("paper"), preset("small")
    transformer = paper.pose.transformer
    assert (transformer.d_model, transformer.n_heads, transformer.d_ff) == (512, 8, 2048)
    assert paper.action.transformer.n_enc_layers == paper.action.transformer.n_dec_layers == 9
    assert small.pose.transformer.d_model < paper.pose.transformer.d_model
    assert paper.action.tau == 0.07 and paper.action.sample_factor == 5.0 and paper.flattened.sample_factor == 10.0
    with pytest.raises(ValueError, match="unknown model preset"):
        preset("huge")


def test_yaml_preset_with_overrides(tmp_path):
    path = tmp_path / "model.yaml"
    path.write_text("preset: small\naction:\n  noise_std: 0.25\n  transformer:\n    n_enc_layers: 3\n")
    cfg = load_config(path)
    assert cfg.action.noise_std == 0.25
    assert cfg.action.transformer.n_enc_layers == 3
    assert cfg.action.transformer.d_model == preset("small").action.transformer.d_model
    assert cfg.pose == preset("small").pose


def test_bad_configs_raise():
    with pytest.raises(ValueError, match="unknown config keys"):
        config_from_mapping({"pose": {"clip_length": 8}})
    with pytest.raises(ValueError, match="d_model"):
        config_from_mapping({"preset": "small", "action": {"transformer": {"d_model": 256}}})
    with pytest.raises(ValueError, match="skip_prob"):
        config_from_mapping({"pose": {"skip_prob": 1.5}})
    with pytest.raises(ValueError, match="not found"):
        load_config("/nonexistent/model.yaml")


def test_ghtt_presets_are_the_authors_sizes_with_this_projects_a_block_training_and_anchoring():
    from ghtt_core.config import preset

    for ours, authors in (("ghtt", "paper"), ("ghtt_small", "small")):
        mine, theirs = preset(ours).to_dict(), preset(authors).to_dict()
        assert mine["flattened"] == theirs["flattened"]
        assert {key for key in mine["pose"] if mine["pose"][key] != theirs["pose"][key]} == {"anchor_forecast_shape"}
        assert mine["pose"]["anchor_forecast_shape"] and not theirs["pose"]["anchor_forecast_shape"]
        changed = {key for key in mine["action"] if mine["action"][key] != theirs["action"][key]}
        assert changed == {"lambda_rollout", "rollout_from_observation", "rollout_joint_weight", "noise_std"}
        assert theirs["action"]["lambda_rollout"] == 0.0 and theirs["action"]["noise_std"] == 1.0
