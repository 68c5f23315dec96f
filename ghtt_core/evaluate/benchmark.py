"""`ghtt benchmark`: train what is missing, evaluate G-HTT and every baseline under the paper's protocols.

Data: a ghtt dataset (docs/dataset.md). Cross-view protocol when the dataset defines view splits: models train on
the `train` split in the train views and are evaluated on the `test` split in the test views (the synthetic benchmark:
train on front/left, test on right/top, unseen subjects). Every model gets the same training data. Results are
returned as one plain dict (written to results.json by ghtt_core.evaluate.report).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ghtt_core.checkpoint import load_checkpoint
from ghtt_core.config import ModelConfig, TransformerConfig, preset
from ghtt_core.data.storage import StoredDataset
from ghtt_core.data.windows import PoseWindowDataset
from ghtt_core.evaluate import protocols
from ghtt_core.evaluate.clip_offsets import OffsetAveragedRecognizer
from ghtt_core.evaluate.fid_net import FIDNet, FIDTrainingOptions, action_sequences, fid_preset, train_fid_net
from ghtt_core.evaluate.fitting import FitOptions
from ghtt_core.evaluate.gru_baseline import GRUClassifier, GRURecognizer, train_gru_baseline
from ghtt_core.evaluate.flattened_training import train_flattened
from ghtt_core.evaluate.htt_baseline import HTTBaseline, HTTBaselineConfig, HTTRecognizer, train_htt_baseline
from ghtt_core.evaluate.metrics import confusion_matrix, fid, top1_accuracy
from ghtt_core.flattened import FlattenedModel
from ghtt_core.inference import GHTTInference
from ghtt_core.text import build_text_encoder
from ghtt_core.train.action import ActionTrainingOptions, encode_taxonomy, train_action
from ghtt_core.train.loop import LoopOptions
from ghtt_core.train.pose import PoseTrainingOptions, train_pose

FPS = 30
PREDICTION_PROTOCOLS = {"1s": 1 * FPS, "2s": 2 * FPS}  # minimum frames from the window start to the action end
FLATTENED_TEMPERATURES = (5.0, 10.0)  # Table 4: the G-HTT sampling std factor and the authors' "more noisy" one
TRAINING_WINDOW_STRIDE = 8  # flattened-model training windows
GRU_LEARNING_RATE = 2e-3  # the BiGRU baseline's own rate (Adam-style RNN default); same steps and batch as HTT


@dataclass
class BenchmarkPreset:
    """Training budgets (optimiser steps) and evaluation sizes. max_* cap the test items (a seeded random subset)."""

    name: str
    transformer: TransformerConfig | None  # None: the `small` model preset's
    pose_steps: int
    action_steps: int
    flattened_steps: int
    htt_steps: int
    fid_epochs: int
    batch_size: int
    num_random_samples: int
    max_prediction_windows: int
    max_recognition_sequences: int
    learning_rate: float = 3e-4


PRESETS = {
    "tiny": BenchmarkPreset("tiny", TransformerConfig(d_model=32, n_heads=2, d_ff=64, n_enc_layers=1, n_dec_layers=1),
                            pose_steps=4, action_steps=4, flattened_steps=4, htt_steps=4, fid_epochs=1, batch_size=8,
                            num_random_samples=3, max_prediction_windows=24, max_recognition_sequences=16),
    "small": BenchmarkPreset("small", None, pose_steps=1000, action_steps=1000, flattened_steps=500, htt_steps=500,
                             fid_epochs=6, batch_size=32, num_random_samples=20, max_prediction_windows=200,
                             max_recognition_sequences=200),
}


def model_config(benchmark: BenchmarkPreset) -> ModelConfig:
    config = preset("small")
    if benchmark.transformer is not None:
        for block in (config.pose, config.action, config.flattened):
            block.transformer = dataclasses.replace(benchmark.transformer)
    return config


def _log(message: str):
    print(f"[benchmark {time.strftime('%H:%M:%S')}] {message}", flush=True)


def _views(dataset: StoredDataset, split: str):
    """The view split's views when the dataset defines one, else every view (None)."""
    return dataset.view_split(split) if split in dataset.index["splits"]["view"] else None


def _subset(items, limit: int, seed: int):
    if len(items) <= limit:
        return items
    chosen = torch.randperm(len(items), generator=torch.Generator().manual_seed(seed))[:limit].sort().values
    return items.select(chosen)


