import pytest
import torch
from model_batches import moving_hands
from tiny_models import TAXONOMY, constant_twist_hands, make_decoder_output_constant, tiny_model

from ghtt_core.inference import GHTTInference
from ghtt_core.skeleton import UNUSED_JOINT, USED_JOINTS

CLIP = 16
USED = list(USED_JOINTS)


def observation_arrays(batch=2, clips=3, seed=0):
    joints = moving_hands(batch, clips * CLIP, seed).view(batch, clips, CLIP, 2, 21, 3)
    presence = torch.ones(batch, clips, CLIP, 2, dtype=torch.bool)
    return joints, presence


@pytest.fixture(scope="module")
def inference():
    return GHTTInference(tiny_model())


def generator(seed):
    return torch.Generator().manual_seed(seed)


def test_output_shapes_and_ranges(inference):
    joints, presence = observation_arrays()
    observation = inference.encode_observation(joints, presence)
    refined = inference.refine_observation(observation)
    assert refined.joints.shape == (2, 3, CLIP, 2, 21, 3) and refined.joints.dtype == torch.float32
    assert refined.mu.shape == (2, 3, 32)
    assert torch.isfinite(refined.joints).all()

    scores = inference.recognize(observation, top_k=3)
    assert scores.scores.shape == scores.indices.shape == (2, 3)
    assert scores.latent.shape == (2, 32)
    assert (scores.scores[:, :-1] >= scores.scores[:, 1:]).all()
    assert ((scores.scores > 0) & (scores.scores <= 1)).all()

    for predict in (inference.predict_action_guided, inference.predict_pose_only):
        forecast = predict(observation, num_samples=4, horizon_frames=40, generator=generator(0))
        assert forecast.joints.shape == (2, 4, 40, 2, 21, 3)
        assert forecast.hand_present.all()
        assert torch.isfinite(forecast.joints).all()


def test_refine_single_clip_matches_observation_path(inference):
    joints, presence = observation_arrays(batch=2, clips=1)
    single = inference.refine(joints[:, 0], presence[:, 0])
    via_observation = inference.refine_observation(inference.encode_observation(joints, presence))
    assert single.joints.shape == (2, CLIP, 2, 21, 3) and single.mu.shape == (2, 32)
    torch.testing.assert_close(single.joints, via_observation.joints[:, 0])


def test_observation_from_clips_encoded_one_by_one_equals_encode_observation(inference):
    joints, presence = observation_arrays(batch=2, clips=4)
    presence[0, 1:3, :, 0] = False  # item 0: the left hand is away for two clips
    presence[1, 3, -6:, 1] = False  # item 1: the right hand leaves 6 frames before the end
    presence[1, 2] = False  # item 1: a clip without hands
    frame_valid = torch.ones(2, 4, CLIP, dtype=torch.bool)
    frame_valid[0, 2, 5:8] = False  # filled-in dropped frames
    whole = inference.encode_observation(joints, presence, frame_valid, end_tolerance_frames=4)
    one_by_one = [inference.encode_clips(joints[:, k:k + 1], presence[:, k:k + 1], frame_valid[:, k:k + 1])
                  for k in range(4)]
    # kept clips of an earlier call (sliced out of a batch) + the newest clip
    kept = inference.encode_clips(joints[:, :3], presence[:, :3], frame_valid[:, :3])
    mixed = [kept.clips(0, 2), kept.clips(2, 3), one_by_one[3]]
    for parts in (one_by_one, mixed):
        assembled = inference.observation_from_clips(parts, end_tolerance_frames=4)
        for name in ("encoder_valid", "clip_valid", "mu", "logvar", "tokens", "refined", "hand_present_at_end"):
            torch.testing.assert_close(getattr(assembled, name), getattr(whole, name), rtol=0, atol=1e-6)
        for name in ("features", "feature_mask", "R_cam2local", "t_cam2local", "palm_size", "presence"):
            torch.testing.assert_close(getattr(assembled.hand_features, name), getattr(whole.hand_features, name))
        for name in ("R_base2cam", "t_base2cam", "mean_palm_size", "base_index", "has_base"):
            torch.testing.assert_close(getattr(assembled.placement, name), getattr(whole.placement, name))
    assert whole.hand_present_at_end.tolist() == [[True, True], [True, False]]
    assert whole.clip_valid.tolist() == [[True, True, True, True], [True, True, False, True]]
    with pytest.raises(ValueError, match="at least one clip"):
        inference.observation_from_clips([])


