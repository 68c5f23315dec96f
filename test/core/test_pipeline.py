import dataclasses

import numpy as np
import pytest
from model_batches import moving_hands
from tiny_models import tiny_config, tiny_model

from ghtt_core.checkpoint import save_checkpoint
from ghtt_core.inference import EncodedObservation
from ghtt_core.pipeline import FrameInput, PipelineConfig, StreamingPipeline
from ghtt_core.results import Prediction, Recognition

PERIOD_NS = 33_333_333
START_NS = 1_700_000_000_000_000_000
CLIP = 16


def stream(num_frames, seed=0, presence=None, objects=None, start_ns=START_NS):
    joints = moving_hands(1, num_frames, seed)[0].numpy()
    presence = np.ones((num_frames, 2), bool) if presence is None else presence
    return [
        FrameInput(
            stamp_ns=start_ns + i * PERIOD_NS,
            joints=np.where(presence[i][:, None, None], joints[i], np.nan),
            presence=presence[i],
            object_label=None if objects is None else objects[i],
            frame_id="camera",
        )
        for i in range(num_frames)
    ]


def small_config(**overrides):
    # One result per clip unless a test is about the result rate (the default streams at clip_stride 3).
    settings = dict(num_samples=3, horizon_frames=40, top_k=3, max_clips=4, clip_stride=CLIP)
    settings.update(overrides)
    return PipelineConfig(**settings)


def push_all(pipeline, frames):
    """-> list of (index of the frame that produced it, result)."""
    return [(i, r) for i, r in ((i, pipeline.push(f)) for i, f in enumerate(frames)) if r is not None]


@pytest.fixture(scope="module")
def model():
    return tiny_model()


def test_results_every_stride_with_the_contract_fields(model):
    pipeline = StreamingPipeline(model, small_config())
    frames = stream(5 * CLIP)
    results = push_all(pipeline, frames)
    assert [i for i, _ in results] == [15, 31, 47, 63, 79]
    assert pipeline.stats.frames == 80 and pipeline.stats.results == 5
    index, result = results[2]
    assert result.stamps_ns.dtype == np.int64
    assert result.stamps_ns.tolist() == [f.stamp_ns for f in frames[index - 15:index + 1]]
    assert result.refined_joints.shape == (CLIP, 2, 21, 3) and result.refined_joints.dtype == np.float32
    assert result.refined_presence.shape == (CLIP, 2) and result.refined_presence.all()
    assert np.isfinite(result.refined_joints).all()
    recognition = result.recognition
    assert isinstance(recognition, Recognition)
    assert recognition.num_clips == 3
    assert recognition.observation_start_ns == frames[0].stamp_ns
    assert recognition.observation_end_ns == recognition.stamp_ns == frames[index].stamp_ns
    assert recognition.frame_id == "camera" and len(recognition.hypotheses) == 3
    scores = [h.score for h in recognition.hypotheses]
    assert scores == sorted(scores, reverse=True)
    prediction = result.prediction
    assert isinstance(prediction, Prediction)
    assert prediction.positions.shape == (3, 40, 2, 21, 3) and prediction.positions.dtype == np.float32
    assert prediction.stamp_ns == frames[index].stamp_ns
    assert prediction.mode == "action_guided" and prediction.model_id == "tiny-test"
    assert prediction.conditioning_action == recognition.hypotheses[0]
    assert set(result.timings_ms) == {"encode", "refine", "recognize", "predict", "total"}
    # the history is capped at max_clips clips
    assert results[-1][1].recognition.num_clips == 4


def test_stride_shorter_than_a_clip(model):
    pipeline = StreamingPipeline(model, small_config(clip_stride=8))
    assert [i for i, _ in push_all(pipeline, stream(48))] == [15, 23, 31, 39, 47]


# ---- streaming: the default rate, refined poses of every frame, reuse, determinism, overload ---------------------


def streaming_config(**overrides):
    return small_config(clip_stride=PipelineConfig.clip_stride, **overrides)


