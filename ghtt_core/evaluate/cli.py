"""`ghtt benchmark`: train what is missing, evaluate G-HTT and its baselines, write report.md, results.json, plots."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers):
    parser = subparsers.add_parser(
        "benchmark",
        help="evaluate G-HTT and its baselines under the paper's protocols and write a report",
        description="Trains what is missing (P-Block and A-Block unless given, the prediction-only A-Block, the "
        "flattened ablation, the HTT recognition baseline, the FID network) on the dataset's train split, evaluates "
        "everything on its test split (docs/benchmarks.md) and writes OUT/report.md, OUT/results.json and plots.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--data", type=Path, required=True,
                        help="dataset directory written by `ghtt data generate` or `ghtt data convert`")
    parser.add_argument("--out", type=Path, required=True, help="output directory (checkpoints, report, plots)")
    parser.add_argument("--pose-checkpoint", type=Path, default=None,
                        help="P-Block checkpoint from `ghtt train-pose` (trained here when neither checkpoint is "
                        "given)")
    parser.add_argument("--full-checkpoint", type=Path, default=None,
                        help="full checkpoint from `ghtt train-action` (its P-Block, A-Block, taxonomy and label "
                        "embeddings are used; the prediction-only A-Block is trained on its frozen P-Block)")
    parser.add_argument("--preset", choices=("tiny", "small"), default="small",
                        help="training budgets and evaluation sizes (tiny = a CI smoke test)")
    parser.add_argument("--seed", type=int, default=0, help="seed of training, window subsets and sampling")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.set_defaults(handler=_benchmark)


def _benchmark(args):
    import torch

    from ghtt_core.evaluate.benchmark import PRESETS, run_benchmark
    from ghtt_core.evaluate.report import write_report

    if args.threads:
        torch.set_num_threads(args.threads)
    results, arrays = run_benchmark(args.data, args.out, PRESETS[args.preset], seed=args.seed,
                                    pose_checkpoint=args.pose_checkpoint, full_checkpoint=args.full_checkpoint)
    for path in write_report(results, arrays, args.out):
        print(path)
