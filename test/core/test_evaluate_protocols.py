from dataclasses import dataclass

import numpy as np
import pytest
import torch
from model_batches import canonical_hands
from tiny_models import tiny_model

from ghtt_core.data.sequence import ActionSegment, HandSequence
from ghtt_core.evaluate.protocols import (
    ConstantVelocityPredictor,
    TrueMidlevelPredictor,
    ZeroVelocityPredictor,
    evaluate_prediction,
    prediction_windows,
    recognition_sequences,
)
from ghtt_core.inference import GHTTInference, MotionForecast
from ghtt_core.taxonomy import ActionLabel, Taxonomy

TAXONOMY = Taxonomy(actions=(ActionLabel("open jar", "open", "jar"), ActionLabel("pour cup", "pour", "cup")),
                    objects=("cup", "jar"))
FRAME_STEP = 0.001  # metres per frame along x: a joint's x tells its frame index


def frame_coded_sequence(num_frames=130, action=(10, 100), label="open jar", noun="jar", view="right",
                         estimated_offset=None):
    """Both hands translate 1 mm per frame along x, so every frame is recognisable from its joints."""
    hands = canonical_hands().numpy() + np.array([0.0, 0.0, 0.5], dtype=np.float32)
    joints = np.repeat(hands[None], num_frames, axis=0)
    joints[..., 0] += FRAME_STEP * np.arange(num_frames, dtype=np.float32)[:, None, None]
    presence = np.ones((num_frames, 2), dtype=bool)
    estimated = None if estimated_offset is None else joints + estimated_offset
    return HandSequence(name="seq", joints=joints, presence=presence, view=view,
                        actions=[ActionSegment(action[0], action[1], label, label.split()[0], noun)],
                        estimated_joints=estimated, estimated_presence=None if estimated is None else presence)


def frame_of(joints: torch.Tensor) -> torch.Tensor:
    """Frame index encoded in the x of the left wrist of (..., 2, 21, 3) joints."""
    reference = canonical_hands()[0, 0, 0].item()
    return ((joints[..., 0, 0, 0] - reference) / FRAME_STEP).round().long()


def test_prediction_windows_start_every_16_frames_and_need_the_minimum_remaining_length():
    sequence = frame_coded_sequence()
    one_second = prediction_windows([sequence], TAXONOMY, min_remaining_frames=30)
    # starts 10, 26, 42, 58 leave 90, 74, 58, 42 frames; 74 would leave only 26
    assert one_second.start_in_action.tolist() == [0, 16, 32, 48]
    assert one_second.remaining_frames.tolist() == [90, 74, 58, 42]
    two_seconds = prediction_windows([sequence], TAXONOMY, min_remaining_frames=60)
    assert two_seconds.start_in_action.tolist() == [0, 16]
    assert one_second.labels.tolist() == [0] * 4 and one_second.nouns.tolist() == [1] * 4
    assert one_second.views == ["right"] * 4


def test_prediction_windows_can_count_the_minimum_after_the_observation():
    sequence = frame_coded_sequence()  # one action of 90 frames: window starts leave 90, 74, 58, 42, 26 frames
    one_second = prediction_windows([sequence], TAXONOMY, 30, count_from="observation_end")
    assert one_second.remaining_frames.tolist() == [90, 74, 58]  # >= 16 observed + 30 future frames
    assert one_second.future_valid.sum(dim=1).min().item() == 30 + 12
    two_seconds = prediction_windows([sequence], TAXONOMY, 60, count_from="observation_end")
    assert two_seconds.remaining_frames.tolist() == [90]  # >= 16 + 60
    with pytest.raises(ValueError, match="count_from"):
        prediction_windows([sequence], TAXONOMY, 30, count_from="future")


def test_prediction_windows_observe_16_frames_and_stop_the_future_at_the_action_end():
    windows = prediction_windows([frame_coded_sequence()], TAXONOMY, min_remaining_frames=30)
    assert windows.observed_joints.shape == (4, 16, 2, 21, 3) and windows.future_joints.shape == (4, 96, 2, 21, 3)
    assert frame_of(windows.observed_joints[1]).tolist() == list(range(26, 42))
    real_future = windows.future_valid.sum(dim=1)
    assert real_future.tolist() == [74, 58, 42, 26]  # to the action end at frame 100, never more than 96
    last = windows.select([3])
    assert frame_of(last.future_joints[0, :26]).tolist() == list(range(74, 100))
    assert (frame_of(last.future_joints[0, 26:]) == 99).all()  # padding repeats the last action frame ...
    assert not last.future_presence[0, 26:].any()  # ... and never counts
    assert last.future_presence[0, :26].all()