def test_default_streams_a_result_every_3_frames_and_refines_every_frame_once(model):
    assert PipelineConfig().clip_stride == 3  # 10 results/s at 30 Hz poses
    frames = stream(5 * CLIP)
    results = push_all(StreamingPipeline(model, streaming_config()), frames)
    assert [i for i, _ in results] == list(range(15, 80, 3))
    due = [i for i, _ in results if 30 <= i < 60]  # one second of 30 Hz poses
    assert len(due) == 10
    # the first result refines its whole clip, each later one the 3 frames new since the previous result
    assert [len(r.stamps_ns) for _, r in results] == [CLIP] + [3] * (len(results) - 1)
    refined = [int(stamp) for _, r in results for stamp in r.stamps_ns]
    assert refined == [f.stamp_ns for f in frames[:results[-1][0] + 1]]
    for index, result in results:
        assert result.refined_joints.shape == (len(result.stamps_ns), 2, 21, 3)
        assert result.prediction.stamp_ns == result.stamps_ns[-1] == frames[index].stamp_ns


def test_streamed_refinement_is_the_newest_clip_refined_on_its_own(model):
    frames = stream(2 * CLIP + 2)
    streamed = push_all(StreamingPipeline(model, streaming_config()), frames)[-1][1]
    assert len(streamed.stamps_ns) == 3
    inference = StreamingPipeline(model, streaming_config()).inference
    newest = frames[-CLIP:]
    joints = np.stack([f.joints for f in newest])[None, None]
    refined = inference.refine_observation(inference.encode_observation(joints, np.ones((1, 1, CLIP, 2), bool)))
    np.testing.assert_allclose(streamed.refined_joints, refined.joints[0, 0, -3:].numpy(), rtol=0, atol=1e-5)


def test_streamed_results_are_deterministic(model):
    frames = stream(6 * CLIP)
    first = push_all(StreamingPipeline(model, streaming_config()), frames)
    replay = StreamingPipeline(model, streaming_config())
    push_all(replay, stream(3 * CLIP + 5, seed=7, start_ns=START_NS - 10**10))  # other history, other alignment
    replay.reset()
    second = push_all(replay, frames)
    assert [i for i, _ in first] == [i for i, _ in second] and len(first) > 20
    for (_, a), (_, b) in zip(first, second):
        np.testing.assert_array_equal(a.stamps_ns, b.stamps_ns)
        np.testing.assert_array_equal(a.refined_joints, b.refined_joints)
        np.testing.assert_array_equal(a.recognition.latent, b.recognition.latent)
        np.testing.assert_array_equal(a.prediction.positions, b.prediction.positions)


def test_streaming_encodes_few_clips_per_result_once_the_history_is_full(model):
    stride = PipelineConfig.clip_stride
    pipeline = StreamingPipeline(model, streaming_config(max_clips=16))
    frames = stream(24 * CLIP)
    encoded = []
    for index, frame in enumerate(frames):
        before = pipeline.stats.encoded_clips
        if pipeline.push(frame) is not None and index >= 19 * CLIP:  # full for a whole round of alignments
            encoded.append(pipeline.stats.encoded_clips - before)
    # the clip boundaries recur every 16 results (48 frames), so each result meets 3 clips it has not encoded before
    assert len(encoded) > 20 and max(encoded) == stride // np.gcd(CLIP, stride)
    assert len(pipeline._clip_cache) <= 16 * CLIP // np.gcd(CLIP, stride)


def test_a_skipped_result_is_counted_and_the_next_one_refines_its_frames(model):
    frames = stream(2 * CLIP)
    pipeline = StreamingPipeline(model, streaming_config())
    results = push_all(pipeline, frames[:CLIP])
    assert [i for i, _ in results] == [15]
    pushed = [pipeline.push(frame, skip_result=True) for frame in frames[CLIP:CLIP + 3]]
    assert pushed == [None] * 3 and pipeline.stats.results_skipped == 1
    results = push_all(pipeline, frames[CLIP + 3:CLIP + 6])
    assert len(results) == 1 and pipeline.stats.results == 2
    np.testing.assert_array_equal(results[0][1].stamps_ns, [f.stamp_ns for f in frames[CLIP:CLIP + 6]])


