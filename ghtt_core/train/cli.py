"""`ghtt train-pose` and `ghtt train-action`: train the P-Block, then the A-Block on top of the frozen P-Block.

Both run as one process or under torchrun, e.g.
`torchrun --nproc_per_node 2 -m ghtt_core.cli train-pose --data data/synthetic --out-dir runs/pose`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

POSE_CHECKPOINT = "pose.pt"
FULL_CHECKPOINT = "model.pt"


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows defaults, except for options whose default means "not given" (None / off switches)."""

    def _get_help_string(self, action):
        if action.default is None or action.default is False or action.default is argparse.SUPPRESS:
            return action.help
        return super()._get_help_string(action)


def register(subparsers):
    pose = subparsers.add_parser(
        "train-pose",
        help="train the P-Block (refinement + next-clip prediction) on untrimmed 32-frame windows",
        description="Train the P-Block on 32-frame windows (16 observed + 16 future) of the training split. Writes "
        f"OUT_DIR/{POSE_CHECKPOINT} (a 'pose' checkpoint) and a JSONL metrics log.",
        formatter_class=_HelpFormatter,
    )
    _add_common_options(pose, default_steps=20000)
    pose.add_argument("--config", default="ghtt_small",
                      help="model config: a preset name (ghtt_small, ghtt: this project's training; small, paper: "
                           "the authors' settings) or a YAML file (`preset:` + overrides); the A-Block settings of "
                           "the config are used later by train-action")
    pose.add_argument("--lambda-hand", type=float, default=None, help="weight of L_obs + L_pred + L_trj "
                      "(default: the config's)")
    pose.add_argument("--lambda-kl", type=float, default=None, help="weight of the P-Block KL (default: config's)")
    pose.add_argument("--window-stride", type=int, default=4,
                      help="frames between consecutive training window starts")
    pose.add_argument("--val-window-stride", type=int, default=32, help="frames between validation window starts")
    pose.add_argument("--obs-len-augment-p", type=float, default=0.25,
                      help="probability that a window keeps only U{2..16} valid observed frames")
    pose.add_argument("--no-input-noise", action="store_true",
                      help="do not add Gaussian noise to the encoder input (method-notes section 7)")
    pose.set_defaults(handler=_train_pose)

    action = subparsers.add_parser(
        "train-action",
        help="train the A-Block (recognition + mid-level prediction) with a frozen P-Block",
        description="Train the A-Block on trimmed actions, with the P-Block of --pose-checkpoint frozen. Writes "
        f"OUT_DIR/{FULL_CHECKPOINT} (a 'full' checkpoint with the cached label embeddings) and a JSONL log.",
        formatter_class=_HelpFormatter,
    )
    _add_common_options(action, default_steps=10000)
    action.add_argument("--pose-checkpoint", type=Path, required=True,
                        help=f"checkpoint written by `ghtt train-pose` ({POSE_CHECKPOINT})")
    action.add_argument("--object-drop-prob", type=float, default=0.3,
                        help="per-sample probability that the object token is the learned 'unknown object' token")
    action.add_argument("--noise-std", type=float, default=None,
                        help="std of the Gaussian noise on input mid-levels (default: the config's action.noise_std)")
    action.add_argument("--lambda-kl", type=float, default=None, help="A-Block KL weight (default: config's)")
    action.add_argument("--lambda-action", type=float, default=None, help="weight of L_dist + L_con")
    action.add_argument("--lambda-mid", type=float, default=None, help="weight of the future mid-level loss")
    action.add_argument("--lambda-rollout", type=float, default=None,
                        help="weight of the rollout loss: predicted mid-levels decoded by the frozen P-Dec vs the true "
                             "future poses and trajectory (0 = the authors' training; default: config's)")
    action.add_argument("--rollout-clips", type=int, default=None,
                        help="future clips the rollout loss decodes (default: config's action.rollout_clips)")
    action.add_argument("--rollout-from-observation", action="store_true", default=None,
                        help="rollout as P.b runs it: future clip 0 decoded from the last observed clip's mid-level, "
                             "trajectories from the last observed frame (default: config's)")
    action.add_argument("--rollout-joint-weight", type=float, default=None,
                        help="weight (inside --lambda-rollout) of the decoded joints' distance to the truth "
                             "(default: config's, 0)")
    action.add_argument("--label-smoothing", type=float, default=None,
                        help="label smoothing of the recognition cross-entropy L_con (default: config's, 0)")
    action.add_argument("--augment-copies", type=int, default=0,
                        help="time-warped / mirrored copies of every training action in the mid-level cache (0 = none)")
    action.add_argument("--augment-speed", type=float, nargs=2, default=(0.8, 1.25), metavar=("LOW", "HIGH"),
                        help="playback speed range of the augmented copies")
    action.add_argument("--augment-mirror-p", type=float, default=0.5,
                        help="probability that an augmented copy is mirrored (hands swapped and reflected)")
    action.add_argument("--text-cache", type=Path, default=None,
                        help="directory for the text encoder's disk cache of label embeddings")
    action.set_defaults(handler=_train_action)

    report = subparsers.add_parser(
        "training-report",
        help="held-out check of a trained checkpoint: refinement MPJPE, top-1 accuracy, P.b ADE/FDE vs baselines",
        description="Evaluate a checkpoint on held-out recordings (default: the test subjects). Prints JSON and "
        "optionally writes it to --out. The full paper report with every baseline is `ghtt benchmark`.",
        formatter_class=_HelpFormatter,
    )
    report.add_argument("--checkpoint", type=Path, required=True, help="a pose or full checkpoint")
    report.add_argument("--data", type=Path, required=True, help="dataset directory (docs/dataset.md)")
    report.add_argument("--split", default="test", help="recording split to evaluate on")
    report.add_argument("--views", default=None, help="comma-separated views (default: every view)")
    report.add_argument("--samples", type=int, default=5, help="random P.b samples per window (+ the mean)")
    report.add_argument("--max-windows", type=int, default=400,
                        help="prediction windows per protocol (a seeded random subset; 0 = all)")
    report.add_argument("--seed", type=int, default=0, help="seed of the window subset and the samples")
    report.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    report.add_argument("--out", type=Path, default=None, help="write the JSON report here")
    report.add_argument("--min-future-frames", action="store_true",
                        help="prediction windows need a full 1 s / 2 s (30 / 60 frames) after their 16 observed "
                             "frames, as papers that require a full future count them; default: 30 / 60 frames from "
                             "the window start, observed frames included (the authors' code; docs/training.md)")
    report.add_argument("--long-actions", choices=("first", "sliding"), default="first",
                        help="recognition of actions longer than the A-Block's capacity (16 clips = 256 frames): "
                             "'first' scores their first 256 frames (the authors' evaluation), 'sliding' averages "
                             "the class scores over windows of 16 clips every 8 clips")
    report.add_argument("--clip-offsets", default="0,4,8,12",
                        help="recognition is also reported with the class scores averaged over these clip "
                             "alignments (frames left out at the action start before cutting clips; the "
                             "`*_clip_offsets` rows, for G-HTT and the BiGRU); '0' = the authors' single alignment "
                             "only")
    report.add_argument("--no-progress", action="store_true", help="no tqdm progress bars")
    report.add_argument("--gru-steps", type=int, default=0,
                        help="also train the BiGRU recognition baseline for this many steps (batch 32) on "
                             "--gru-train-split and score it on the same actions (0 = no baseline)")
    report.add_argument("--gru-train-split", default="train", help="recording split the BiGRU is trained on")
    report.add_argument("--gru-views", default=None,
                        help="comma-separated views of the BiGRU's training recordings (default: every view)")
    report.set_defaults(handler=_training_report)

    calibrate = subparsers.add_parser(
        "calibrate",
        help="fit a checkpoint's forecast calibration (horizon gain, out-of-domain trust, sampling temperature)",
        description="Fit the forecast calibration of a full checkpoint on held-out recordings (default: the val "
        "subjects, never the test split) and write a copy of the checkpoint that carries it (docs/inference.md, "
        "'Forecast calibration'). The copy's forecasts shrink towards holding the last pose where the model is "
        "unsure (far ahead, or on motion unlike its training data) and sample at the calibrated temperature. The "
        "calibration plot (spread coverage per future frame and temperature) goes beside it as <out>.coverage.png.",
        formatter_class=_HelpFormatter,
    )
    calibrate.add_argument("--checkpoint", type=Path, required=True, help="a full checkpoint (ghtt train-action)")
    calibrate.add_argument("--data", type=Path, required=True, help="dataset directory (docs/dataset.md)")
    calibrate.add_argument("--split", default="val", help="recording split to fit on (never the test split)")
    calibrate.add_argument("--views", default=None, help="comma-separated views (default: every view)")
    calibrate.add_argument("--max-windows", type=int, default=2000,
                           help="prediction windows for the gain and the thresholds (seeded random subset; 0 = all)")
    calibrate.add_argument("--coverage-windows", type=int, default=600,
                           help="windows for the spread coverage of each candidate temperature")
    calibrate.add_argument("--coverage-samples", type=int, default=10, help="random samples per window for coverage")
    calibrate.add_argument("--seed", type=int, default=0, help="seed of the window subsets and the samples")
    calibrate.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    calibrate.add_argument("--out", type=Path, required=True, help="where the calibrated copy of the checkpoint goes")
    calibrate.add_argument("--no-progress", action="store_true", help="no tqdm progress bars")
    calibrate.set_defaults(handler=_calibrate)

    export = subparsers.add_parser(
        "export-model",
        help="copy a checkpoint without its training state (for shipping); the model id follows the new file name",
        formatter_class=_HelpFormatter,
    )
    export.add_argument("source", type=Path, help="checkpoint written by train-pose or train-action")
    export.add_argument("destination", type=Path, help="where the inference-only copy goes")
    export.set_defaults(handler=_export_model)


