"""Quick held-out check of a trained checkpoint (docs/training.md): is the training run any good?

On one recording split (default: the test subjects) and a set of views, with the protocols of
ghtt_core.evaluate.protocols:
* refinement: MPJPE (absolute, root-relative, RA, PA) of the estimated input and of the P-Enc refinement vs ground truth;
* recognition (full checkpoints): top-1 accuracy without and with the ground-truth object token, vs chance;
* prediction (full checkpoints): P.b and a zero-velocity baseline on windows with >= 1 s / >= 2 s of action left:
  deterministic ADE/FDE, best-of-S ADE, and the error at 1 s and 2 s into the future; the paired difference P.b - zero
  velocity with a 95 % bootstrap interval over windows; plus the P-Dec decoding of the true future mid-levels (what
  P.b would reach with a perfect A-Block, the P-Block's share of the error). The paper observes the ground truth;
  when the data has estimated poses the same rows (without the diagnostic) are repeated with the estimate observed,
  as a robot would see it (the future is always scored against the ground truth). A checkpoint with a forecast
  calibration (`ghtt calibrate`) is scored calibrated ("G-HTT P.b") and raw ("G-HTT P.b, raw"). Every row has the
  error at chosen future frames ("error_by_frame"): its first 16 frames of the true-mid-level row are the next clip
  decoded from the observed clip's own mid-level alone (no skip memory), the P-Block's decoding floor.
* recognition baseline (optional, gru_train): the BiGRU of ghtt_core.evaluate.gru_baseline trained on the given
  training actions for gru_steps steps, scored on the same actions as G-HTT.
The model's classes need not be the data's: prediction and refinement are scored on any dataset (objects outside the
taxonomy get the unknown-object token); recognition counts only the actions whose class the model knows.
The full paper report (baselines, FID, APD, tables) is `ghtt benchmark`.
"""

from __future__ import annotations

import math
import time

import torch

from ghtt_core.evaluate import protocols
from ghtt_core.evaluate.fitting import FitOptions
from ghtt_core.evaluate.gru_baseline import GRUClassifier, GRURecognizer, train_gru_baseline
from ghtt_core.evaluate.metrics import (mpjpe, mpjpe_pa, mpjpe_ra, mpjpe_root_relative, paired_difference,
                                        top1_accuracy)
from ghtt_core.inference import GHTTInference
from ghtt_core.taxonomy import Taxonomy

FPS = 30
PROTOCOL_FRAMES = {"1s": FPS, "2s": 2 * FPS}
REPORTED_FRAMES = (1, 2, 4, 8, 16, 24, 32, 48, 64, 80, 96)
RAW_PB = "G-HTT P.b, raw"


def refinement_report(inference: GHTTInference, sequences: protocols.RecognitionSequences,
                      batch_size: int = 64) -> dict:
    errors: dict[str, list] = {}
    for first in range(0, len(sequences), batch_size):
        batch = sequences.select(slice(first, first + batch_size))
        observation = inference.encode_observation(batch.input_joints, batch.input_presence, batch.frame_valid)
        refined = inference.refine_observation(observation).joints.cpu().double()
        counted = batch.input_presence & batch.truth_presence
        truth, estimated = batch.truth_joints.double(), batch.input_joints.double()
        for name, metric in (("absolute", mpjpe), ("root_relative", mpjpe_root_relative), ("ra", mpjpe_ra),
                             ("pa", mpjpe_pa)):
            for source, joints in (("input", estimated), ("refined", refined)):
                values = metric(joints, truth, counted, batch.frame_valid).values
                errors.setdefault(f"{source}_{name}", []).append(values.flatten())
    # mean over every counted (frame, hand) of both hands
    return {name: _nanmean(torch.cat(parts)) for name, parts in errors.items()}