def test_same_stream_gives_identical_results_and_the_seed_matters(model):
    frames = stream(3 * CLIP)
    first = push_all(StreamingPipeline(model, small_config()), frames)
    again = StreamingPipeline(model, small_config())
    push_all(again, stream(2 * CLIP, seed=7, start_ns=START_NS - 10**10))  # unrelated history, then a reset
    again.reset()
    second = push_all(again, frames)
    other_seed = push_all(StreamingPipeline(model, small_config(seed=1)), frames)
    assert len(first) == len(second) == 3
    for (_, a), (_, b), (_, c) in zip(first, second, other_seed):
        np.testing.assert_array_equal(a.refined_joints, b.refined_joints)
        np.testing.assert_array_equal(a.recognition.latent, b.recognition.latent)
        np.testing.assert_array_equal(a.prediction.positions, b.prediction.positions)
        np.testing.assert_array_equal(a.prediction.positions[0], c.prediction.positions[0])
        assert np.abs(a.prediction.positions[1:] - c.prediction.positions[1:]).max() > 1e-4


def test_time_jump_and_backwards_stamp_reset_the_history(model):
    pipeline = StreamingPipeline(model, small_config())
    frames = stream(20)
    later = stream(40, start_ns=frames[-1].stamp_ns + 2 * 10**9)  # 2 s later > max_gap_s
    assert len(push_all(pipeline, frames)) == 1
    results = push_all(pipeline, later)
    assert pipeline.stats.resets == 1
    assert [i for i, _ in results] == [15, 31]  # a full clip after the jump, not 12 frames
    assert results[0][1].recognition.observation_start_ns == later[0].stamp_ns
    backwards = stream(20, start_ns=later[-1].stamp_ns - 10 * PERIOD_NS)
    assert [i for i, _ in push_all(pipeline, backwards)] == [15]
    assert pipeline.stats.resets == 2


def test_dropped_frames_are_filled_and_keep_timing(model):
    pipeline = StreamingPipeline(model, small_config())
    frames = stream(40)
    kept = frames[:10] + frames[13:]  # the camera dropped frames 10, 11, 12
    results = push_all(pipeline, kept)
    assert pipeline.stats.dropped_frames == 3
    index, result = results[0]
    assert kept[index] is frames[15]  # the clip still ends 16 frame periods after the start
    np.testing.assert_allclose(np.diff(result.stamps_ns), PERIOD_NS, atol=1)
    assert result.refined_presence[10:13].sum() == 0 and np.isnan(result.refined_joints[10:13]).all()
    assert np.isfinite(result.refined_joints[:10]).all() and np.isfinite(result.refined_joints[13:]).all()


def test_duplicate_stamps_are_ignored(model):
    pipeline = StreamingPipeline(model, small_config())
    frames = stream(CLIP)
    for frame in frames[:8]:
        pipeline.push(frame)
    assert pipeline.push(frames[7]) is None
    results = push_all(pipeline, frames[8:])
    assert pipeline.stats.duplicate_frames == 1 and [i for i, _ in results] == [7]


def test_nan_joints_of_a_present_hand_count_as_absent(model):
    pipeline = StreamingPipeline(model, small_config())
    frames = stream(CLIP)
    frames[4].joints = frames[4].joints.copy()
    frames[4].joints[1, 7] = np.nan  # right hand "present" but broken
    result = push_all(pipeline, frames)[0][1]
    assert pipeline.stats.invalid_hands == 1
    assert result.refined_presence[4].tolist() == [True, False]
    assert np.isnan(result.refined_joints[4, 1]).all() and np.isfinite(result.refined_joints[4, 0]).all()


def test_one_hand_in_view(model):
    presence = np.ones((2 * CLIP, 2), bool)
    presence[:, 0] = False  # only the right hand is ever seen
    result = push_all(StreamingPipeline(model, small_config()), stream(2 * CLIP, presence=presence))[-1][1]
    assert result.prediction.hand_present.tolist() == [False, True]
    assert np.isnan(result.prediction.positions[:, :, 0]).all()
    assert np.isfinite(result.prediction.positions[:, :, 1]).all()
    assert np.isnan(result.refined_joints[:, 0]).all() and np.isfinite(result.refined_joints[:, 1]).all()


