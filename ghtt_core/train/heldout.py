"""Quick held-out check of a trained checkpoint (docs/training.md): is the training run any good?

On one recording split (default: the test subjects) and a set of views, with the protocols of
ghtt_core.evaluate.protocols:
* refinement: MPJPE (absolute, root-relative, RA, PA) of the estimated input and of the P-Enc refinement vs ground truth
  ("refinement_input" says when the data has no estimated poses and the input is the ground truth);
* recognition (full checkpoints): top-1 and top-5 accuracy without and with the ground-truth object token, vs chance;
  how many actions are longer than the A-Block's 16 clips and how they were scored (their first clips, or the mean
  over sliding windows: ghtt_core.evaluate.long_actions);
* prediction (full checkpoints): P.b and a zero-velocity baseline on windows with >= 1 s / >= 2 s of action left
  (counted from the window start, or after the observation: "prediction_protocol"):
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
from ghtt_core.evaluate.clip_offsets import DEFAULT_OFFSETS, OffsetAveragedRecognizer, averaged_scores
from ghtt_core.evaluate.long_actions import LONG_ACTION_MODES, LongActions, find_long_actions, sliding_window_scores
from ghtt_core.evaluate.metrics import (mpjpe, mpjpe_pa, mpjpe_ra, mpjpe_root_relative, paired_difference,
                                        top1_accuracy, top_k_accuracy)
from ghtt_core.inference import GHTTInference
from ghtt_core.taxonomy import Taxonomy

FPS = 30
PROTOCOL_FRAMES = {"1s": FPS, "2s": 2 * FPS}
REPORTED_FRAMES = (1, 2, 4, 8, 16, 24, 32, 48, 64, 80, 96)
TOP_K = 5
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
                       batch_size: int = 64, long_actions: LongActions | None = None, top_k: int = TOP_K,
                       clip_offsets: tuple = DEFAULT_OFFSETS) -> dict:
    """Top-1 and top-k with and without the object token over the actions whose class the model knows.

    long_actions: the actions longer than the A-Block's capacity, uncut; given, they are scored by the mean over
    sliding windows (ghtt_core.evaluate.long_actions) instead of their first clips (`sequences` cuts them).
    clip_offsets: more than one adds `*_clip_offsets` rows, the class scores averaged over these clip alignments
    (ghtt_core.evaluate.clip_offsets); the plain rows stay the authors' single alignment."""
    known = (sequences.labels >= 0).nonzero().flatten().tolist()
    outside = len(sequences) - len(known)
    if not known:
        return {"actions": 0, "actions_outside_taxonomy": outside,
                "note": "no held-out action has a class of the model's taxonomy: recognition not scored"}
    sequences = sequences.select(known)
    taxonomy = inference.model.taxonomy
    nouns = [taxonomy.actions[label].noun for label in sequences.labels.tolist()]
    scores = _class_scores(inference, sequences, nouns, batch_size)
    if long_actions is not None:
        _rescore_long_actions(inference, scores, long_actions, known, nouns)
    if len(clip_offsets) > 1:
        names = list(scores)

        def both_scores(shifted):  # (2, N, C): motion only, with object
            shifted_scores = _class_scores(inference, shifted, nouns, batch_size)
            return torch.stack([shifted_scores[name] for name in names])

        averaged = averaged_scores(both_scores, sequences, clip_offsets)
        scores.update({f"{name}_clip_offsets": matrix for name, matrix in zip(names, averaged)})
    labels = sequences.labels
    k = min(top_k, len(taxonomy.actions))
    majority = float(torch.bincount(labels).max()) / len(labels)
    same_object = [sum(a.noun == noun for a in taxonomy.actions) for noun in nouns]
    report = {"actions": len(labels), "actions_outside_taxonomy": outside, "classes": len(taxonomy.actions)}
    for name, matrix in scores.items():
        ranked = matrix.topk(k, dim=1).indices
        report[f"top1_{name}"] = top1_accuracy(ranked[:, 0], labels)
        report[f"top{top_k}_{name}"] = top_k_accuracy(ranked, labels)
    report.update({
        "clip_offsets": list(clip_offsets),
        "chance_uniform": 1.0 / len(taxonomy.actions),
        "chance_majority": majority,
        # knowing the object leaves this many candidate actions: guessing among them
        "chance_given_object": float(sum(1.0 / n for n in same_object) / len(same_object)),
        "objects": len(taxonomy.objects),
    })
    return report