def _add_common_options(parser, default_steps):
    parser.add_argument("--data", type=Path, required=True, help="dataset directory written by `ghtt data generate` "
                        "or `ghtt data convert` (docs/dataset.md)")
    parser.add_argument("--views", default=None,
                        help="comma-separated camera views to train on (default: every view of each recording)")
    parser.add_argument("--train-split", default="train", help="recording split used for training")
    parser.add_argument("--val-split", default="val", help="recording split used for validation ('' = none)")
    parser.add_argument("--val-fraction", type=float, default=None,
                        help="validate on this fraction of the training split's recordings instead of --val-split "
                             "(whole recordings, about the same fraction of each subject's; for datasets without a "
                             "val split, e.g. 0.1). Use the same value and --val-seed in train-pose and train-action")
    parser.add_argument("--val-seed", type=int, default=0,
                        help="seed of the --val-fraction choice of recordings (independent of --seed, so that both "
                             "stages and every training seed validate on the same recordings)")
    parser.add_argument("--out-dir", type=Path, required=True, help="where the checkpoint and the log go")
    parser.add_argument("--log", type=Path, default=None, help="JSONL metrics log (default: OUT_DIR/metrics.jsonl)")
    length = parser.add_mutually_exclusive_group()
    length.add_argument("--steps", type=int, default=None, help=f"optimiser steps (when neither --steps nor --epochs: {default_steps})")
    length.add_argument("--epochs", type=int, default=None, help="passes over the training samples")
    parser.add_argument("--batch-size", type=int, default=64, help="global batch size (split over processes)")
    parser.add_argument("--lr", type=float, default=3e-4, help="AdamW learning rate")
    parser.add_argument("--weight-decay", type=float, default=0.01, help="AdamW weight decay")
    parser.add_argument("--seed", type=int, default=0, help="seed of weights, sampling and augmentation")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"),
                        help="auto = CUDA when available (each torchrun process takes cuda:LOCAL_RANK)")
    parser.add_argument("--workers", type=int, default=0, help="DataLoader worker processes per training process")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads per process (default: torch's)")
    parser.add_argument("--checkpoint-every", type=int, default=1000, help="steps between checkpoints")
    parser.add_argument("--val-every", type=int, default=1000,
                        help="steps between validation passes (and at the end); the checkpoint of the lowest "
                             "validation loss is kept as <name>_best.pt beside the last one")
    parser.add_argument("--log-every", type=int, default=50, help="steps between training log lines")
    parser.add_argument("--resume", type=Path, default=None,
                        help="continue the run saved in this checkpoint (its config and weights are used); the log "
                             "gets a 'resume' row and keeps counting steps and time_s from the checkpoint's")
    parser.add_argument("--truth-input", action="store_true",
                        help="feed ground-truth poses to the encoder even where the data has estimated poses")
    parser.add_argument("--no-progress", action="store_true", help="no tqdm progress bar")


def _loop_options(args, default_steps):
    from ghtt_core.train.loop import LoopOptions

    steps = args.steps if args.steps is not None or args.epochs is not None else default_steps
    return LoopOptions(lr=args.lr, weight_decay=args.weight_decay, batch_size=args.batch_size, steps=steps,
                       epochs=args.epochs, seed=args.seed, checkpoint_every=args.checkpoint_every,
                       val_every=args.val_every, log_every=args.log_every, workers=args.workers)


def _sequences(args, split):
    from ghtt_core.data.storage import StoredDataset

    if not split:
        return []
    dataset = StoredDataset(args.data)
    views = args.views.split(",") if args.views else None
    return dataset.sequences(split, views)


def _no_sequences(data, split, views, split_option="--split") -> ValueError:
    """The error for a split / view selection without sequences, naming what the dataset has."""
    from ghtt_core.data.storage import StoredDataset

    entries = StoredDataset(data).entries
    splits = sorted({entry["split"] for entry in entries})
    available = sorted({view for entry in entries for view in entry["views"]})
    if split not in splits:
        return ValueError(f"{data}: no recordings in split {split!r} (splits: {splits}); choose one with {split_option}")
    return ValueError(f"{data}: no sequences of split {split!r} in view(s) {views} (views: {available}); choose with "
                      "--views")


def _training_and_validation(args) -> tuple[list, list, dict]:
    """The training and validation sequences, and where validation comes from (kept in the checkpoint's provenance).

    --val-fraction holds whole recordings of the training split out (ghtt_core.data.holdout); otherwise validation is
    --val-split (possibly empty: a warning says so).
    """
    from ghtt_core.data.holdout import held_out_recordings
    from ghtt_core.data.storage import StoredDataset

    dataset = StoredDataset(args.data)
    views = args.views.split(",") if args.views else None
    entries = [entry for entry in dataset.entries if entry["split"] == args.train_split]
    if not entries:
        splits = sorted({entry["split"] for entry in dataset.entries})
        raise ValueError(f"{args.data}: no recordings in split {args.train_split!r} (splits: {splits}); "
                         f"choose one with --train-split")
    if args.val_fraction is None:
        validation = {"split": args.val_split}
        return dataset.sequences(args.train_split, views), _sequences(args, args.val_split), validation
    held_out = held_out_recordings(entries, args.val_fraction, args.val_seed)
    kept = {entry["name"] for entry in entries} - set(held_out)
    validation = {"held_out_of": args.train_split, "val_fraction": args.val_fraction, "val_seed": args.val_seed,
                  "recordings": held_out}
    print(f"validation: {len(held_out)} of the {len(entries)} recordings of split {args.train_split!r} held out "
          f"(--val-fraction {args.val_fraction}, --val-seed {args.val_seed})", flush=True)
    return (dataset.sequences(args.train_split, views, names=kept),
            dataset.sequences(args.train_split, views, names=set(held_out)), validation)


def _warn_without_validation(args, what: str):
    if args.val_fraction is not None:
        source, advice = "the recordings held out by --val-fraction have", "Hold out more with a larger --val-fraction."
    else:
        source = f"split {args.val_split!r} of {args.data} has" if args.val_split else "--val-split '' has"
        advice = "Hold out training recordings with --val-fraction 0.1."
    print(f"warning: training without validation: {source} no {what}, so there are no val rows in the log, no "
          f"best checkpoint, and --val-every{' and --val-window-stride' if what == 'windows' else ''} do nothing. "
          f"{advice}", file=sys.stderr, flush=True)


def _summary(stage: str, result, checkpoint: Path) -> str:
    from ghtt_core.train.loop import best_checkpoint_path

    text = f"{stage}: {result.step} steps; last train loss {result.last_train.get('total')}; "
    if result.best_val is None:
        return text + f"no validation; checkpoint {checkpoint}"
    return (text + f"last val {result.last_val.get('total')}; checkpoint {checkpoint}; best val "
            f"{result.best_val['total']} at step {result.best_val['step']}: {best_checkpoint_path(checkpoint)}")


def _model_config(spec: str):
    from ghtt_core.config import PRESETS, load_config, preset

    return preset(spec) if spec in PRESETS else load_config(spec)


def _provenance(args, validation: dict | None = None) -> dict:
    provenance = {"command": " ".join(["ghtt", *sys.argv[1:]]), "data": str(args.data), "seed": args.seed}
    if validation is not None:
        provenance["validation"] = validation
    return provenance


def _set_threads(args):
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)