def test_no_hands_in_view(model):
    presence = np.zeros((2 * CLIP, 2), bool)
    presence[:CLIP] = True  # hands leave after the first clip
    results = push_all(StreamingPipeline(model, small_config()), stream(2 * CLIP, presence=presence))
    last = results[-1][1]
    assert last.prediction is None  # nothing in view at the end
    assert last.recognition.num_clips == 1  # the empty clip is masked
    assert np.isnan(last.refined_joints).all() and not last.refined_presence.any()
    empty = push_all(StreamingPipeline(model, small_config()), stream(CLIP, presence=np.zeros((CLIP, 2), bool)))
    assert empty[0][1].recognition is None and empty[0][1].prediction is None


def test_low_confidence_hands_are_absent(model):
    pipeline = StreamingPipeline(model, small_config(min_confidence=0.5))
    frames = stream(CLIP)
    for frame in frames:
        frame.confidence = np.array([0.9, 0.2], np.float32)
    result = push_all(pipeline, frames)[0][1]
    assert result.refined_presence[:, 1].sum() == 0 and result.prediction.hand_present.tolist() == [True, False]


def test_object_labels_reach_the_recognition(model):
    frames_a = stream(CLIP, objects=["cup"] * CLIP)
    frames_b = stream(CLIP, objects=[None] * (CLIP - 1) + ["jar"])
    result_a = push_all(StreamingPipeline(model, small_config()), frames_a)[0][1]
    result_b = push_all(StreamingPipeline(model, small_config()), frames_b)[0][1]
    assert result_a.recognition.object_label == "cup" and result_b.recognition.object_label == "jar"
    assert np.abs(result_a.recognition.latent - result_b.recognition.latent).max() > 1e-4


def test_pose_only_mode_and_commanded_action(model):
    frames = stream(2 * CLIP)
    pose_only = push_all(StreamingPipeline(model, small_config(mode="pose_only")), frames)[-1][1]
    assert pose_only.prediction.mode == "pose_only" and pose_only.prediction.conditioning_action.label == ""
    assert pose_only.prediction.positions.shape == (3, 40, 2, 21, 3)
    pour = push_all(StreamingPipeline(model, small_config(commanded_action="pour cup")), frames)[-1][1]
    grab = push_all(StreamingPipeline(model, small_config(commanded_action="grab cup")), frames)[-1][1]
    assert pour.prediction.conditioning_action.label == "pour cup" and pour.prediction.conditioning_action.score == 1
    # the first predicted clip comes from the last observed clip; the command steers the rest
    np.testing.assert_array_equal(pour.prediction.positions[:, :CLIP], grab.prediction.positions[:, :CLIP])
    assert np.abs(pour.prediction.positions[:, CLIP:] - grab.prediction.positions[:, CLIP:]).max() > 1e-4
    with pytest.raises(ValueError, match="not in the taxonomy"):
        StreamingPipeline(model, small_config(commanded_action="juggle"))


def test_from_checkpoint_round_trip(model, tmp_path):
    path = tmp_path / "model.pt"
    save_checkpoint(path, model.config, model.pose_block, model.action_block, model.taxonomy, model.label_embeddings)
    loaded = StreamingPipeline.from_checkpoint(path, device="cpu", config=small_config())
    direct = StreamingPipeline(model, small_config())
    frames = stream(CLIP)
    a, b = push_all(loaded, frames)[0][1], push_all(direct, frames)[0][1]
    np.testing.assert_array_equal(a.prediction.positions, b.prediction.positions)
    assert loaded.model_id.startswith("model-")

    pose_path = tmp_path / "pose.pt"
    save_checkpoint(pose_path, tiny_config(), model.pose_block)
    with pytest.raises(ValueError, match="full checkpoint"):
        StreamingPipeline.from_checkpoint(pose_path, config=small_config())
    pose_only = StreamingPipeline.from_checkpoint(pose_path, config=small_config(mode="pose_only"))
    result = push_all(pose_only, frames)[0][1]
    assert result.recognition is None and result.prediction.positions.shape == (3, 40, 2, 21, 3)


