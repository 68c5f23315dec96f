"""Live recognition and 1-s forecast error of the streaming pipeline vs its history length (max_clips).

Every --every-th sequence of a split (views right + top by default: never trained on) goes through
ghtt_core.pipeline.StreamingPipeline as the ghtt_pipeline node gets it (action_calibration.node_inputs: estimated
poses where the data has them, the current action's object as object label), with the default streaming settings
but the idle outcome off, one forecast sample and 30 future frames, once per max_clips. For the results inside a
labelled action it prints the top-1 accuracy against the action at the result's last frame, and the deterministic
forecast's mean joint error over the next 30 frames against the ground truth, beside holding the last input pose
(zero velocity) on the same frames.

    python bench/live_history.py --data data/synthetic --split val --max-clips 16 8 4 2
"""

import argparse
import os
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from action_calibration import node_inputs  # noqa: E402

from ghtt_core.checkpoint import KIND_FULL, load_checkpoint  # noqa: E402
from ghtt_core.data.storage import StoredDataset  # noqa: E402
from ghtt_core.open_set import IDLE  # noqa: E402
from ghtt_core.pipeline import PipelineConfig, StreamingPipeline  # noqa: E402

SHIPPED_CHECKPOINT = Path(__file__).resolve().parents[1] / "ghtt_core" / "assets" / "ghtt_small.pt"
FORECAST_FRAMES = 30


def score(model, sequences, max_clips):
    """-> (top-1 hits, forecast errors (m), zero-velocity errors (m)), one entry per scored result."""
    config = PipelineConfig(num_samples=1, horizon_frames=FORECAST_FRAMES, idle_speed_m_s=0.0, max_clips=max_clips)
    hits, errors, held = [], [], []
    for sequence in sequences:
        pipeline = StreamingPipeline(model, config, "cpu")
        for frame, (label, frame_input) in enumerate(node_inputs(sequence)):
            result = pipeline.push(frame_input)
            if result is None or label == IDLE:
                continue
            if result.recognition is not None:
                hits.append(result.recognition.hypotheses[0].label == label)
            if result.prediction is None or frame + FORECAST_FRAMES >= sequence.num_frames:
                continue
            future = np.asarray(sequence.joints[frame + 1:frame + 1 + FORECAST_FRAMES], np.float64)
            seen = np.asarray(frame_input.presence) & result.prediction.hand_present
            counted = np.asarray(sequence.presence[frame + 1:frame + 1 + FORECAST_FRAMES]) & seen[None]
            if not counted.any():
                continue
            forecast = result.prediction.positions[0].astype(np.float64)
            last = np.asarray(frame_input.joints, np.float64)
            errors.append(np.linalg.norm(forecast - future, axis=-1).mean(-1)[counted].mean())
            held.append(np.linalg.norm(last[None] - future, axis=-1).mean(-1)[counted].mean())
    return hits, errors, held


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, default=SHIPPED_CHECKPOINT, help="full checkpoint to run")
    parser.add_argument("--data", type=Path, required=True, help="dataset folder (ghtt format) with estimated poses")
    parser.add_argument("--split", default="val", help="recording split (default val)")
    parser.add_argument("--views", default="right,top", help="comma-separated views (default right,top)")
    parser.add_argument("--every", type=int, default=4, help="use every N-th sequence (default 4)")
    parser.add_argument("--max-clips", type=int, nargs="+", default=[16, 8, 4, 2], help="history lengths to compare")
    args = parser.parse_args()
    torch.set_num_threads(1)
    try:
        model = load_checkpoint(args.checkpoint, "cpu", require=KIND_FULL)
        sequences = StoredDataset(args.data).sequences(args.split, args.views.split(","))[::max(1, args.every)]
    except (OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if not sequences:
        print(f"error: {args.data} has no sequences in split {args.split!r}, views {args.views}; choose others with "
              f"--split / --views", file=sys.stderr)
        return 2
    print(f"{model.model_id}, {args.split} views {args.views}, {len(sequences)} sequences, load at start "
          f"{os.getloadavg()[0]:.2f}")
    print("max_clips | top-1 inside actions | 1-s forecast mm | zero velocity mm | forecast / zero velocity")
    for max_clips in args.max_clips:
        hits, errors, held = score(model, sequences, max_clips)
        print(f"{max_clips:9d} | {100 * np.mean(hits):19.1f} % | {1000 * np.mean(errors):15.1f} | "
              f"{1000 * np.mean(held):16.1f} | {np.mean(errors) / np.mean(held):24.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