def test_windows_select_by_mask_keeps_views_and_tensors_together():
    windows = prediction_windows([frame_coded_sequence(view="top"), frame_coded_sequence(action=(0, 40),
                                                                                         label="pour cup",
                                                                                         noun="cup")],
                                 TAXONOMY, min_remaining_frames=30)
    chosen = windows.select(windows.labels == 1)
    assert len(chosen) == 1 and chosen.views == ["right"] and chosen.remaining_frames.tolist() == [40]


def test_recognition_sequences_cut_whole_actions_into_clips_of_the_estimated_input():
    offset = np.float32(0.004)
    sequences = [frame_coded_sequence(action=(5, 45), estimated_offset=offset),
                 frame_coded_sequence(action=(0, 20), label="pour cup", noun="cup")]
    recognition = recognition_sequences(sequences, TAXONOMY)
    assert recognition.input_joints.shape == (2, 3, 16, 2, 21, 3)  # 40 frames -> 3 clips; padded to the longest
    assert recognition.frame_valid[0].sum() == 40 and recognition.frame_valid[1].sum() == 20
    assert frame_of(recognition.truth_joints[0].flatten(0, 1)[:40]).tolist() == list(range(5, 45))
    difference = recognition.input_joints[0] - recognition.truth_joints[0]
    assert torch.allclose(difference, torch.full_like(difference, 0.004), atol=1e-6)
    assert torch.equal(recognition.input_joints[1], recognition.truth_joints[1])  # no estimate: ground truth
    assert not recognition.truth_presence[1].flatten(0, 1)[20:].any()
    assert recognition.labels.tolist() == [0, 1]
    capped = recognition_sequences(sequences, TAXONOMY, max_clips=2)
    assert capped.input_joints.shape[1] == 2 and capped.frame_valid[0].sum() == 32


@dataclass
class OffsetSamples:
    """Sample s = ground truth + s * step along y; garbage in padded future frames (which must never count)."""

    step: float
    name: str = "offsets"
    stochastic: bool = True

    def predict(self, windows, num_samples, generator):
        offsets = torch.zeros(num_samples, 1, 1, 1, 3)
        offsets[..., 1] = self.step * torch.arange(num_samples).view(-1, 1, 1, 1)
        joints = windows.future_joints.unsqueeze(1) + offsets
        joints[~windows.future_valid[:, None].expand(-1, num_samples, -1)] = 1e3
        return MotionForecast(joints, torch.ones(len(windows), 2, dtype=torch.bool))


def test_evaluate_prediction_scores_the_deterministic_pass_and_the_random_samples_separately():
    windows = prediction_windows([frame_coded_sequence()], TAXONOMY, min_remaining_frames=30)
    record = evaluate_prediction(OffsetSamples(step=0.002), windows, num_random_samples=4, batch_size=3)
    assert record.num_random_samples == 4
    assert torch.allclose(record.deterministic_ade, torch.zeros(4, 2, dtype=torch.float64))
    # random samples 1..4 are off by 2, 4, 6, 8 mm
    assert torch.allclose(record.ade_mean, torch.full((4, 2), 5.0, dtype=torch.float64))
    assert torch.allclose(record.ade_best, torch.full((4, 2), 2.0, dtype=torch.float64))
    assert torch.allclose(record.fde_mean, torch.full((4, 2), 5.0, dtype=torch.float64))
    # pairwise |i - j| over i < j in 1..4: (1+2+3+1+2+1) / 6 = 10/6 steps of 2 mm
    assert torch.allclose(record.apd, torch.full((4, 2), 20.0 / 6.0, dtype=torch.float64))
    assert record.frame_errors.shape == (4, 96, 2)
    assert record.frame_errors[3, 26:].isnan().all() and (record.frame_errors[3, :26] == 0).all()
    assert record.fid_features is None
    half = record.select(torch.tensor([True, False, True, False]))
    assert half.ade_mean.shape == (2, 2) and half.frame_errors.shape == (2, 96, 2)


