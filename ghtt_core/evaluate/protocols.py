"""The paper's evaluation protocols (method-notes 5.1, 9.5, 9.6) and a common predictor interface.

Recognition (Table 1): whole trimmed actions, cut into 16-frame clips from the action start (at most `max_clips`; a
longer action keeps its first max_clips clips). The input is the estimated pose where the data has one (else the
ground truth); refinement is scored against the ground truth.

Prediction (Tables 2-4): windows start every 16 frames from each action's start and are kept when at least
`min_remaining_frames` frames (1 s or 2 s) remain to the action end, counted from the window start (count_from
"window_start", the authors' code: the 16 observed frames count) or from the end of the observation ("observation_end":
a full 1 s / 2 s of future, as papers that require it count). The first 16 frames are
observed (ground truth; or the estimated poses, as on a robot, with observed_input="estimated"); the following frames
up to the action end, at most 96, are the future; frames past the action end are padded (repeating the last real
frame) and never count. Every predictor returns S samples per window in the
layout of `ghtt_core.inference.MotionForecast`; sample 0 is the deterministic pass, samples 1..S-1 are random draws.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch

from ghtt_core.evaluate import baselines
from ghtt_core.evaluate.metrics import apd, mpjpe_pa, mpjpe_ra, sample_errors
from ghtt_core.flattened import FlattenedInputs, FlattenedModel
from ghtt_core.inference import DEFAULT_END_TOLERANCE_FRAMES, DEFAULT_TEMPERATURE, GHTTInference, MotionForecast
from ghtt_core.representation import encode_features, placement_from_features
from ghtt_core.taxonomy import Taxonomy

CLIP_FRAMES = 16
OBSERVED_FRAMES = 16
FUTURE_FRAMES = 96
WINDOW_STRIDE = 16


@dataclass
class PredictionWindows:
    """W prediction windows. observed_* (W, 16, ...), future_* (W, F, ...): joints metres, presence bool (False in
    padded frames), future_valid (W, F) real future frames. remaining_frames (W,): frames from the window start to the
    action end. start_in_action (W,): frames from the action start to the window start. labels / nouns (W,): indices
    of the action and its object in the taxonomy. views: the camera view of each window."""

    observed_joints: torch.Tensor
    observed_presence: torch.Tensor
    future_joints: torch.Tensor
    future_presence: torch.Tensor
    future_valid: torch.Tensor
    remaining_frames: torch.Tensor
    start_in_action: torch.Tensor
    labels: torch.Tensor  # -1: an action outside the taxonomy (another dataset's classes)
    nouns: torch.Tensor  # -1: an object outside the taxonomy (predictors then use the unknown-object token)
    views: list

    def __len__(self) -> int:
        return len(self.labels)

    def select(self, index) -> "PredictionWindows":
        """The windows at `index` (a slice, a bool mask or integer indices)."""
        if isinstance(index, torch.Tensor) and index.dtype == torch.bool:
            index = index.nonzero().flatten()
        positions = range(len(self))[index] if isinstance(index, slice) else [int(i) for i in index]
        tensors = {field.name: getattr(self, field.name)[index] for field in dataclasses.fields(self)
                   if field.name != "views"}
        return PredictionWindows(**tensors, views=[self.views[i] for i in positions])


def _padded_frames(start: int, count: int, end: int):
    """Frame indices start..start+count-1 clamped to end-1, and which of them are real (< end)."""
    frames = start + np.arange(count)
    return np.minimum(frames, end - 1), frames < end


OBSERVED_INPUTS = ("truth", "estimated")
COUNT_FROM = ("window_start", "observation_end")  # where a window's minimum remaining frames are counted from


def known_index(index, name: str) -> int:
    """A taxonomy look-up (taxonomy.action_index / object_index) that gives -1 for a name outside the taxonomy, so
    that a model can be scored on another dataset's recordings (prediction and refinement need no class)."""
    try:
        return index(name)
    except ValueError:
        return -1