def _train_pose(args):
    from ghtt_core.data.windows import PoseWindowDataset
    from ghtt_core.train.pose import PoseTrainingOptions, train_pose

    _set_threads(args)
    config = _model_config(args.config)
    if args.lambda_hand is not None:
        config.pose.lambda_hand = args.lambda_hand
    if args.lambda_kl is not None:
        config.pose.lambda_kl = args.lambda_kl
    with_estimated = not args.truth_input
    train_sequences, val_sequences, validation = _training_and_validation(args)
    if not train_sequences:
        raise _no_sequences(args.data, args.train_split, args.views, "--train-split")
    with_estimated = with_estimated and all(seq.estimated_joints is not None for seq in train_sequences)
    train = PoseWindowDataset(train_sequences, stride=args.window_stride, obs_len_augment_p=args.obs_len_augment_p,
                              with_estimated=with_estimated)
    val = PoseWindowDataset(val_sequences, stride=args.val_window_stride, with_estimated=with_estimated) \
        if val_sequences else None
    if val is None or not len(val):
        _warn_without_validation(args, "windows")
    options = PoseTrainingOptions(loop=_loop_options(args, 20000), add_input_noise=not args.no_input_noise,
                                  use_estimated_input=with_estimated)
    result = train_pose(config, train, val, options, args.out_dir / POSE_CHECKPOINT,
                        log_path=args.log or args.out_dir / "metrics.jsonl", resume_path=args.resume,
                        device=args.device, provenance=_provenance(args, validation), progress=not args.no_progress)
    print(_summary("P-Block", result, args.out_dir / POSE_CHECKPOINT))