def _loop(benchmark: BenchmarkPreset, steps: int, seed: int) -> LoopOptions:
    return LoopOptions(lr=benchmark.learning_rate, batch_size=benchmark.batch_size, steps=steps, seed=seed,
                       checkpoint_every=steps, val_every=steps, log_every=max(1, steps // 20))


def _fit(benchmark: BenchmarkPreset, steps: int, seed: int) -> FitOptions:
    return FitOptions(steps=steps, batch_size=benchmark.batch_size, learning_rate=benchmark.learning_rate, seed=seed)


def _train_ghtt(benchmark, train_sequences, taxonomy, label_embeddings, out_dir, seed, pose_checkpoint,
                lambda_action: float, name: str) -> Path:
    """The P-Block (unless given) and an A-Block on top of it; returns the full checkpoint's path."""
    if pose_checkpoint is None:
        pose_checkpoint = out_dir / "pose.pt"
        _log(f"training the P-Block ({benchmark.pose_steps} steps)")
        windows = PoseWindowDataset(train_sequences, stride=4, obs_len_augment_p=0.25,
                                    with_estimated=all(s.estimated_joints is not None for s in train_sequences))
        train_pose(model_config(benchmark), windows, None, PoseTrainingOptions(_loop(benchmark, benchmark.pose_steps,
                                                                                     seed)),
                   pose_checkpoint, log_path=out_dir / "pose_metrics.jsonl", device="cpu", progress=False)
    path = out_dir / name
    _log(f"training the A-Block {name} (lambda_action {lambda_action}, {benchmark.action_steps} steps)")
    train_action(pose_checkpoint, train_sequences, [], taxonomy, label_embeddings,
                 ActionTrainingOptions(_loop(benchmark, benchmark.action_steps, seed)), path,
                 log_path=out_dir / f"{Path(name).stem}_metrics.jsonl", device="cpu",
                 action_overrides={"lambda_action": lambda_action}, progress=False)
    return path


def _training_steps(checkpoint) -> int | None:
    return None if checkpoint.training is None else int(checkpoint.training.step)


def run_benchmark(data_dir, out_dir, benchmark: BenchmarkPreset, seed: int = 0, pose_checkpoint=None,
                  full_checkpoint=None) -> tuple[dict, dict]:
    """Returns (results: plain values for results.json, arrays: what the plots need)."""
    started = time.perf_counter()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    dataset = StoredDataset(data_dir)
    train_views, test_views = _views(dataset, "train"), _views(dataset, "test")
    train_sequences = dataset.sequences("train", train_views)
    test_sequences = dataset.sequences("test", test_views)
    if not train_sequences or not test_sequences:
        raise ValueError(f"{data_dir}: the benchmark needs recordings in the 'train' and 'test' splits")

    if full_checkpoint is not None:
        full = load_checkpoint(full_checkpoint, require="full")
        taxonomy, label_embeddings = full.taxonomy, full.label_embeddings
        full_path = Path(full_checkpoint)
    else:
        taxonomy = dataset.taxonomy
        config = load_checkpoint(pose_checkpoint).config if pose_checkpoint else model_config(benchmark)
        label_embeddings = encode_taxonomy(taxonomy, build_text_encoder(config.text))
        full_path = _train_ghtt(benchmark, train_sequences, taxonomy, label_embeddings, out_dir, seed,
                                pose_checkpoint, lambda_action=config.action.lambda_action, name="model.pt")
        full = load_checkpoint(full_path, require="full")
    config = full.config
    action_embeddings, object_embeddings = label_embeddings.actions, label_embeddings.objects
    # Prediction-only generator: the same A-Block trained on the same frozen P-Block without L_dist + L_con.
    prediction_only_path = _train_ghtt(benchmark, train_sequences, taxonomy, label_embeddings, out_dir, seed,
                                       full_path, lambda_action=0.0, name="model_prediction_only.pt")
    prediction_only = load_checkpoint(prediction_only_path, require="full")

    _log(f"training the flattened model ({benchmark.flattened_steps} steps)")
    torch.manual_seed(seed)
    flattened = FlattenedModel(config.flattened)
    flattened_windows = protocols.prediction_windows(train_sequences, taxonomy, protocols.OBSERVED_FRAMES + 1,
                                                     stride=TRAINING_WINDOW_STRIDE)
    flattened_losses = train_flattened(flattened, flattened_windows, action_embeddings, object_embeddings,
                                       _fit(benchmark, benchmark.flattened_steps, seed))

    _log(f"training the HTT recognition baseline ({benchmark.htt_steps} steps)")
    torch.manual_seed(seed)
    htt_config = HTTBaselineConfig(transformer=dataclasses.replace(config.action.transformer),
                                   max_clips=config.action.max_clips, text_dim=label_embeddings.dim)
    htt = HTTBaseline(htt_config)
    train_recognition = protocols.recognition_sequences(train_sequences, taxonomy, config.action.max_clips)
    htt_losses = train_htt_baseline(htt, train_recognition, action_embeddings, _fit(benchmark, benchmark.htt_steps,
                                                                                     seed))

    _log(f"training the BiGRU recognition baseline ({benchmark.htt_steps} steps)")
    torch.manual_seed(seed)
    gru = GRUClassifier(len(taxonomy.actions))
    gru_losses = train_gru_baseline(gru, train_recognition, dataclasses.replace(
        _fit(benchmark, benchmark.htt_steps, seed), learning_rate=GRU_LEARNING_RATE))

    _log(f"training the FID network ({benchmark.fid_epochs} epochs)")
    window_frames = protocols.OBSERVED_FRAMES + protocols.FUTURE_FRAMES
    torch.manual_seed(seed)
    fid_net = FIDNet(fid_preset("small", label_embeddings.dim))
    fid_train = action_sequences(train_sequences, taxonomy, max_frames=window_frames, stride=protocols.WINDOW_STRIDE)
    fid_test = action_sequences(test_sequences, taxonomy, max_frames=window_frames, stride=protocols.WINDOW_STRIDE)
    fid_report = train_fid_net(fid_net, fid_train, action_embeddings,
                               FIDTrainingOptions(epochs=benchmark.fid_epochs, batch_size=benchmark.batch_size,
                                                  seed=seed), val=fid_test)

    inference = GHTTInference(full, device="cpu")
    prediction_only_inference = GHTTInference(prediction_only, device="cpu")

    _log("evaluating recognition and refinement")
    test_recognition = _subset(protocols.recognition_sequences(test_sequences, taxonomy, config.action.max_clips),
                               benchmark.max_recognition_sequences, seed)
    ghtt_recognizer, gru_recognizer = protocols.GHTTRecognizer(inference), GRURecognizer(gru)
    recognizers = [ghtt_recognizer, OffsetAveragedRecognizer(ghtt_recognizer), HTTRecognizer(htt, action_embeddings),
                   gru_recognizer, OffsetAveragedRecognizer(gru_recognizer),
                   protocols.FlattenedRecognizer(flattened, action_embeddings)]
    predicted = {recognizer.name: protocols.recognize_all(recognizer, test_recognition) for recognizer in recognizers}
    refinement = protocols.refinement_errors(inference, test_recognition)

    _log("evaluating prediction")
    windows = _subset(protocols.prediction_windows(test_sequences, taxonomy, PREDICTION_PROTOCOLS["1s"]),
                      benchmark.max_prediction_windows, seed)
    predictors = [
        protocols.ZeroVelocityPredictor(),
        protocols.ConstantVelocityPredictor(),
        protocols.PoseOnlyPredictor(inference),
        protocols.ActionGuidedPredictor(inference),
        *([protocols.ActionGuidedPredictor(inference, calibrated=False, name="G-HTT P.b, raw")]
          if inference.calibration is not None else []),
        protocols.ActionGuidedPredictor(inference, with_true_action=True, name="G-HTT P.b, true action"),
        protocols.ActionGuidedPredictor(prediction_only_inference, name="prediction-only A-Block (P.b)"),
        *(protocols.FlattenedPredictor(flattened, object_embeddings, temperature,
                                       name=f"flattened, std x {temperature:g}")
          for temperature in FLATTENED_TEMPERATURES),
    ]
    records = []
    for predictor in predictors:
        _log(f"  {predictor.name}")
        records.append(protocols.evaluate_prediction(predictor, windows, benchmark.num_random_samples, seed=seed,
                                                     fid_net=fid_net))
    truth_joints, truth_presence, truth_valid = protocols.sequence_with_future(windows, windows.future_joints.float(),
                                                                               windows.future_presence)
    truth_features = fid_net.extract_features(truth_joints, truth_presence, truth_valid)

    results = {
        "preset": dataclasses.asdict(benchmark),
        "seed": seed,
        "data": str(data_dir),
        "views": {"train": train_views, "test": test_views},
        "checkpoints": {
            "G-HTT": {"path": str(full_path), "model_id": full.model_id, "a_block_steps": _training_steps(full),
                      "p_block_provenance": full.provenance},
            "prediction-only A-Block": {"path": str(prediction_only_path),
                                        "a_block_steps": _training_steps(prediction_only)},
            "flattened": {"steps": len(flattened_losses), "final_loss": flattened_losses[-1],
                          "parameters": _parameters(flattened)},
            "HTT (recognition only)": {"steps": len(htt_losses), "final_loss": htt_losses[-1],
                                       "parameters": _parameters(htt)},
            GRURecognizer.name: {"steps": len(gru_losses), "final_loss": gru_losses[-1],
                                 "parameters": _parameters(gru)},
            "G-HTT parameters": {"P-Block": _parameters(full.pose_block), "A-Block": _parameters(full.action_block)},
        },
        "fid_net": {"epochs": benchmark.fid_epochs, "train_windows": len(fid_train), "test_windows": len(fid_test),
                    "train_accuracy": fid_report.train_accuracy, "test_accuracy": fid_report.val_accuracy,
                    "final_loss": fid_report.epoch_losses[-1]},
        "recognition": _recognition_results(predicted, test_recognition, refinement, taxonomy),
        "prediction": {name: _prediction_results(records, windows, truth_features, frames)
                       for name, frames in PREDICTION_PROTOCOLS.items()},
        "seconds": time.perf_counter() - started,
    }
    arrays = {"windows": windows, "records": records, "predictors": predictors, "taxonomy": taxonomy,
              "confusion": confusion_matrix(predicted["G-HTT"], test_recognition.labels, len(taxonomy.actions))}
    return results, arrays


def _parameters(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _pair(values: torch.Tensor) -> dict:
    """(..., 2) per-item values (NaN = not counted) -> {"mean": [left, right], "count": [left, right]}."""
    flat = values.reshape(-1, 2)
    counted = ~flat.isnan()
    means = [float(flat[counted[:, hand], hand].mean()) if counted[:, hand].any() else None for hand in range(2)]
    return {"mean": means, "count": [int(c) for c in counted.sum(dim=0)]}


def _recognition_results(predicted, sequences, refinement, taxonomy) -> dict:
    views = sorted(set(sequences.views))
    rows = {}
    for view in [None, *views]:
        chosen = torch.tensor([view is None or v == view for v in sequences.views])
        rows[view or "all"] = {
            "sequences": int(chosen.sum()),
            "accuracy": {name: top1_accuracy(labels[chosen], sequences.labels[chosen])
                         for name, labels in predicted.items()},
            "mpjpe": {name: _pair(values[chosen]) for name, values in refinement.items()},
        }
    return {"by_view": rows, "classes": taxonomy.labels}


def _prediction_results(records, windows, truth_features, min_frames: int) -> dict:
    chosen = windows.remaining_frames >= min_frames
    out = {"windows": int(chosen.sum()), "min_remaining_frames": min_frames, "methods": {}}
    truth = truth_features[chosen].numpy()
    for record in records:
        part = record.select(chosen)
        generated = part.fid_features.flatten(0, 1).numpy()
        horizon = part.frame_errors
        counted = ~horizon.isnan()
        horizon_mean = torch.where(counted, horizon, torch.zeros_like(horizon)).sum(0) / counted.sum(0).clamp_min(1)
        horizon_mean[counted.sum(0) == 0] = float("nan")
        out["methods"][record.name] = {
            "random_samples": record.num_random_samples,
            **{name: _pair(getattr(part, name)) for name in ("deterministic_ade", "deterministic_fde", "ade_mean",
                                                             "ade_best", "fde_mean", "fde_best", "apd")},
            "fid": fid(generated, truth) if len(generated) > 1 and len(truth) > 1 else None,
            "fid_samples": [len(generated), len(truth)],
            "horizon_mm": np.where(np.isnan(horizon_mean.numpy()), None, horizon_mean.numpy()).tolist(),
            "horizon_count": counted.sum(0).tolist(),
        }
    return out