def prediction_windows(sequences, taxonomy: Taxonomy, min_remaining_frames: int, stride: int = WINDOW_STRIDE,
                       observed_frames: int = OBSERVED_FRAMES, future_frames: int = FUTURE_FRAMES,
                       observed_input: str = "truth", count_from: str = "window_start") -> PredictionWindows:
    """Windows of HandSequences under the prediction protocol (module docstring).

    observed_input: "truth" (the paper's protocol) or "estimated": the observed frames are the sequence's estimated
    poses (what a robot's predictor sees; a sequence without estimates is an error), the future stays the ground
    truth. count_from: "window_start": a window starting at frame s of an action ending at e is kept when
    e - s >= max(min_remaining_frames, observed_frames + 1); "observation_end": when
    e - (s + observed_frames) >= min_remaining_frames.
    """
    if observed_input not in OBSERVED_INPUTS:
        raise ValueError(f"observed_input must be one of {OBSERVED_INPUTS}, got {observed_input!r}")
    if count_from not in COUNT_FROM:
        raise ValueError(f"count_from must be one of {COUNT_FROM}, got {count_from!r}")
    min_length = (max(min_remaining_frames, observed_frames + 1) if count_from == "window_start"
                  else observed_frames + min_remaining_frames)
    parts = {name: [] for name in ("oj", "op", "fj", "fp", "fv", "remaining", "start", "label", "noun")}
    views = []
    for sequence in sequences:
        observed_joints, observed_presence = sequence.joints, sequence.presence
        if observed_input == "estimated":
            if sequence.estimated_joints is None:
                raise ValueError(f"sequence {sequence.name!r} has no estimated poses to observe")
            observed_joints, observed_presence = sequence.estimated_joints, sequence.estimated_presence
        for segment in sequence.actions:
            for start in range(segment.start, segment.end - min_length + 1, stride):
                observed = np.arange(start, start + observed_frames)
                future, valid = _padded_frames(start + observed_frames, future_frames, segment.end)
                parts["oj"].append(observed_joints[observed])
                parts["op"].append(observed_presence[observed])
                parts["fj"].append(sequence.joints[future])
                parts["fp"].append(sequence.presence[future] & valid[:, None])
                parts["fv"].append(valid)
                parts["remaining"].append(segment.end - start)
                parts["start"].append(start - segment.start)
                parts["label"].append(known_index(taxonomy.action_index, segment.label))
                parts["noun"].append(known_index(taxonomy.object_index, segment.noun))
                views.append(sequence.view)
    if not views:
        raise ValueError(f"no action leaves {min_length} frames for a prediction window")
    stacked = {name: torch.from_numpy(np.stack(values)) for name, values in parts.items()}
    return PredictionWindows(stacked["oj"], stacked["op"], stacked["fj"], stacked["fp"], stacked["fv"],
                             stacked["remaining"].long(), stacked["start"].long(), stacked["label"].long(),
                             stacked["noun"].long(), views)


@dataclass
class RecognitionSequences:
    """N whole trimmed actions as K clips of 16 frames: input_joints / truth_joints (N, K, 16, 2, 21, 3) metres,
    input_presence / truth_presence (N, K, 16, 2), frame_valid (N, K, 16) (False = padding after the action end),
    labels (N,) (-1 = outside the taxonomy), views. The input is the estimated pose where the data has one, else the
    ground truth."""

    input_joints: torch.Tensor
    input_presence: torch.Tensor
    truth_joints: torch.Tensor
    truth_presence: torch.Tensor
    frame_valid: torch.Tensor
    labels: torch.Tensor
    views: list

    def __len__(self) -> int:
        return len(self.labels)

    def select(self, index) -> "RecognitionSequences":
        positions = range(len(self))[index] if isinstance(index, slice) else [int(i) for i in index]
        tensors = {field.name: getattr(self, field.name)[index] for field in dataclasses.fields(self)
                   if field.name != "views"}
        return RecognitionSequences(**tensors, views=[self.views[i] for i in positions])