def _train_action(args):
    from ghtt_core.checkpoint import load_checkpoint
    from ghtt_core.data.storage import StoredDataset
    from ghtt_core.text import build_text_encoder
    from ghtt_core.train.action import ActionTrainingOptions, encode_taxonomy, train_action
    from ghtt_core.train.midlevels import MidLevelAugmentation

    _set_threads(args)
    taxonomy = StoredDataset(args.data).taxonomy
    text_config = load_checkpoint(args.resume or args.pose_checkpoint).config.text
    if args.text_cache:
        text_config.cache_dir = str(args.text_cache)
    label_embeddings = encode_taxonomy(taxonomy, build_text_encoder(text_config))
    overrides = {name: value for name, value in (("noise_std", args.noise_std), ("lambda_kl", args.lambda_kl),
                                                 ("lambda_action", args.lambda_action),
                                                 ("lambda_mid", args.lambda_mid),
                                                 ("lambda_rollout", args.lambda_rollout),
                                                 ("rollout_clips", args.rollout_clips),
                                                 ("rollout_from_observation", args.rollout_from_observation),
                                                 ("rollout_joint_weight", args.rollout_joint_weight),
                                                 ("label_smoothing", args.label_smoothing)) if value is not None}
    train_sequences, val_sequences, validation = _training_and_validation(args)
    if not train_sequences:
        raise _no_sequences(args.data, args.train_split, args.views, "--train-split")
    if not any(sequence.actions for sequence in val_sequences):
        _warn_without_validation(args, "actions")
    options = ActionTrainingOptions(loop=_loop_options(args, 10000), object_drop_prob=args.object_drop_prob,
                                    use_estimated_input=not args.truth_input,
                                    augment=MidLevelAugmentation(args.augment_copies, tuple(args.augment_speed),
                                                                 args.augment_mirror_p, args.seed))
    result = train_action(args.pose_checkpoint, train_sequences, val_sequences, taxonomy,
                          label_embeddings, options, args.out_dir / FULL_CHECKPOINT,
                          log_path=args.log or args.out_dir / "metrics.jsonl", resume_path=args.resume,
                          device=args.device, action_overrides=overrides,
                          provenance=_provenance(args, validation), progress=not args.no_progress)
    print(_summary("A-Block", result, args.out_dir / FULL_CHECKPOINT))