@pytest.mark.parametrize("mode", ["action_guided", "pose_only"])
def test_sample_zero_is_deterministic_and_the_other_samples_differ(inference, mode):
    joints, presence = observation_arrays(batch=1)
    observation = inference.encode_observation(joints, presence)
    predict = inference.predict_action_guided if mode == "action_guided" else inference.predict_pose_only
    first = predict(observation, num_samples=4, horizon_frames=48, generator=generator(1)).joints[0]
    second = predict(observation, num_samples=4, horizon_frames=48, generator=generator(2)).joints[0]
    repeat = predict(observation, num_samples=4, horizon_frames=48, generator=generator(1)).joints[0]
    assert torch.equal(first[0], second[0])  # the mean pass ignores the generator
    assert torch.equal(first, repeat)  # same seed, same samples
    for a in range(4):
        for b in range(a + 1, 4):
            assert (first[a] - first[b]).abs().max() > 1e-4, f"samples {a} and {b} coincide"
    assert (first[1] - second[1]).abs().max() > 1e-4  # another seed draws other samples


def test_temperature_zero_collapses_samples_onto_the_mean(inference):
    joints, presence = observation_arrays(batch=1)
    observation = inference.encode_observation(joints, presence)
    forecast = inference.predict_action_guided(observation, num_samples=3, horizon_frames=32, temperature=0.0,
                                               generator=generator(0))
    torch.testing.assert_close(forecast.joints[0, 1], forecast.joints[0, 0])
    torch.testing.assert_close(forecast.joints[0, 2], forecast.joints[0, 0])


@pytest.mark.parametrize("mode", ["action_guided", "pose_only"])
def test_prediction_starts_right_after_the_observation(mode):
    """A decoder that always outputs one constant palm motion must continue the observed motion frame by frame:
    predicted frame i is observed frame T + i (an off-by-one in time would be ~1 cm off)."""
    observed_frames, horizon = 3 * CLIP, 96
    motion = constant_twist_hands(observed_frames + horizon)
    model = tiny_model()
    make_decoder_output_constant(model, motion)
    inference = GHTTInference(model)
    observation = inference.encode_observation(
        motion[:observed_frames].view(1, 3, CLIP, 2, 21, 3), torch.ones(1, 3, CLIP, 2, dtype=torch.bool)
    )
    predict = inference.predict_action_guided if mode == "action_guided" else inference.predict_pose_only
    forecast = predict(observation, num_samples=3, horizon_frames=horizon, generator=generator(0)).joints[0]
    truth = motion[observed_frames:].float()
    error = (forecast[..., USED, :] - truth[..., USED, :]).norm(dim=-1)
    assert error.max() < 1e-5
    shifted = (forecast[:, 1:, :, USED] - motion[observed_frames:-1, :, USED].float()).norm(dim=-1)
    assert shifted.mean() > 1e-3


def test_refinement_of_a_consistent_motion_reproduces_it_and_masks_absent_hands():
    motion = constant_twist_hands(2 * CLIP)
    model = tiny_model()
    make_decoder_output_constant(model, motion)
    inference = GHTTInference(model)
    presence = torch.ones(1, 2, CLIP, 2, dtype=torch.bool)
    presence[0, 0, 5:9, 0] = False  # the left hand drops out for 4 frames
    refined = inference.refine_observation(inference.encode_observation(motion.view(1, 2, CLIP, 2, 21, 3), presence))
    joints = refined.joints[0].flatten(0, 1)
    visible = presence[0].flatten(0, 1)
    assert torch.isnan(joints[~visible]).all()
    error = (joints[visible][:, USED] - motion.float()[visible.view(-1, 2)][:, USED]).norm(dim=-1)
    assert error.max() < 1e-5
    # joint 1 is never learned: it is placed between the wrist and the thumb MCP
    torch.testing.assert_close(joints[visible][:, UNUSED_JOINT], 0.5 * (joints[visible][:, 0] + joints[visible][:, 2]))


