"""Several camera streams in one forward pass, and half precision, on the shipped model.

GHTTInference is batched over B observations. A batch of independent observations must give each item what it gets
alone (samples included, with one generator per item); bfloat16 autocast must stay close to float32.
"""

from pathlib import Path

import pytest
import torch
from model_batches import moving_hands

from ghtt_core.checkpoint import load_checkpoint
from ghtt_core.inference import GHTTInference

SHIPPED = Path(__file__).resolve().parents[2] / "ghtt_core" / "assets" / "ghtt_small.pt"
CLIPS, CLIP = 3, 16
SAME = dict(rtol=0.0, atol=1e-5, equal_nan=True)


@pytest.fixture(scope="module")
def model():
    return load_checkpoint(SHIPPED, "cpu")


def three_streams():
    """Three different observations: moving hands, one with the left hand gone for the last clip, one with a
    dropped (filled-in) frame."""
    joints = moving_hands(3, CLIPS * CLIP, seed=4).view(3, CLIPS, CLIP, 2, 21, 3)
    presence = torch.ones(3, CLIPS, CLIP, 2, dtype=torch.bool)
    presence[1, -1, :, 0] = False
    frame_valid = torch.ones(3, CLIPS, CLIP, dtype=torch.bool)
    frame_valid[2, 1, 5] = False
    return joints, presence, frame_valid


def generators(seeds):
    return [torch.Generator().manual_seed(seed) for seed in seeds]


def all_outputs(inference, joints, presence, frame_valid, objects, seeds):
    observation = inference.encode_observation(joints, presence, frame_valid)
    scores = inference.recognize(observation, objects, top_k=3)
    options = dict(num_samples=5, horizon_frames=96, temperature=5.0)
    return {
        "mu": observation.mu,
        "refined": inference.refine_observation(observation).joints,
        "scores": scores.scores,
        "indices": scores.indices,
        "action_guided": inference.predict_action_guided(observation, objects, generator=generators(seeds),
                                                         **options).joints,
        "pose_only": inference.predict_pose_only(observation, generator=generators(seeds), **options).joints,
        "generated": inference.generate_for_action(observation, inference.model.taxonomy.actions[2].label,
                                                   generator=generators(seeds), **options).joints,
    }


def test_a_batch_of_streams_equals_each_stream_alone(model):
    inference = GHTTInference(model)
    joints, presence, frame_valid = three_streams()
    names = inference.model.taxonomy.objects
    objects = [[names[0]] * CLIPS, [None, names[1], "not an object"], [names[2]] * CLIPS]
    seeds = [11, 12, 13]
    batched = all_outputs(inference, joints, presence, frame_valid, objects, seeds)
    for item in range(3):
        alone = all_outputs(inference, joints[item:item + 1], presence[item:item + 1], frame_valid[item:item + 1],
                            objects[item:item + 1], seeds[item:item + 1])
        for name, value in alone.items():
            torch.testing.assert_close(batched[name][item:item + 1], value, **SAME, msg=f"{name}, item {item}")
    assert torch.isnan(batched["action_guided"][1, :, :, 0]).all()  # the left hand left stream 1


def test_one_generator_per_item_or_one_for_all(model):
    inference = GHTTInference(model)
    joints, presence, frame_valid = three_streams()
    observation = inference.encode_observation(joints, presence, frame_valid)
    with pytest.raises(ValueError, match="2 generators for 3 items"):
        inference.predict_action_guided(observation, num_samples=3, generator=generators([1, 2]))
    # One shared generator still works; its samples differ from the per-item ones, sample 0 does not.
    shared = inference.predict_action_guided(observation, num_samples=3, generator=torch.Generator().manual_seed(1))
    per_item = inference.predict_action_guided(observation, num_samples=3, generator=generators([1, 2, 3]))
    torch.testing.assert_close(shared.joints[:, 0], per_item.joints[:, 0], equal_nan=True)
    assert not torch.allclose(shared.joints[:, 1:].nan_to_num(), per_item.joints[:, 1:].nan_to_num())


def test_bfloat16_autocast_stays_close_to_float32(model):
    """Measured: refinement 1.0 mm, P.b mean forecast 5.0 mm at most (1.7 mm on average), scores 0.004."""
    joints = moving_hands(2, 16 * CLIP, seed=0).view(2, 16, CLIP, 2, 21, 3)
    presence = torch.ones(2, 16, CLIP, 2, dtype=torch.bool)
    outputs = {}
    for precision in (None, "bfloat16"):
        inference = GHTTInference(model, autocast=precision)
        observation = inference.encode_observation(joints, presence)
        outputs[precision] = (
            inference.refine_observation(observation).joints,
            inference.recognize(observation, top_k=3),
            inference.predict_action_guided(observation, num_samples=1, calibrated=False).joints[:, 0],
        )
    (refined, scores, forecast), (refined_bf16, scores_bf16, forecast_bf16) = outputs[None], outputs["bfloat16"]
    assert forecast_bf16.dtype == torch.float32
    assert (refined - refined_bf16).norm(dim=-1).max() < 3e-3
    assert (forecast - forecast_bf16).norm(dim=-1).max() < 15e-3
    assert (forecast - forecast_bf16).norm(dim=-1).mean() < 5e-3
    assert (scores.scores - scores_bf16.scores).abs().max() < 0.02
    assert torch.equal(scores.indices[:, 0], scores_bf16.indices[:, 0])


def test_unknown_autocast_precision_is_rejected(model):
    with pytest.raises(ValueError, match="autocast"):
        GHTTInference(model, autocast="int8")


def test_predict_streams_runs_streams_of_any_history_length_as_each_alone(model):
    inference = GHTTInference(model)
    joints, presence, frame_valid = three_streams()
    observations = [inference.encode_observation(joints[i:i + 1, first:], presence[i:i + 1, first:],
                                                 frame_valid[i:i + 1, first:])
                    for i, first in enumerate((0, 1, 0))]  # 3, 2 and 3 clips: two forward passes
    names = inference.model.taxonomy.objects
    object_names = [[[names[0]] * CLIPS], None, [[None, names[1], names[1]]]]
    options = dict(num_samples=4, horizon_frames=64, temperature=5.0)
    streams = inference.predict_streams(observations, object_names, generators([5, 6, 7]), **options)
    for observation, names_of_stream, seed, forecast in zip(observations, object_names, (5, 6, 7), streams):
        alone = inference.predict_action_guided(observation, names_of_stream, generator=generators([seed])[0],
                                                **options)
        torch.testing.assert_close(forecast.joints, alone.joints, **SAME)
        assert torch.equal(forecast.hand_present, alone.hand_present)
    with pytest.raises(ValueError, match="3 streams need 3"):
        inference.predict_streams(observations, generators=generators([1]))