def _training_report(args):
    import json

    from ghtt_core.checkpoint import load_checkpoint
    from ghtt_core.data.storage import StoredDataset
    from ghtt_core.evaluate.clip_offsets import parse_offsets
    from ghtt_core.train.heldout import heldout_report

    clip_offsets = parse_offsets(args.clip_offsets)
    _set_threads(args)
    sequences = _sequences(args, args.split)
    if not sequences:
        raise _no_sequences(args.data, args.split, args.views)
    gru_train = None
    if args.gru_steps > 0:
        views = args.gru_views.split(",") if args.gru_views else None
        gru_train = StoredDataset(args.data).sequences(args.gru_train_split, views)
        if not gru_train:
            raise _no_sequences(args.data, args.gru_train_split, args.gru_views, "--gru-train-split")
    report = heldout_report(load_checkpoint(args.checkpoint), sequences, num_random_samples=args.samples,
                            max_windows=args.max_windows, seed=args.seed, gru_train_sequences=gru_train,
                            gru_steps=args.gru_steps,
                            count_from="observation_end" if args.min_future_frames else "window_start",
                            long_actions=args.long_actions, progress=not args.no_progress,
                            clip_offsets=clip_offsets)
    report["command"] = " ".join(["ghtt", *sys.argv[1:]])
    text = json.dumps(report, indent=1)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    print(text)


