"""`ghtt training-report` on a full checkpoint (ghtt_core.train.heldout): every section, and the paired P.b - zero
velocity comparison agrees with the two predictors' own rows."""

import math

import numpy as np
import pytest
import torch
from model_batches import moving_hands
from training_data import taxonomy_and_embeddings, tiny_config

from ghtt_core.action_block import ActionBlock
from ghtt_core.checkpoint import ModelCheckpoint
from ghtt_core.data.sequence import ActionSegment, HandSequence
from ghtt_core.evaluate import protocols
from ghtt_core.pose_block import PoseBlock
from ghtt_core.train.heldout import heldout_report


def _long_action_sequences():
    sequences = []
    for index in range(2):
        joints = moving_hands(1, 150, seed=index)[0].numpy()
        presence = np.ones(joints.shape[:2], dtype=bool)
        presence[100:120, 0] = False  # one hand leaves for a while
        segments = [ActionSegment(0, 130, "pour cup", "pour", "cup"), ActionSegment(130, 150, "open box", "open",
                                                                                     "box")]
        sequences.append(HandSequence(f"seq{index}", joints, presence, actions=segments))
    return sequences


def test_full_report_has_every_section_and_a_consistent_paired_difference():
    torch.manual_seed(0)
    sequences = _long_action_sequences()
    taxonomy, embeddings = taxonomy_and_embeddings(sequences)
    config = tiny_config()
    config.action.max_clips = 8  # the protocol's 96 future frames need 5 A-Dec clips
    checkpoint = ModelCheckpoint(config=config, pose_block=PoseBlock(config.pose).eval(),
                                 action_block=ActionBlock(config.action).eval(), taxonomy=taxonomy,
                                 label_embeddings=embeddings, model_id="tiny-heldout")
    report = heldout_report(checkpoint, sequences, num_random_samples=2, max_windows=0)
    assert report["recognition"]["actions"] == 4
    recognition = report["recognition"]
    assert recognition["clip_offsets"] == [0, 4, 8, 12]
    for name in ("motion_only", "with_object"):  # both alignments scored: the authors' and the averaged one
        assert 0.0 <= recognition[f"top1_{name}"] <= 1.0 and 0.0 <= recognition[f"top1_{name}_clip_offsets"] <= 1.0
    single = heldout_report(checkpoint, sequences, num_random_samples=2, max_windows=2, clip_offsets=(0,))
    assert "top1_motion_only_clip_offsets" not in single["recognition"]
    assert single["recognition"]["top1_motion_only"] == recognition["top1_motion_only"]
    assert set(report["prediction_mm"]) == {"1s", "2s"}  # no estimated poses: only the paper's protocols
    for protocol, windows in (("1s", 14), ("2s", 10)):  # starts every 16 frames leaving >= 30 / 60 frames
        rows = report["prediction_mm"][protocol]
        assert rows["windows"] == windows
        guided, held = rows["G-HTT P.b"], rows["zero velocity"]
        difference = rows["P.b minus zero velocity"]
        for metric in ("ade", "fde"):
            assert math.isclose(difference[metric]["mean"], guided[metric] - held[metric], rel_tol=1e-9,
                                abs_tol=1e-9)
            low, high = difference[metric]["ci95"]
            assert low <= difference[metric]["mean"] <= high
            assert difference[metric]["windows"] == windows


def test_estimated_input_protocol_observes_the_estimate_and_scores_against_the_truth():
    sequences = _long_action_sequences()
    for sequence in sequences:
        sequence.estimated_joints = sequence.joints + 0.01
        sequence.estimated_presence = sequence.presence.copy()
        sequence.estimated_presence[10:20, 1] = False
    taxonomy, _ = taxonomy_and_embeddings(sequences)
    truth = protocols.prediction_windows(sequences, taxonomy, 30)
    estimated = protocols.prediction_windows(sequences, taxonomy, 30, observed_input="estimated")
    torch.testing.assert_close(estimated.observed_joints, truth.observed_joints + 0.01)
    assert not estimated.observed_presence[0, 10:, 1].any() and truth.observed_presence[0, 10:, 1].all()
    torch.testing.assert_close(estimated.future_joints, truth.future_joints)
    seen = estimated.observed_presence[:, -1, 0]  # windows whose left hand is in the last observed frame
    held = protocols.ZeroVelocityPredictor().predict(estimated, 1, None)
    torch.testing.assert_close(held.joints[seen, 0, :, 0].double(),
                               estimated.observed_joints[seen, -1:, 0].double().expand(-1, 96, -1, -1))
    with pytest.raises(ValueError, match="no estimated poses"):
        protocols.prediction_windows(_long_action_sequences(), taxonomy, 30, observed_input="estimated")
    with pytest.raises(ValueError, match="observed_input"):
        protocols.prediction_windows(sequences, taxonomy, 30, observed_input="noisy")