def _class_scores(inference, sequences: protocols.RecognitionSequences, nouns: list, batch_size: int) -> dict:
    """{"motion_only", "with_object"}: (N, C) class scores without and with each action's object token."""
    scores = {"motion_only": [], "with_object": []}
    for first in range(0, len(sequences), batch_size):
        batch = sequences.select(slice(first, first + batch_size))
        observation = inference.encode_observation(batch.input_joints, batch.input_presence, batch.frame_valid)
        clips = batch.frame_valid.shape[1]
        names = [[nouns[first + i]] * clips for i in range(len(batch))]
        scores["motion_only"].append(protocols.class_scores(inference, observation))
        scores["with_object"].append(protocols.class_scores(inference, observation, object_names=names))
    return {name: torch.cat(parts) for name, parts in scores.items()}


def _rescore_long_actions(inference, scores: dict, long_actions: LongActions, known: list, nouns: list):
    """Replace the (N, C) score rows of the long actions among the scored ones (`known`: their rows in the
    recognition set) by the mean over their sliding windows, with and without the object token."""
    position = {row: index for index, row in enumerate(known)}
    long_known = [i for i, row in enumerate(long_actions.rows) if row in position]
    if not long_known:
        return
    rows = [position[long_actions.rows[i]] for i in long_known]
    uncut = long_actions.clips.select(long_known)
    capacity = inference.action_block.cfg.max_clips
    scores["motion_only"][rows] = sliding_window_scores(inference, uncut, capacity)
    scores["with_object"][rows] = sliding_window_scores(inference, uncut, capacity, nouns=[nouns[row] for row in rows])


def prediction_report(inference: GHTTInference, sequences, num_random_samples: int, max_windows: int,
                      seed: int, count_from: str = "window_start", progress: bool = False) -> dict:
    """Per protocol ("1s", "2s": the paper's, observed ground truth; "1s_estimated_input", "2s_estimated_input": the
    observation is the estimated poses, as on a robot, when every sequence has them) a row per predictor.
    count_from: where the protocol's 1 s / 2 s are counted from (protocols.prediction_windows)."""
    report = {}
    taxonomy = inference.model.taxonomy
    observed_inputs = ["truth"]
    if all(sequence.estimated_joints is not None for sequence in sequences):
        observed_inputs.append("estimated")
    for observed_input in observed_inputs:
        for protocol, min_frames in PROTOCOL_FRAMES.items():
            name = protocol if observed_input == "truth" else f"{protocol}_estimated_input"
            report[name] = _prediction_rows(inference, sequences, taxonomy, min_frames, observed_input,
                                            num_random_samples, max_windows, seed, count_from,
                                            f"{name}: " if progress else None)
    return report


def protocol_rule(count_from: str) -> str:
    """The prediction protocol's window rule in words, for the report."""
    counted = ("frames from the window start (the 16 observed frames included)" if count_from == "window_start"
               else "frames after the 16 observed frames")
    return (f"windows start every {protocols.WINDOW_STRIDE} frames from each action's start; kept when at least "
            f"{FPS} (1s) / {2 * FPS} (2s) {counted} remain before the action end; the first "
            f"{protocols.OBSERVED_FRAMES} frames are observed, the future is scored up to the action end (at most "
            f"{protocols.FUTURE_FRAMES} frames)")


def _prediction_rows(inference, sequences, taxonomy, min_frames, observed_input, num_random_samples, max_windows,
                     seed, count_from, progress_prefix) -> dict:
    windows = protocols.prediction_windows(sequences, taxonomy, min_frames, observed_input=observed_input,
                                           count_from=count_from)
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
        label = None if progress_prefix is None else progress_prefix + predictor.name
        record = protocols.evaluate_prediction(predictor, windows, num_random_samples=num_random_samples, seed=seed,
                                               progress_label=label)
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
                        seed: int, max_clips: int, clip_offsets: tuple = DEFAULT_OFFSETS) -> dict:
    """The BiGRU recognition baseline trained on train_sequences' actions, top-1 on `actions` (known classes), also
    with its class scores averaged over the clip offsets as G-HTT's `*_clip_offsets` rows (the same cuts of the
    actions; the BiGRU resamples each to a fixed length)."""
    started = time.perf_counter()
    torch.manual_seed(seed)
    model = GRUClassifier(len(taxonomy.actions))
    train = protocols.recognition_sequences(train_sequences, taxonomy, max_clips)
    losses = train_gru_baseline(model, train, FitOptions(steps=steps, batch_size=32, learning_rate=2e-3, seed=seed))
    known = actions.select((actions.labels >= 0).nonzero().flatten().tolist())
    recognizer = GRURecognizer(model)
    predicted = protocols.recognize_all(recognizer, known)
    averaged = protocols.recognize_all(OffsetAveragedRecognizer(recognizer, clip_offsets), known)
    return {"top1": top1_accuracy(predicted, known.labels),
            "top1_clip_offsets": top1_accuracy(averaged, known.labels), "clip_offsets": list(clip_offsets),
            "actions": len(known), "train_actions": len(train),
            "steps": steps, "final_loss": sum(losses[-20:]) / len(losses[-20:]),
            "seconds": round(time.perf_counter() - started, 1)}