def recognition_sequences(sequences, taxonomy: Taxonomy, max_clips: int = 16,
                          clip_frames: int = CLIP_FRAMES) -> RecognitionSequences:
    """Every action of HandSequences, whole (up to max_clips clips), padded to the longest one."""
    items = [(sequence, segment) for sequence in sequences for segment in sequence.actions]
    if not items:
        raise ValueError("no action segments in the sequences")
    num_clips = min(max_clips, max(-(-(segment.end - segment.start) // clip_frames) for _, segment in items))
    length = num_clips * clip_frames
    parts = {name: [] for name in ("ij", "ip", "tj", "tp", "valid")}
    for sequence, segment in items:
        frames, valid = _padded_frames(segment.start, length, segment.end)
        estimated = sequence.estimated_joints is not None
        parts["ij"].append((sequence.estimated_joints if estimated else sequence.joints)[frames])
        parts["ip"].append((sequence.estimated_presence if estimated else sequence.presence)[frames] & valid[:, None])
        parts["tj"].append(sequence.joints[frames])
        parts["tp"].append(sequence.presence[frames] & valid[:, None])
        parts["valid"].append(valid)
    clips = (len(items), num_clips, clip_frames)
    stacked = {name: torch.from_numpy(np.stack(values)) for name, values in parts.items()}
    return RecognitionSequences(
        input_joints=stacked["ij"].float().reshape(*clips, 2, 21, 3),
        input_presence=stacked["ip"].reshape(*clips, 2),
        truth_joints=stacked["tj"].reshape(*clips, 2, 21, 3),
        truth_presence=stacked["tp"].reshape(*clips, 2),
        frame_valid=stacked["valid"].reshape(clips),
        labels=torch.tensor([known_index(taxonomy.action_index, segment.label) for _, segment in items]),
        views=[sequence.view for sequence, _ in items],
    )


# ---- predictors ----------------------------------------------------------------------------------------------------


class Predictor(Protocol):
    """predict(windows, num_samples, generator) -> MotionForecast with joints (W, S, F, 2, 21, 3) metres and
    hand_present (W, 2). Stochastic predictors return num_samples samples (sample 0 = deterministic); deterministic
    ones return one."""

    name: str
    stochastic: bool

    def predict(self, windows: PredictionWindows, num_samples: int, generator: torch.Generator) -> MotionForecast:
        ...


@dataclass
class ZeroVelocityPredictor:
    name: str = "zero velocity"
    stochastic: bool = False

    def predict(self, windows, num_samples, generator):
        return baselines.zero_velocity(windows.observed_joints, windows.observed_presence,
                                       horizon_frames=windows.future_joints.shape[1])


@dataclass
class ConstantVelocityPredictor:
    damping: float = 1.0
    name: str = "constant velocity"
    stochastic: bool = False

    def predict(self, windows, num_samples, generator):
        return baselines.constant_velocity(windows.observed_joints, windows.observed_presence,
                                           horizon_frames=windows.future_joints.shape[1], damping=self.damping)


def _calibration_options(calibrated: bool) -> dict:
    """Calibrated: the checkpoint's calibration and temperature; raw: none, and the authors' temperature 5."""
    return {"calibrated": True} if calibrated else {"calibrated": False, "temperature": DEFAULT_TEMPERATURE}


def _one_clip_observation(inference: GHTTInference, windows: PredictionWindows):
    return inference.encode_observation(windows.observed_joints.unsqueeze(1), windows.observed_presence.unsqueeze(1))


@dataclass
class PoseOnlyPredictor:
    """G-HTT P.a: the P-Block alone, autoregressive (method-notes 5.2). calibrated: with the checkpoint's forecast
    calibration (if it has one) and its calibrated temperature; False: the raw model at the authors' temperature."""

    inference: GHTTInference
    name: str = "G-HTT P.a"
    stochastic: bool = True
    calibrated: bool = True

    def predict(self, windows, num_samples, generator):
        return self.inference.predict_pose_only(_one_clip_observation(self.inference, windows), num_samples,
                                                windows.future_joints.shape[1], generator=generator,
                                                **_calibration_options(self.calibrated))


@dataclass
class ActionGuidedPredictor:
    """G-HTT P.b (method-notes 5.3) with the ground-truth object token and phase. with_true_action: the A-Dec is
    driven by the ground-truth action's projected text embedding (action-controlled generation) instead of mu_A.
    calibrated: as for PoseOnlyPredictor."""

    inference: GHTTInference
    with_true_action: bool = False
    name: str = "G-HTT P.b"
    stochastic: bool = True
    calibrated: bool = True

    def predict(self, windows, num_samples, generator):
        observation = _one_clip_observation(self.inference, windows)
        objects = self.inference.model.taxonomy.objects
        options = dict(object_names=[[objects[noun] if noun >= 0 else ""] for noun in windows.nouns.tolist()],
                       phase=(windows.start_in_action // CLIP_FRAMES).unsqueeze(1), num_samples=num_samples,
                       horizon_frames=windows.future_joints.shape[1], generator=generator,
                       **_calibration_options(self.calibrated))
        if not self.with_true_action:
            return self.inference.predict_action_guided(observation, **options)
        return _per_label(self.inference, observation, windows.labels, options)


@dataclass
class TrueMidlevelPredictor:
    """Diagnostic upper bound of P.b for the A-Block: the P-Dec decodes the P-Enc mu of the true future clips
    0..C-2 (ground truth the predictor should not have) in place of the A-Dec's predictions, after the last observed
    clip's mid-level. What remains is the error of the frozen P-Block's decoding and integration."""

    inference: GHTTInference
    name: str = "P-Dec of true future mid-levels"
    stochastic: bool = False

    def predict(self, windows, num_samples, generator):
        observation = _one_clip_observation(self.inference, windows)
        clip, horizon = self.inference.clip_len, windows.future_joints.shape[1]
        true_clips = -(-horizon // clip) - 1  # mid-level c decodes into future clip c + 1
        frames = true_clips * clip

        def clips(x):
            return x[:, :frames].reshape(len(windows), true_clips, clip, *x.shape[2:])

        mids = observation.mu[:, -1:]
        if true_clips:
            truth = self.inference.encode_observation(clips(windows.future_joints), clips(windows.future_presence),
                                                      clips(windows.future_valid))
            mids = torch.cat([mids, truth.mu], dim=1)
        return self.inference.decode_midlevels(observation, mids.unsqueeze(1), horizon)  # (B, 1, C, d) mid-levels


def _per_label(inference: GHTTInference, observation, labels, options) -> MotionForecast:
    """Action-controlled generation, one call per ground-truth label (the call takes one label for a batch)."""
    joints, present = None, None
    for label in labels.unique().tolist():
        rows = (labels == label).nonzero().flatten().to(observation.mu.device)
        part = inference.generate_for_action(
            _rows_of_observation(observation, rows), inference.model.taxonomy.actions[label].label,
            **{**options, "object_names": [options["object_names"][i] for i in rows.tolist()],
               "phase": options["phase"][rows.cpu()]})
        if joints is None:
            joints = part.joints.new_full((len(labels), *part.joints.shape[1:]), float("nan"))
            present = part.hand_present.new_zeros((len(labels), 2))
        joints[rows], present[rows] = part.joints, part.hand_present
    return MotionForecast(joints, present)


def _rows_of_observation(observation, rows):
    """The EncodedObservation of the items at `rows` (every field is batched on dim 0)."""
    def take(value):
        if dataclasses.is_dataclass(value):
            return type(value)(**{field.name: take(getattr(value, field.name)) for field in dataclasses.fields(value)})
        return value[rows]
    return take(observation)


def flattened_window_inputs(windows: PredictionWindows, features, feature_mask, object_embeddings, object_known):
    """FlattenedInputs of the observed frames (features (W, 16, 153)) and the future phases (W, F): phases count
    frames since the action start; object_known (W,) picks the ground-truth object token or the unknown one."""
    observed = features.shape[1]
    phase = windows.start_in_action[:, None] + torch.arange(observed)
    future_phase = windows.start_in_action[:, None] + observed + torch.arange(windows.future_joints.shape[1])
    inputs = FlattenedInputs(features, feature_mask, torch.ones(phase.shape, dtype=torch.bool), phase,
                             object_embeddings[windows.nouns].unsqueeze(1).expand(-1, observed, -1),
                             object_known.unsqueeze(1).expand(-1, observed))
    return inputs, future_phase


@dataclass
class FlattenedPredictor:
    """The flattened single-VAE ablation (method-notes 11.2), ground-truth object token, samples with std x
    temperature (10 = the authors' "more noisy" setting)."""

    model: FlattenedModel
    object_embeddings: torch.Tensor  # (O, text_dim) in taxonomy order
    temperature: float
    name: str = "flattened"
    stochastic: bool = True

    def predict(self, windows, num_samples, generator):
        encoded = encode_features(windows.observed_joints.double(), windows.observed_presence)
        observed = encoded.features.shape[1]
        inputs, future_phase = flattened_window_inputs(windows, encoded.features.float(), encoded.feature_mask,
                                                       self.object_embeddings, torch.ones(len(windows), dtype=bool))
        self.model.eval()
        features = self.model.predict(inputs, future_phase, num_samples, self.temperature, generator)
        placement = placement_from_features(encoded)
        present = placement.has_base & (placement.base_index >= observed - 1 - DEFAULT_END_TOLERANCE_FRAMES)
        return GHTTInference._decode_forecast(placement, present, features.unsqueeze(2), features.shape[2])


# ---- running a predictor over windows ---------------------------------------------------------------------------


@dataclass
class PredictionRecord:
    """Per-window results of one predictor (mm, (W, 2) per hand; NaN where a hand does not count).

    deterministic_ade / _fde: sample 0. ade_mean / ade_best / fde_mean / fde_best / apd: over the random samples
    1..S-1 (NaN for deterministic predictors, whose single sample is used for the ADE/FDE columns instead, and
    without random samples; apd also NaN with a single one).
    frame_errors (W, F, 2): the deterministic per-frame error. fid_features (W, S', d) of [observation + each random
    sample] (the deterministic sample for deterministic predictors), or None without an FID net.
    """

    name: str
    num_random_samples: int
    deterministic_ade: torch.Tensor
    deterministic_fde: torch.Tensor
    ade_mean: torch.Tensor
    ade_best: torch.Tensor
    fde_mean: torch.Tensor
    fde_best: torch.Tensor
    apd: torch.Tensor
    frame_errors: torch.Tensor
    fid_features: torch.Tensor | None

    def select(self, index) -> "PredictionRecord":
        return dataclasses.replace(self, **{
            field.name: getattr(self, field.name)[index] for field in dataclasses.fields(self)
            if isinstance(getattr(self, field.name), torch.Tensor)})


def sequence_with_future(windows: PredictionWindows, future_joints, future_presence):
    """[observation, future] as one sequence: joints (W, [S,] 16 + F, 2, 21, 3), presence, frame_valid."""
    observed_joints, observed_presence = windows.observed_joints, windows.observed_presence
    valid = torch.cat([torch.ones(observed_presence.shape[:-1], dtype=torch.bool), windows.future_valid], dim=1)
    if future_joints.dim() == 6:  # samples
        samples = future_joints.shape[1]
        observed_joints = observed_joints.unsqueeze(1).expand(-1, samples, -1, -1, -1, -1)
        observed_presence = observed_presence.unsqueeze(1).expand(-1, samples, -1, -1)
        future_presence = future_presence.unsqueeze(1).expand(-1, samples, -1, -1)
        valid = valid.unsqueeze(1).expand(-1, samples, -1)
    joints = torch.cat([observed_joints.to(future_joints.dtype), future_joints], dim=-4)
    return joints, torch.cat([observed_presence, future_presence], dim=-2), valid


def _fid_features(fid_net, windows: PredictionWindows, samples, counted):
    """samples (W, S, F, 2, 21, 3), counted (W, F, 2) -> (W, S, d)."""
    joints, presence, valid = sequence_with_future(windows, samples, counted)
    joints = torch.nan_to_num(joints)  # hands that are not predicted are masked by presence
    features = fid_net.extract_features(joints.flatten(0, 1), presence.flatten(0, 1), valid.flatten(0, 1))
    return features.unflatten(0, samples.shape[:2]).cpu()


def evaluate_prediction(predictor: Predictor, windows: PredictionWindows, num_random_samples: int = 20,
                        batch_size: int = 64, seed: int = 0, fid_net=None,
                        progress_label: str | None = None) -> PredictionRecord:
    """Run `predictor` over the windows in batches: the deterministic pass plus num_random_samples draws.
    progress_label: show a tqdm bar (stderr) over the windows with this label (None: no bar)."""
    from tqdm import tqdm

    generator = torch.Generator().manual_seed(seed)
    num_samples = num_random_samples + 1 if predictor.stochastic else 1
    parts = []
    bar = tqdm(total=len(windows), desc=progress_label, unit="window", disable=progress_label is None,
               mininterval=5.0, dynamic_ncols=True)
    for first in range(0, len(windows), batch_size):
        batch = windows.select(slice(first, first + batch_size))
        forecast = predictor.predict(batch, num_samples, generator)
        samples = forecast.joints.cpu().double()
        counted = batch.future_presence & forecast.hand_present.cpu()[:, None, :]
        # Every ADE / FDE variant below is a reduction of these per-sample, per-frame errors, computed once.
        errors = sample_errors(samples, batch.future_joints.double(), counted, batch.future_valid)
        deterministic = errors.samples(slice(0, 1))
        random_samples = samples[:, 1:] if predictor.stochastic else samples
        random_errors = errors.samples(slice(1, None)) if predictor.stochastic else errors
        nan = torch.full((len(batch), 2), float("nan"), dtype=torch.float64)
        drawn = predictor.stochastic and num_random_samples >= 1
        parts.append(dict(
            deterministic_ade=deterministic.ade().values,
            deterministic_fde=deterministic.fde().values,
            ade_mean=random_errors.ade("mean").values if drawn else nan,
            ade_best=random_errors.ade("best").values if drawn else nan,
            fde_mean=random_errors.fde("mean").values if drawn else nan,
            fde_best=random_errors.fde("best").values if drawn else nan,
            # a spread needs a pair of random samples
            apd=apd(random_samples, counted, batch.future_valid).values if drawn and num_random_samples >= 2 else nan,
            frame_errors=errors.by_frame(0),
            fid_features=None if fid_net is None else _fid_features(fid_net, batch, random_samples.float(), counted),
        ))
        bar.update(len(batch))
    bar.close()
    merged = {name: None if parts[0][name] is None else torch.cat([part[name] for part in parts])
              for name in parts[0]}
    return PredictionRecord(name=predictor.name, num_random_samples=num_random_samples if predictor.stochastic else 0,
                            **merged)


# ---- recognition and refinement ------------------------------------------------------------------------------------


class Recognizer(Protocol):
    """recognize(sequences) -> (N,) predicted action indices (taxonomy order), from the input poses alone."""

    name: str

    def recognize(self, sequences: RecognitionSequences) -> torch.Tensor:
        ...


def class_scores(inference, observation, object_names=None, phase=None) -> torch.Tensor:
    """(B, C) softmax scores of every class of the taxonomy, in taxonomy order (GHTTInference.recognize, all k)."""
    num_classes = len(inference.model.taxonomy.actions)
    ranked = inference.recognize(observation, object_names=object_names, phase=phase, top_k=num_classes)
    return torch.zeros_like(ranked.scores).scatter_(1, ranked.indices, ranked.scores).cpu()


def _input_observation(inference: GHTTInference, sequences: RecognitionSequences):
    return inference.encode_observation(sequences.input_joints, sequences.input_presence, sequences.frame_valid)


@dataclass
class GHTTRecognizer:
    """P-Enc per clip -> A-Enc -> nearest projected label (method-notes 5.1); no object token (unknown object)."""

    inference: GHTTInference
    name: str = "G-HTT"

    def recognize(self, sequences):
        observation = _input_observation(self.inference, sequences)
        return self.inference.recognize(observation, top_k=1).indices[:, 0].cpu()

    def scores(self, sequences) -> torch.Tensor:
        return class_scores(self.inference, _input_observation(self.inference, sequences))


@dataclass
class FlattenedRecognizer:
    """The flattened model's latent -> nearest projected label; all frames of the action, no object token."""

    model: FlattenedModel
    action_embeddings: torch.Tensor  # (C, text_dim)
    name: str = "flattened"

    def recognize(self, sequences):
        joints = sequences.input_joints.flatten(1, 2).double()
        valid = sequences.frame_valid.flatten(1, 2)
        encoded = encode_features(joints, sequences.input_presence.flatten(1, 2), valid)
        phase = torch.arange(valid.shape[1]).expand(len(valid), -1)
        inputs = FlattenedInputs(encoded.features.float(), encoded.feature_mask, valid, phase)
        self.model.eval()
        return self.model.recognize(inputs, self.action_embeddings, k=1)[1][:, 0]


def recognize_all(recognizer: Recognizer, sequences: RecognitionSequences, batch_size: int = 64) -> torch.Tensor:
    return torch.cat([recognizer.recognize(sequences.select(slice(first, first + batch_size)))
                      for first in range(0, len(sequences), batch_size)])


def refinement_errors(inference: GHTTInference, sequences: RecognitionSequences,
                      batch_size: int = 64) -> dict[str, torch.Tensor]:
    """Per-frame MPJPE-RA / MPJPE-PA (mm, (N, K, 16, 2)) of the input poses and of the G-HTT refinement against the
    ground truth, counted where the input and the ground truth both have the hand."""
    parts = []
    for first in range(0, len(sequences), batch_size):
        batch = sequences.select(slice(first, first + batch_size))
        refined = inference.refine_observation(_input_observation(inference, batch)).joints.cpu().double()
        counted = batch.input_presence & batch.truth_presence
        truth, estimated = batch.truth_joints.double(), batch.input_joints.double()
        parts.append({
            "input_ra": mpjpe_ra(estimated, truth, counted, batch.frame_valid).values,
            "input_pa": mpjpe_pa(estimated, truth, counted, batch.frame_valid).values,
            "refined_ra": mpjpe_ra(refined, truth, counted, batch.frame_valid).values,
            "refined_pa": mpjpe_pa(refined, truth, counted, batch.frame_valid).values,
        })
    return {name: torch.cat([part[name] for part in parts]) for name in parts[0]}