def test_a_single_random_sample_has_errors_but_no_spread_and_none_has_neither():
    windows = prediction_windows([frame_coded_sequence()], TAXONOMY, min_remaining_frames=30)
    one = evaluate_prediction(OffsetSamples(step=0.002), windows, num_random_samples=1)
    assert torch.allclose(one.ade_best, torch.full((4, 2), 2.0, dtype=torch.float64)) and one.apd.isnan().all()
    none = evaluate_prediction(OffsetSamples(step=0.002), windows, num_random_samples=0)
    assert none.ade_mean.isnan().all() and none.apd.isnan().all()
    assert torch.allclose(none.deterministic_ade, torch.zeros(4, 2, dtype=torch.float64))


def test_deterministic_baselines_plug_into_the_protocol():
    windows = prediction_windows([frame_coded_sequence()], TAXONOMY, min_remaining_frames=30)
    constant = evaluate_prediction(ConstantVelocityPredictor(), windows, num_random_samples=20)
    # the hands move exactly at constant velocity: extrapolation is exact
    assert torch.allclose(constant.deterministic_ade, torch.zeros(4, 2, dtype=torch.float64), atol=1e-3)
    assert constant.num_random_samples == 0 and constant.apd.isnan().all() and constant.ade_mean.isnan().all()
    zero = evaluate_prediction(ZeroVelocityPredictor(), windows, num_random_samples=20)
    # holding the last observed frame: future frame i (0-based) is i + 1 mm away along x
    expected_fde = FRAME_STEP * 1000.0 * windows.future_valid.sum(dim=1).double()
    assert torch.allclose(zero.deterministic_fde[:, 0], expected_fde, atol=1e-3)
    assert torch.allclose(zero.frame_errors[0, :3, 1], torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64), atol=1e-3)


def test_fid_features_cover_every_random_sample():
    from ghtt_core.config import TransformerConfig
    from ghtt_core.evaluate.fid_net import FIDNet, FIDNetConfig

    torch.manual_seed(0)
    fid_net = FIDNet(FIDNetConfig(transformer=TransformerConfig(d_model=16, n_heads=2, d_ff=32, n_enc_layers=1,
                                                                n_dec_layers=1), max_frames=112, text_dim=8))
    windows = prediction_windows([frame_coded_sequence()], TAXONOMY, min_remaining_frames=60)
    record = evaluate_prediction(OffsetSamples(step=0.002), windows, num_random_samples=3, fid_net=fid_net)
    assert record.fid_features.shape == (2, 3, 16)
    # different samples -> different features; the padded garbage never reaches the network
    assert not torch.allclose(record.fid_features[:, 0], record.fid_features[:, 2])
    assert torch.isfinite(record.fid_features).all()


def test_evaluate_prediction_rejects_nan_for_a_hand_it_claims_to_predict():
    @dataclass
    class Broken:
        name: str = "broken"
        stochastic: bool = False

        def predict(self, windows, num_samples, generator):
            return MotionForecast(torch.full((len(windows), 1, 96, 2, 21, 3), float("nan")),
                                  torch.ones(len(windows), 2, dtype=torch.bool))

    windows = prediction_windows([frame_coded_sequence()], TAXONOMY, min_remaining_frames=30)
    with pytest.raises(ValueError, match="NaN"):
        evaluate_prediction(Broken(), windows)


def test_true_midlevel_predictor_decodes_the_observation_then_the_true_future_clips():
    windows = prediction_windows([frame_coded_sequence()], TAXONOMY, min_remaining_frames=30)
    inference = GHTTInference(tiny_model())
    decoded = []
    decode = inference.decode_midlevels
    inference.decode_midlevels = lambda observation, mids, horizon: decoded.append(mids) or decode(
        observation, mids, horizon)
    forecast = evaluate_prediction(TrueMidlevelPredictor(inference), windows, num_random_samples=5)
    (mids,) = decoded
    assert mids.shape == (len(windows), 1, 6, inference.pose_block.d_model)  # 96 frames: clip 0 + 5 true clips
    observed = inference.encode_observation(windows.observed_joints.unsqueeze(1),
                                            windows.observed_presence.unsqueeze(1))
    torch.testing.assert_close(mids[:, 0, 0], observed.mu[:, 0])
    # mid-level c + 1 is the P-Enc mu of true future clip c, alone
    clip = windows.future_joints[:, 16:32].unsqueeze(1)
    alone = inference.encode_observation(clip, windows.future_presence[:, 16:32].unsqueeze(1),
                                         windows.future_valid[:, 16:32].unsqueeze(1))
    torch.testing.assert_close(mids[:, 0, 2], alone.mu[:, 0])
    assert forecast.num_random_samples == 0 and forecast.deterministic_ade.isfinite().all()