def test_bad_frames_and_configs_are_rejected(model):
    pipeline = StreamingPipeline(model, small_config())
    frame = stream(1)[0]
    with pytest.raises(ValueError, match="joints"):
        pipeline.push(FrameInput(frame.stamp_ns, frame.joints[:1], frame.presence))
    with pytest.raises(ValueError, match="stamp_ns"):
        pipeline.push(FrameInput(-5, frame.joints, frame.presence))
    with pytest.raises(ValueError, match="confidence"):
        pipeline.push(FrameInput(frame.stamp_ns, frame.joints, frame.presence, confidence=np.array([2.0, 0.5])))
    with pytest.raises(ValueError, match="mode"):
        PipelineConfig(mode="teleport")
    with pytest.raises(ValueError, match="clip_len"):
        StreamingPipeline(model, small_config(clip_len=8))
    with pytest.raises(ValueError, match="max_clips"):
        StreamingPipeline(model, small_config(max_clips=32))
    with pytest.raises(ValueError, match="action_guided"):
        StreamingPipeline(tiny_model(with_action_block=False), small_config())


# ---- the clip cache: only new clips go through the P-Enc, results stay those of a full re-encode ------------------


def full_reencode_pipeline(model, config):
    """The pipeline as it was before the clip cache: every result runs encode_observation on the whole history."""
    pipeline = StreamingPipeline(model, config)

    def encode_all_clips(clips) -> EncodedObservation:
        frames = [frame for clip in clips for frame in clip]
        joints = np.stack([f.joints for f in frames]).reshape(1, len(clips), CLIP, 2, 21, 3)
        presence = np.stack([f.presence for f in frames]).reshape(1, len(clips), CLIP, 2)
        frame_valid = np.array([f.real for f in frames]).reshape(1, len(clips), CLIP)
        return pipeline.inference.encode_observation(joints, presence, frame_valid, config.max_fill_frames)

    pipeline._encode = encode_all_clips
    return pipeline


def eventful_stream():
    """26 clips before a reset and 7 after, with dropped frames, a hand away for a while, a clip without hands,
    a hand leaving right before a result and changing object labels."""
    first_frames = 26 * CLIP
    presence = np.ones((first_frames, 2), bool)
    presence[70:170, 0] = False  # the left hand is away for about 6 clips
    presence[208:224] = False  # a whole clip without hands
    presence[300:320, 1] = False  # the right hand is away at the end of the result at frame 319 (not predicted)
    presence[350:352, 1] = False  # ... and misses the last 2 frames of the result at frame 351 (still predicted)
    objects = ["cup"] * 100 + [None] * 150 + ["jar"] * (first_frames - 250)
    first = stream(first_frames, presence=presence, objects=objects)
    dropped = {40, 41, 42, 130, 250, 251, 390}  # camera frames lost: filled in by the pipeline
    first = [frame for i, frame in enumerate(first) if i not in dropped]
    after_jump = stream(7 * CLIP + 5, seed=3, start_ns=first[-1].stamp_ns + 2 * 10**9)  # > max_gap_s: a reset
    return first + after_jump


def assert_same_result(cached, full):
    assert cached.frame_id == full.frame_id
    np.testing.assert_array_equal(cached.stamps_ns, full.stamps_ns)
    np.testing.assert_array_equal(cached.refined_presence, full.refined_presence)
    np.testing.assert_allclose(cached.refined_joints, full.refined_joints, rtol=0, atol=1e-5)  # NaNs at equal places
    assert (cached.recognition is None) == (full.recognition is None)
    if full.recognition is not None:
        a, b = cached.recognition, full.recognition
        assert (a.stamp_ns, a.frame_id, a.observation_start_ns, a.observation_end_ns, a.num_clips, a.object_label) == (
            b.stamp_ns, b.frame_id, b.observation_start_ns, b.observation_end_ns, b.num_clips, b.object_label)
        assert [h.label for h in a.hypotheses] == [h.label for h in b.hypotheses]
        np.testing.assert_allclose([h.score for h in a.hypotheses], [h.score for h in b.hypotheses], atol=1e-5)
        np.testing.assert_allclose(a.latent, b.latent, rtol=0, atol=1e-5)
    assert (cached.prediction is None) == (full.prediction is None)
    if full.prediction is not None:
        a, b = cached.prediction, full.prediction
        assert (a.stamp_ns, a.frame_id, a.mode, a.conditioning_action.label, a.model_id) == (
            b.stamp_ns, b.frame_id, b.mode, b.conditioning_action.label, b.model_id)
        assert a.conditioning_action.score == pytest.approx(b.conditioning_action.score, abs=1e-5)
        np.testing.assert_array_equal(a.hand_present, b.hand_present)
        np.testing.assert_allclose(a.positions, b.positions, rtol=0, atol=1e-5)