def test_absent_hand_values_never_matter(inference):
    """Whatever an absent hand or a filled-in frame holds (NaN included), every output is the same."""
    joints, presence = observation_arrays(batch=1)
    presence[0, :, ::3, 0] = False  # left hand missing on a third of the frames, present at the end
    frame_valid = torch.ones(1, 3, CLIP, dtype=torch.bool)
    frame_valid[0, 1, 4:6] = False
    garbage = joints.clone()
    garbage[~presence] = float("nan")
    garbage[0, 1, 4:6] = 123.0

    options = dict(num_samples=3, horizon_frames=32)

    def outputs(values):
        observation = inference.encode_observation(values, presence, frame_valid)
        return (
            inference.refine_observation(observation).joints,
            inference.recognize(observation).latent,
            inference.predict_action_guided(observation, **options, generator=generator(3)).joints,
            inference.predict_pose_only(observation, **options, generator=generator(3)).joints,
        )

    for clean, noisy in zip(outputs(joints), outputs(garbage)):
        torch.testing.assert_close(clean, noisy, equal_nan=True)
    refined = outputs(joints)[0][0]
    assert torch.isnan(refined[~presence[0]]).all()
    assert torch.isnan(refined[1, 4:6]).all()


def test_one_hand_absent_30_percent_of_frames(inference):
    joints, presence = observation_arrays(batch=1, clips=4, seed=3)
    dropout = torch.rand(1, 4, CLIP, generator=generator(5)) < 0.3
    dropout[0, -1, -1] = False  # seen at the end: it must be predicted
    presence[..., 1] = ~dropout
    observation = inference.encode_observation(joints, presence)
    refined = inference.refine_observation(observation).joints[0]
    assert torch.isnan(refined[dropout[0], 1]).all()
    assert torch.isfinite(refined[~dropout[0], 1]).all() and torch.isfinite(refined[..., 0, :, :]).all()
    forecast = inference.predict_action_guided(observation, num_samples=2, horizon_frames=32, generator=generator(0))
    assert forecast.hand_present.all() and torch.isfinite(forecast.joints).all()


def test_hand_absent_at_the_end_is_not_predicted(inference):
    joints, presence = observation_arrays(batch=1)
    presence[0, -1, -3:, 0] = False  # a short dropout (3 frames <= tolerance 4): still predicted
    presence[0, -1, -6:, 1] = False  # gone for 6 frames: not predicted
    observation = inference.encode_observation(joints, presence, end_tolerance_frames=4)
    assert observation.hand_present_at_end.tolist() == [[True, False]]
    for predict in (inference.predict_action_guided, inference.predict_pose_only):
        forecast = predict(observation, num_samples=2, horizon_frames=32, generator=generator(0))
        assert torch.isfinite(forecast.joints[0, :, :, 0]).all()
        assert torch.isnan(forecast.joints[0, :, :, 1]).all()


def test_both_hands_absent_for_a_clip_and_at_the_end(inference):
    joints, presence = observation_arrays(batch=2)
    presence[0, 0] = False  # item 0: nothing seen in the first clip
    presence[1, -1] = False  # item 1: nothing seen in the last clip
    observation = inference.encode_observation(joints, presence)
    assert observation.clip_valid.tolist() == [[False, True, True], [True, True, False]]
    assert (observation.mu[0, 0] == 0).all()
    # the empty clip is masked in the A-Enc: its object token cannot change the recognition
    plain = inference.recognize(observation, [[None] * 3, [None] * 3]).latent
    with_object = inference.recognize(observation, [["jar", None, None], [None, None, "jar"]]).latent
    torch.testing.assert_close(plain, with_object)
    forecast = inference.predict_action_guided(observation, num_samples=2, horizon_frames=32, generator=generator(0))
    assert forecast.hand_present.tolist() == [[True, True], [False, False]]
    assert torch.isfinite(forecast.joints[0]).all() and torch.isnan(forecast.joints[1]).all()


def test_object_names_known_and_unknown(inference):
    joints, presence = observation_arrays(batch=1)
    observation = inference.encode_observation(joints, presence)
    no_object = inference.recognize(observation).latent
    unknown = inference.recognize(observation, [["spoon", None, "fork"]]).latent
    with_cup = inference.recognize(observation, [["cup", "cup", "cup"]]).latent
    torch.testing.assert_close(no_object, unknown)
    assert (with_cup - no_object).abs().max() > 1e-4
    with pytest.raises(ValueError, match="object_names"):
        inference.recognize(observation, [["cup"]])


