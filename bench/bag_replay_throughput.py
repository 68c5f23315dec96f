"""Replay throughput of `ghtt-bag evaluate` (live graph over DDS and offline in-process), in x real time.

    python bench/bag_replay_throughput.py [--checkpoint ghtt_core/assets/ghtt_small.pt] [--actions 3] [--device cpu]

Without --checkpoint a randomly initialised "small" preset model is used (same compute as the trained small model).
Writes a synthetic evaluation bag (seed 0) and runs both modes with the default pipeline settings (20 samples x 96
frames); prints the throughput of each mode and whether their scores agree.
"""

import argparse
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pipeline_latency import random_model  # noqa: E402

from ghtt_core.checkpoint import save_checkpoint  # noqa: E402
from ghtt_core.pipeline import PipelineConfig  # noqa: E402
from ghtt_ros.bag.cli import evaluate_bag, load_sequence  # noqa: E402
from ghtt_ros.bag.dataset import write_dataset_bag  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", type=Path, help="default: a random small-preset model")
    parser.add_argument("--actions", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--num-samples", type=int, default=20)
    args = parser.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory(prefix="ghtt-bag-bench-") as scratch:
        scratch = Path(scratch)
        checkpoint = args.checkpoint
        if checkpoint is None:
            model = random_model("small", "cpu")
            checkpoint = scratch / "small.pt"
            save_checkpoint(checkpoint, model.config, model.pose_block, model.action_block, model.taxonomy,
                            model.label_embeddings)
        sequence = load_sequence("synthetic", seed=0, actions=args.actions)
        write_dataset_bag(sequence, scratch / "bag")
        summary = evaluate_bag(scratch / "bag", scratch / "report", ("live", "offline"), checkpoint,
                               PipelineConfig(num_samples=args.num_samples), args.device)
    seconds = sequence.num_frames / sequence.fps
    print(f"sequence: {sequence.num_frames} frames ({seconds:.1f} s), model {checkpoint}, device {args.device}, "
          f"{args.num_samples} samples x 96 frames")
    for mode, throughput in summary["throughput"].items():
        latency = summary["scores"][mode]["latency_ms"]
        print(f"{mode:8s} {throughput:6.2f} x real time, latency p50 {latency['p50']:.0f} ms "
              f"p95 {latency['p95']:.0f} ms")
    print(f"scores agree: {not summary['differences']} {summary['differences'] or ''}; problems: {summary['problems']}")


if __name__ == "__main__":
    main()