def _tiny_checkpoint(sequences, max_clips=8, calibration=None):
    torch.manual_seed(0)
    taxonomy, embeddings = taxonomy_and_embeddings(sequences)
    config = tiny_config()
    config.action.max_clips = max_clips
    return ModelCheckpoint(config=config, pose_block=PoseBlock(config.pose).eval(),
                           action_block=ActionBlock(config.action).eval(), taxonomy=taxonomy,
                           label_embeddings=embeddings, model_id="tiny-heldout", calibration=calibration)


def test_report_says_how_long_actions_were_scored_and_gives_top5():
    sequences = _long_action_sequences()  # "pour cup" lasts 130 frames: longer than 8 clips (128 frames)
    checkpoint = _tiny_checkpoint(sequences)
    first = heldout_report(checkpoint, sequences, num_random_samples=1, max_windows=2)["recognition"]
    sliding = heldout_report(checkpoint, sequences, num_random_samples=1, max_windows=2,
                             long_actions="sliding")["recognition"]
    for recognition in (first, sliding):
        assert recognition["actions_longer_than_capacity"] == 2 and recognition["capacity_frames"] == 128
        assert recognition["top5_motion_only"] == recognition["top5_with_object"] == 1.0  # 2 classes
    assert first["long_actions"] == "first" and "first 128 frames" in first["long_actions_scored_by"]
    assert sliding["long_actions"] == "sliding" and "windows of 8 clips" in sliding["long_actions_scored_by"]
    with pytest.raises(ValueError, match="long_actions"):
        heldout_report(checkpoint, sequences, long_actions="all")


def test_report_says_when_the_refinement_input_is_the_ground_truth():
    sequences = _long_action_sequences()
    checkpoint = _tiny_checkpoint(sequences)
    report = heldout_report(checkpoint, sequences, num_random_samples=1, max_windows=2)
    assert report["refinement_input"].startswith("ground truth")
    assert report["refinement_mm"]["input_absolute"] == 0.0
    sequences[0].estimated_joints = sequences[0].joints + 0.01
    sequences[0].estimated_presence = sequences[0].presence.copy()
    report = heldout_report(checkpoint, sequences, num_random_samples=1, max_windows=2)
    assert report["refinement_input"] == "estimated poses for 2 of the 4 actions, the ground truth for the others"


def test_min_future_frames_rule_keeps_fewer_windows():
    sequences = _long_action_sequences()
    checkpoint = _tiny_checkpoint(sequences)
    report = heldout_report(checkpoint, sequences, num_random_samples=1, max_windows=0,
                            count_from="observation_end")
    # per 130-frame action, starts 0..112 every 16 frames: >= 46 / 76 frames left after the start
    assert report["prediction_mm"]["1s"]["windows"] == 2 * 6 and report["prediction_mm"]["2s"]["windows"] == 2 * 4
    assert "after the 16 observed frames" in report["prediction_protocol"]


def test_a_model_is_scored_on_another_datasets_classes_and_a_calibrated_one_also_raw():
    from ghtt_core.forecast_calibration import ForecastCalibration

    sequences = _long_action_sequences()
    calibration = ForecastCalibration([1.0, 0.5], residual_low=1e3, residual_high=2e3, temperature=2.0)
    checkpoint = _tiny_checkpoint(sequences, calibration=calibration)
    for sequence in sequences:  # recordings of classes and objects the model never knew
        sequence.actions = [ActionSegment(s.start, s.end, "juggle ball", "juggle", "ball") for s in sequence.actions]
    report = heldout_report(checkpoint, sequences, num_random_samples=2,
                            max_windows=0)
    assert report["recognition"]["actions"] == 0 and report["recognition"]["actions_outside_taxonomy"] == 4
    assert report["refinement_mm"]["refined_pa"] > 0
    rows = report["prediction_mm"]["1s"]
    assert rows["windows"] == 14
    for name in ("G-HTT P.b", "G-HTT P.b, raw", "zero velocity", "P-Dec of true future mid-levels"):
        by_frame = rows[name]["error_by_frame"]
        assert set(by_frame) == {"1", "2", "4", "8", "16", "24", "32", "48", "64", "80", "96"}
        assert all(value >= 0 for value in by_frame.values())
    # the gain halves every displacement from the second frame on: the calibrated forecast is a different one
    assert rows["G-HTT P.b"]["error_by_frame"]["1"] == pytest.approx(rows["G-HTT P.b, raw"]["error_by_frame"]["1"])
    assert rows["G-HTT P.b"]["ade"] != rows["G-HTT P.b, raw"]["ade"]
    assert "P.b raw minus zero velocity" in rows


def test_the_bigru_baseline_is_trained_and_scored_on_the_same_actions():
    sequences = _long_action_sequences()
    report = heldout_report(_tiny_checkpoint(sequences), sequences, num_random_samples=2, max_windows=4,
                            gru_train_sequences=sequences, gru_steps=5)
    baseline = report["recognition_baseline_bigru"]
    assert baseline["actions"] == report["recognition"]["actions"] == 4 and baseline["steps"] == 5
    assert 0.0 <= baseline["top1"] <= 1.0 and math.isfinite(baseline["final_loss"])
    assert 0.0 <= baseline["top1_clip_offsets"] <= 1.0 and baseline["clip_offsets"] == [0, 4, 8, 12]