def _calibrate(args):
    import json

    from ghtt_core.checkpoint import load_checkpoint, save_checkpoint
    from ghtt_core.evaluate.forecast_fit import fit_calibration, plot_spread_coverage

    _set_threads(args)
    if args.split == "test":
        raise ValueError("calibrating on the test split would leak it into every test figure; use --split val")
    sequences = _sequences(args, args.split)
    if not sequences:
        raise _no_sequences(args.data, args.split, args.views)
    model = load_checkpoint(args.checkpoint, require="full")
    fitted = fit_calibration(model, sequences, max_windows=args.max_windows, coverage_windows=args.coverage_windows,
                             coverage_samples=args.coverage_samples, seed=args.seed, progress=not args.no_progress)
    fitted.details.update({"data": str(args.data), "split": args.split, "views": args.views or "all"})
    provenance = {**model.provenance, "calibrated_from": str(args.checkpoint),
                  "calibration_command": " ".join(["ghtt", *sys.argv[1:]])}
    model_id = save_checkpoint(args.out, model.config, model.pose_block, model.action_block, model.taxonomy,
                               model.label_embeddings, training=model.training, provenance=provenance,
                               data_name=model.data_name, calibration=fitted)
    summary = {"model_id": model_id, "temperature": fitted.temperature,
               "residual_low": round(fitted.residual_low, 4), "residual_high": round(fitted.residual_high, 4),
               "horizon_gain": {str(f): round(fitted.horizon_gain[f - 1], 3) for f in (1, 8, 16, 30, 48, 60, 96)
                                if f <= len(fitted.horizon_gain)},
               "details": fitted.details}
    plot = Path(args.out).with_suffix(".coverage.png")
    plot_spread_coverage(plot, fitted.details, fitted.temperature)
    summary["coverage_plot"] = str(plot)
    print(json.dumps(summary, indent=1))


def _export_model(args):
    from ghtt_core.checkpoint import export_for_inference

    model_id = export_for_inference(args.source, args.destination)
    print(f"wrote {args.destination} ({args.destination.stat().st_size / 1e6:.1f} MB), model id {model_id}")