def refinement_input(sequences) -> str:
    """What the refinement rows' input is: the estimated poses where the data has them, else the ground truth."""
    total = sum(len(sequence.actions) for sequence in sequences)
    estimated = sum(len(sequence.actions) for sequence in sequences if sequence.estimated_joints is not None)
    if estimated == total:
        return "estimated poses"
    if estimated == 0:
        return ("ground truth: the data has no estimated poses, so the input rows are 0 by construction and the "
                "refined rows say how far refinement moves clean poses")
    return f"estimated poses for {estimated} of the {total} actions, the ground truth for the others"


def long_action_note(actions: protocols.RecognitionSequences, lengths: torch.Tensor, capacity: int,
                     mode: str) -> dict:
    """How many scored actions are longer than the A-Block's capacity and how they were scored."""
    frames = capacity * protocols.CLIP_FRAMES
    handled = (f"their first {frames} frames ({capacity} clips) only" if mode == "first" else
               f"the mean class scores over windows of {capacity} clips every {max(1, capacity // 2)} clips")
    return {"actions_longer_than_capacity": int((lengths[actions.labels >= 0] > frames).sum()),
            "capacity_frames": frames, "long_actions": mode, "long_actions_scored_by": handled}


def heldout_report(checkpoint, sequences, num_random_samples: int = 5, max_windows: int = 400,
                   seed: int = 0, gru_train_sequences=None, gru_steps: int = 0, count_from: str = "window_start",
                   long_actions: str = "first", progress: bool = False,
                   clip_offsets: tuple = DEFAULT_OFFSETS) -> dict:
    """checkpoint: a loaded ModelCheckpoint; sequences: held-out HandSequences (with estimated poses if any).
    gru_train_sequences / gru_steps > 0: also train and score the BiGRU recognition baseline. count_from: the
    prediction protocol's window rule (protocols.prediction_windows). long_actions: how actions longer than the
    A-Block's capacity are recognised (ghtt_core.evaluate.long_actions.LONG_ACTION_MODES). progress: tqdm bars.
    clip_offsets: recognition also averaged over these clip alignments (ghtt_core.evaluate.clip_offsets)."""
    if long_actions not in LONG_ACTION_MODES:
        raise ValueError(f"long_actions must be one of {LONG_ACTION_MODES}, got {long_actions!r}")
    started = time.perf_counter()
    inference = GHTTInference(checkpoint)
    capacity = checkpoint.config.action.max_clips
    # a pose checkpoint has no taxonomy; the actions then only delimit the refinement clips
    taxonomy = checkpoint.taxonomy if checkpoint.taxonomy.actions else Taxonomy.from_segments(
        segment for sequence in sequences for segment in sequence.actions)
    actions = protocols.recognition_sequences(sequences, taxonomy, max_clips=capacity)
    report = {"model_id": checkpoint.model_id, "kind": checkpoint.kind, "sequences": len(sequences),
              "refinement_input": refinement_input(sequences),
              "refinement_mm": refinement_report(inference, actions)}
    if checkpoint.action_block is not None:
        uncut = find_long_actions(sequences, taxonomy, capacity) if long_actions == "sliding" else None
        report["recognition"] = recognition_report(inference, actions, long_actions=uncut, clip_offsets=clip_offsets)
        lengths = torch.tensor([segment.end - segment.start for sequence in sequences for segment in sequence.actions])
        report["recognition"].update(long_action_note(actions, lengths, capacity, long_actions))
        report["prediction_protocol"] = protocol_rule(count_from)
        report["prediction_mm"] = prediction_report(inference, sequences, num_random_samples, max_windows, seed,
                                                    count_from, progress)
    if gru_steps > 0 and gru_train_sequences:
        report["recognition_baseline_bigru"] = gru_baseline_report(gru_train_sequences, actions, taxonomy, gru_steps,
                                                                   seed, capacity, clip_offsets)
    report["seconds"] = round(time.perf_counter() - started, 1)
    return report
