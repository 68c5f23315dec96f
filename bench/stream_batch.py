"""Several camera streams on one model: compute per round with the forecasts batched (ghtt_core.stream_batch) vs the
same streams as separate pipelines, in the same run.

N streams of moving hands (different parts of pipeline_latency.moving_hands, all stamped alike so that their results
fall due in the same rounds) go through the shipped small checkpoint (or --checkpoint) at clip_stride 16, first as N
StreamingPipelines one after the other, then as one StreamBatch; after a warm-up that fills the 16-clip history, the
wall time of every round with results is recorded. Prints per N: ms per round separate and batched, their ratio, and
the load average at the start. Results are identical either way (test/core/test_stream_batch.py); only time differs.

    python bench/stream_batch.py [--streams 1 2 4] [--rounds 8] [--threads 1] [--device cpu]
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pipeline_latency import moving_hands  # noqa: E402

from ghtt_core.checkpoint import KIND_FULL, load_checkpoint  # noqa: E402
from ghtt_core.pipeline import FrameInput, PipelineConfig, StreamingPipeline  # noqa: E402
from ghtt_core.stream_batch import StreamBatch  # noqa: E402

SHIPPED_CHECKPOINT = Path(__file__).resolve().parents[1] / "ghtt_core" / "assets" / "ghtt_small.pt"
FRAME_NS = 33_333_333


def camera_frames(count, offset):
    """count frames of the bench motion from its frame `offset` on (each stream sees another part of it)."""
    return [FrameInput(stamp_ns=i * FRAME_NS, joints=joints, presence=np.ones(2, bool))
            for i, joints in enumerate(moving_hands(offset + count)[offset:])]


def round_times(push_round, streams, config, rounds):
    """ms of every round (one frame per stream) that produced results, after the history is full."""
    warmup = config.max_clips * config.clip_len
    times = []
    for index in range(warmup + rounds * config.clip_stride):
        frames = {name: frames[index] for name, frames in streams.items()}
        start = time.perf_counter()
        produced = push_round(frames)
        if produced and index >= warmup:
            times.append((time.perf_counter() - start) * 1e3)
    return times


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, default=SHIPPED_CHECKPOINT, help="full checkpoint to run")
    parser.add_argument("--streams", type=int, nargs="+", default=[1, 2, 4], help="numbers of streams to compare")
    parser.add_argument("--rounds", type=int, default=8, help="result rounds timed per setting")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--device", default="cpu", help="torch device (cpu, cuda:0)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = load_checkpoint(args.checkpoint, args.device, require=KIND_FULL)
    config = PipelineConfig(clip_stride=16)
    print(f"{model.model_id}, device {args.device}, {args.threads} thread(s), {config.num_samples} samples x "
          f"{config.horizon_frames} frames, median of {args.rounds} result rounds")
    print("streams | separate ms/round | batched ms/round | batched / separate | load at start")
    for count in args.streams:
        length = config.max_clips * config.clip_len + args.rounds * config.clip_stride
        streams = {f"cam{i}": camera_frames(length, offset=7 * i) for i in range(count)}
        load = os.getloadavg()[0]
        separate = {name: StreamingPipeline(model, config, args.device) for name in streams}
        separate_ms = statistics.median(round_times(
            lambda frames: [r for name, f in frames.items() if (r := separate[name].push(f)) is not None],
            streams, config, args.rounds))
        batch = StreamBatch(model, streams, config, args.device)
        batched_ms = statistics.median(round_times(batch.push, streams, config, args.rounds))
        print(f"{count:7d} | {separate_ms:17.1f} | {batched_ms:16.1f} | {batched_ms / separate_ms:18.2f} | {load:.2f}")


if __name__ == "__main__":
    main()