@pytest.mark.parametrize("overrides", [
    dict(),
    dict(clip_stride=8),  # the clip alignment changes from one result to the next
    dict(clip_stride=3),  # the streaming default: 16 alignments, each recurring every 16 results
    dict(clip_stride=37),  # results further apart than a clip: several new clips per result
    dict(mode="pose_only", num_samples=2),
])
def test_cached_clip_encodings_give_the_results_of_a_full_reencode(model, overrides):
    config = small_config(max_clips=16, **overrides)
    cached, full = StreamingPipeline(model, config), full_reencode_pipeline(model, config)
    frames = eventful_stream()
    cached_results, full_results = push_all(cached, frames), push_all(full, frames)
    assert [i for i, _ in cached_results] == [i for i, _ in full_results] and len(cached_results) >= 10
    assert cached.stats == dataclasses.replace(full.stats, encoded_clips=cached.stats.encoded_clips)
    assert cached.stats.resets == 1 and cached.stats.dropped_frames == 7
    assert max(r.recognition.num_clips for _, r in full_results) >= 15  # a full history (minus a clip without hands)
    assert any(not r.prediction.hand_present.all() for _, r in full_results)
    for (_, a), (_, b) in zip(cached_results, full_results):
        assert_same_result(a, b)
    if config.clip_stride == CLIP:  # one new clip per result; the history is never encoded twice
        assert cached.stats.encoded_clips == cached.stats.results
    assert len(cached._clip_cache) <= config.max_clips * CLIP // np.gcd(CLIP, config.clip_stride)


def test_clip_cache_is_emptied_by_a_reset_and_refilled_from_the_new_frames(model):
    pipeline = StreamingPipeline(model, small_config())
    frames = stream(3 * CLIP)
    first = push_all(pipeline, frames)
    assert pipeline.stats.encoded_clips == 3 and len(pipeline._clip_cache) == 3
    pipeline.reset()
    assert not pipeline._clip_cache
    # the same frames again (same stamps, other joints) must be encoded anew, not taken from the cache
    other = stream(3 * CLIP, seed=5)
    second = push_all(pipeline, other)
    expected = push_all(StreamingPipeline(model, small_config()), other)
    assert pipeline.stats.encoded_clips == 6
    for (_, a), (_, b) in zip(second, expected):
        assert_same_result(a, b)
    assert np.abs(first[-1][1].refined_joints - second[-1][1].refined_joints).max() > 1e-3


def test_a_calibrated_checkpoint_publishes_trust_and_samples_at_its_calibrated_temperature(model):
    from ghtt_core.forecast_calibration import ForecastCalibration

    calibrated = dataclasses.replace(model, calibration=ForecastCalibration([1.0], residual_low=1e3,
                                                                            residual_high=2e3, temperature=2.5))
    frames = stream(2 * CLIP)
    (_, auto), = push_all(StreamingPipeline(calibrated, small_config(clip_stride=32)), frames)[-1:]
    assert auto.prediction.sampling_temperature == 2.5
    np.testing.assert_array_equal(auto.prediction.trust, [1.0, 1.0])
    (_, fixed), = push_all(StreamingPipeline(calibrated, small_config(clip_stride=32, sampling_temperature=2.5)),
                           frames)[-1:]
    np.testing.assert_array_equal(fixed.prediction.positions, auto.prediction.positions)
    (_, plain), = push_all(StreamingPipeline(model, small_config(clip_stride=32)), frames)[-1:]
    assert plain.prediction.sampling_temperature == 5.0 and plain.prediction.trust is None