def recognition_report(inference: GHTTInference, sequences: protocols.RecognitionSequences,
                       batch_size: int = 64) -> dict:
    """Top-1 with and without the object token over the actions whose class the model knows."""
    outside = int((sequences.labels < 0).sum())
    sequences = sequences.select((sequences.labels >= 0).nonzero().flatten().tolist())
    if not len(sequences):
        return {"actions": 0, "actions_outside_taxonomy": outside,
                "note": "no held-out action has a class of the model's taxonomy: recognition not scored"}
    predicted_plain, predicted_object = [], []
    objects = inference.model.taxonomy.objects
    nouns = [inference.model.taxonomy.actions[label].noun for label in sequences.labels.tolist()]
    for first in range(0, len(sequences), batch_size):
        batch = sequences.select(slice(first, first + batch_size))
        observation = inference.encode_observation(batch.input_joints, batch.input_presence, batch.frame_valid)
        clips = batch.frame_valid.shape[1]
        names = [[nouns[first + i]] * clips for i in range(len(batch))]
        predicted_plain.append(inference.recognize(observation, top_k=1).indices[:, 0].cpu())
        predicted_object.append(inference.recognize(observation, object_names=names, top_k=1).indices[:, 0].cpu())
    labels = sequences.labels
    majority = float(torch.bincount(labels).max()) / len(labels)
    same_object = [sum(a.noun == noun for a in inference.model.taxonomy.actions) for noun in nouns]
    return {
        "actions": len(labels),
        "actions_outside_taxonomy": outside,
        "classes": len(inference.model.taxonomy.actions),
        "top1_motion_only": top1_accuracy(torch.cat(predicted_plain), labels),
        "top1_with_object": top1_accuracy(torch.cat(predicted_object), labels),
        "chance_uniform": 1.0 / len(inference.model.taxonomy.actions),
        "chance_majority": majority,
        # knowing the object leaves this many candidate actions: guessing among them
        "chance_given_object": float(sum(1.0 / n for n in same_object) / len(same_object)),
        "objects": len(objects),
    }


def prediction_report(inference: GHTTInference, sequences, num_random_samples: int, max_windows: int,
                      seed: int) -> dict:
    """Per protocol ("1s", "2s": the paper's, observed ground truth; "1s_estimated_input", "2s_estimated_input": the
    observation is the estimated poses, as on a robot, when every sequence has them) a row per predictor."""
    report = {}
    taxonomy = inference.model.taxonomy
    observed_inputs = ["truth"]
    if all(sequence.estimated_joints is not None for sequence in sequences):
        observed_inputs.append("estimated")
    for observed_input in observed_inputs:
        for protocol, min_frames in PROTOCOL_FRAMES.items():
            name = protocol if observed_input == "truth" else f"{protocol}_estimated_input"
            report[name] = _prediction_rows(inference, sequences, taxonomy, min_frames, observed_input,
                                            num_random_samples, max_windows, seed)
    return report