def test_action_controlled_generation(inference):
    joints, presence = observation_arrays(batch=1)
    observation = inference.encode_observation(joints, presence)
    pour = inference.generate_for_action(observation, "pour cup", num_samples=1, horizon_frames=48)
    grab = inference.generate_for_action(observation, "grab cup", num_samples=1, horizon_frames=48)
    # clip 0 comes from the last observed clip alone; the label steers the clips after it
    torch.testing.assert_close(pour.joints[:, :, :CLIP], grab.joints[:, :, :CLIP])
    assert (pour.joints[:, :, CLIP:] - grab.joints[:, :, CLIP:]).abs().max() > 1e-4
    with pytest.raises(ValueError, match="not in the taxonomy"):
        inference.generate_for_action(observation, "juggle", num_samples=1)
    assert inference.action_hypothesis(TAXONOMY.action_index("pour cup"), 0.5).verb == "pour"


def test_midlevel_interpolation(inference):
    joints, presence = observation_arrays(batch=1, clips=2)
    clip_a, clip_b = joints[0, 0], joints[0, 1]
    blend = inference.interpolate_midlevels(clip_a, presence[0, 0], clip_b, presence[0, 1], [0.0, 0.5, 1.0])
    assert blend.joints.shape == (1, 3, CLIP, 2, 21, 3)
    # weight 0 decodes clip a's own mid-level: the same as the first predicted clip after clip a
    alone = inference.predict_action_guided(
        inference.encode_observation(joints[:, :1], presence[:, :1]), num_samples=1, horizon_frames=CLIP
    )
    torch.testing.assert_close(blend.joints[0, 0], alone.joints[0, 0])
    assert (blend.joints[0, 1] - blend.joints[0, 0]).abs().max() > 1e-4
    assert (blend.joints[0, 2] - blend.joints[0, 1]).abs().max() > 1e-4


def test_bad_inputs_are_rejected(inference):
    joints, presence = observation_arrays(batch=1)
    with pytest.raises(ValueError, match="observation joints"):
        inference.encode_observation(joints[:, :, :8], presence[:, :, :8])
    bad = joints.clone()
    bad[0, 0, 0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        inference.encode_observation(bad, presence)
    observation = inference.encode_observation(joints, presence)
    with pytest.raises(ValueError, match="A-Dec clips"):
        inference.predict_action_guided(observation, horizon_frames=18 * CLIP)
    with pytest.raises(ValueError, match="num_samples"):
        inference.predict_pose_only(observation, num_samples=0)


def test_pose_only_checkpoint_refines_and_predicts_but_cannot_recognize():
    inference = GHTTInference(tiny_model(with_action_block=False))
    joints, presence = observation_arrays(batch=1)
    observation = inference.encode_observation(joints, presence)
    assert torch.isfinite(inference.refine_observation(observation).joints).all()
    assert inference.predict_pose_only(observation, num_samples=2, horizon_frames=20).joints.shape[2] == 20
    with pytest.raises(ValueError, match="full checkpoint"):
        inference.recognize(observation)
    with pytest.raises(ValueError, match="full checkpoint"):
        inference.predict_action_guided(observation)


def _bone_lengths(joints):
    """(..., 2, 21, 3) -> distances of every joint to the wrist (..., 2, 21): the hand's shape, whatever its pose."""
    return (joints - joints[..., :1, :]).norm(dim=-1)


def test_anchored_forecasts_start_from_the_observed_hand_shape():
    joints, presence = observation_arrays(batch=2, clips=2)
    plain = GHTTInference(tiny_model())
    anchored_model = tiny_model()
    anchored_model.config.pose.anchor_forecast_shape = True
    anchored = GHTTInference(anchored_model)
    observation = anchored.encode_observation(joints, presence)
    observed_shape = _bone_lengths(joints[:, -1, -1])[..., USED]
    for predict in ("predict_action_guided", "predict_pose_only"):
        forecasts = [getattr(model, predict)(observation, num_samples=3, horizon_frames=20, generator=generator(0))
                     for model in (plain, anchored)]
        first_shape = [_bone_lengths(forecast.joints[:, :, 0])[..., USED] for forecast in forecasts]
        plain_gap = (first_shape[0] - observed_shape[:, None]).abs().max()
        anchored_gap = (first_shape[1] - observed_shape[:, None]).abs().max()
        # the moving test hands keep their palm size, so the anchored first frame is the observed hand exactly
        assert anchored_gap < 1e-4 < plain_gap, predict
        # the samples still differ (their predicted motion and change of shape are kept)
        assert (forecasts[1].joints[:, 1:, -1] - forecasts[1].joints[:, :1, -1]).abs().amax() > 1e-3, predict
