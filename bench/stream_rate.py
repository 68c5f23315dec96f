"""Result rate vs CPU load vs latency of ghtt_core.pipeline.StreamingPipeline at 30 Hz input, per clip_stride.

Feeds a moving two-hand motion in real time (one pose every 1/30 s of wall time) into a pipeline of the shipped
small checkpoint (or --checkpoint) for each clip_stride, after a warm-up that fills the history (max_clips clips) and
visits every clip alignment, and reports per stride:
- results/s and results skipped by the ROS node's overload rule (a due result is skipped when the poses of the next
  one are already due: the node's `behind >= clip_stride`),
- the process CPU (process time / wall time, 100 % = one core) while streaming,
- P-Enc clips encoded per result (the clip cache at work),
- per-result latency p50 / p95: from the moment the result's last pose was due to the result being ready (so it
  includes waiting behind earlier work), and p95 / the 100 ms bound.
The load average at the start of each row is printed: figures measured beside other jobs must say so.

    python bench/stream_rate.py [--strides 16 8 4 3 2] [--seconds 20] [--threads 1]
"""

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pipeline_latency import moving_hands  # noqa: E402

from ghtt_core.checkpoint import KIND_FULL, load_checkpoint  # noqa: E402
from ghtt_core.pipeline import FrameInput, PipelineConfig, StreamingPipeline  # noqa: E402

SHIPPED_CHECKPOINT = Path(__file__).resolve().parents[1] / "ghtt_core" / "assets" / "ghtt_small.pt"
FRAME_PERIOD_S = 1.0 / 30.0
LATENCY_BOUND_MS = 100.0


def frames(model, count):
    object_label = model.taxonomy.objects[min(1, len(model.taxonomy.objects) - 1)]
    return [FrameInput(stamp_ns=round(i * FRAME_PERIOD_S * 1e9), joints=joints, presence=np.ones(2, bool),
                       object_label=object_label)
            for i, joints in enumerate(moving_hands(count))]


def row(model, config, seconds):
    pipeline = StreamingPipeline(model, config)
    warmup = config.max_clips * config.clip_len + 3 * config.clip_len  # a full history, every alignment visited
    stream = frames(model, warmup + round(seconds / FRAME_PERIOD_S))
    for frame in stream[:warmup]:
        pipeline.push(frame)
    load = os.getloadavg()[0]
    encoded_before, results_before = pipeline.stats.encoded_clips, pipeline.stats.results
    latencies_ms = []
    wall_start, cpu_start = time.perf_counter(), time.process_time()
    for index, frame in enumerate(stream[warmup:]):
        due = wall_start + index * FRAME_PERIOD_S
        idle = due - time.perf_counter()
        if idle > 0:
            time.sleep(idle)
        behind = int((time.perf_counter() - due) / FRAME_PERIOD_S)  # later poses already due (waiting)
        result = pipeline.push(frame, skip_result=behind >= config.clip_stride)
        if result is not None:
            latencies_ms.append((time.perf_counter() - due) * 1e3)
    wall_s, cpu_s = time.perf_counter() - wall_start, time.process_time() - cpu_start
    results = pipeline.stats.results - results_before
    p50, p95 = np.percentile(latencies_ms, [50, 95])
    encoded = (pipeline.stats.encoded_clips - encoded_before) / max(results, 1)
    print(f"| {config.clip_stride:6d} | {results / wall_s:9.2f} | {pipeline.stats.results_skipped:7d} | "
          f"{100 * cpu_s / wall_s:4.0f} % | {encoded:13.1f} | {p50:7.1f} | {p95:7.1f} | "
          f"{p95 / LATENCY_BOUND_MS:9.2f} | {load:4.2f} |", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, default=SHIPPED_CHECKPOINT)
    parser.add_argument("--strides", type=int, nargs="+", default=[16, 8, 4, 3, 2])
    parser.add_argument("--seconds", type=float, default=20.0, help="streamed seconds per stride")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the node's num_threads default: 1)")
    parser.add_argument("--samples", type=int, default=PipelineConfig.num_samples)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = load_checkpoint(args.checkpoint, "cpu", require=KIND_FULL)
    print(f"{args.checkpoint.name} on cpu, torch {torch.__version__}, {args.threads} thread(s), {os.cpu_count()} "
          f"cores, load average at start {' / '.join(f'{v:.2f}' for v in os.getloadavg())}; 30 Hz poses, "
          f"{args.samples} samples x {PipelineConfig.horizon_frames} frames, {args.seconds:.0f} s per stride")
    print("| stride | results/s | skipped | CPU    | clips/result  | p50 ms  | p95 ms  | p95/100ms | load |")
    print("|-------:|----------:|--------:|-------:|--------------:|--------:|--------:|----------:|-----:|")
    for stride in args.strides:
        row(model, PipelineConfig(clip_stride=stride, num_samples=args.samples), args.seconds)


if __name__ == "__main__":
    main()