def _prediction_rows(inference, sequences, taxonomy, min_frames, observed_input, num_random_samples, max_windows,
                     seed) -> dict:
    windows = protocols.prediction_windows(sequences, taxonomy, min_frames, observed_input=observed_input)
    if 0 < max_windows < len(windows):
        keep = torch.randperm(len(windows), generator=torch.Generator().manual_seed(seed))[:max_windows]
        windows = windows.select(keep.sort().values)
    rows = {"windows": len(windows)}
    records = {}
    predictors = [protocols.ActionGuidedPredictor(inference), protocols.ZeroVelocityPredictor()]
    if inference.calibration is not None:
        predictors.insert(1, protocols.ActionGuidedPredictor(inference, calibrated=False, name=RAW_PB))
    if observed_input == "truth":  # the diagnostic decodes the true future, whatever the observation
        predictors.append(protocols.TrueMidlevelPredictor(inference))
    for predictor in predictors:
        record = protocols.evaluate_prediction(predictor, windows, num_random_samples=num_random_samples, seed=seed)
        records[predictor.name] = record
        row = {
            "ade": _nanmean(record.deterministic_ade),
            "fde": _nanmean(record.deterministic_fde),
            "error_at_1s": _nanmean(record.frame_errors[:, FPS - 1]),
            "error_at_2s": _nanmean(record.frame_errors[:, 2 * FPS - 1]) if min_frames >= 2 * FPS else None,
            "error_by_frame": {str(f): _nanmean(record.frame_errors[:, f - 1]) for f in REPORTED_FRAMES
                               if f <= record.frame_errors.shape[1]},
        }
        if predictor.stochastic:
            row["ade_best_of_samples"] = _nanmean(record.ade_best)
            row["apd"] = _nanmean(record.apd)
        rows[predictor.name] = row
    held = records[protocols.ZeroVelocityPredictor.name]
    for name, label in ((protocols.ActionGuidedPredictor.name, "P.b minus zero velocity"),
                        (RAW_PB, "P.b raw minus zero velocity")):
        if name in records:
            rows[label] = {metric: paired_difference(getattr(records[name], f"deterministic_{metric}"),
                                                     getattr(held, f"deterministic_{metric}"), seed=seed).to_dict()
                           for metric in ("ade", "fde")}
    return rows


def _nanmean(values: torch.Tensor) -> float:
    counted = ~torch.isnan(values)
    return float(values[counted].mean()) if counted.any() else math.nan


def gru_baseline_report(train_sequences, actions: protocols.RecognitionSequences, taxonomy: Taxonomy, steps: int,
                        seed: int, max_clips: int) -> dict:
    """The BiGRU recognition baseline trained on train_sequences' actions, top-1 on `actions` (known classes)."""
    started = time.perf_counter()
    torch.manual_seed(seed)
    model = GRUClassifier(len(taxonomy.actions))
    train = protocols.recognition_sequences(train_sequences, taxonomy, max_clips)
    losses = train_gru_baseline(model, train, FitOptions(steps=steps, batch_size=32, learning_rate=2e-3, seed=seed))
    known = actions.select((actions.labels >= 0).nonzero().flatten().tolist())
    predicted = protocols.recognize_all(GRURecognizer(model), known)
    return {"top1": top1_accuracy(predicted, known.labels), "actions": len(known), "train_actions": len(train),
            "steps": steps, "final_loss": sum(losses[-20:]) / len(losses[-20:]),
            "seconds": round(time.perf_counter() - started, 1)}


def heldout_report(checkpoint, sequences, num_random_samples: int = 5, max_windows: int = 400,
                   seed: int = 0, gru_train_sequences=None, gru_steps: int = 0) -> dict:
    """checkpoint: a loaded ModelCheckpoint; sequences: held-out HandSequences (with estimated poses if any).
    gru_train_sequences / gru_steps > 0: also train and score the BiGRU recognition baseline."""
    started = time.perf_counter()
    inference = GHTTInference(checkpoint)
    capacity = checkpoint.config.action.max_clips
    # a pose checkpoint has no taxonomy; the actions then only delimit the refinement clips
    taxonomy = checkpoint.taxonomy if checkpoint.taxonomy.actions else Taxonomy.from_segments(
        segment for sequence in sequences for segment in sequence.actions)
    actions = protocols.recognition_sequences(sequences, taxonomy, max_clips=capacity)
    report = {"model_id": checkpoint.model_id, "kind": checkpoint.kind, "sequences": len(sequences),
              "refinement_mm": refinement_report(inference, actions)}
    if checkpoint.action_block is not None:
        report["recognition"] = recognition_report(inference, actions)
        report["prediction_mm"] = prediction_report(inference, sequences, num_random_samples, max_windows, seed)
    if gru_steps > 0 and gru_train_sequences:
        report["recognition_baseline_bigru"] = gru_baseline_report(gru_train_sequences, actions, taxonomy, gru_steps,
                                                                   seed, capacity)
    report["seconds"] = round(time.perf_counter() - started, 1)
    return report
