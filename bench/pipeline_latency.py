"""Per-result latency of ghtt_core.pipeline.StreamingPipeline (refine + recognize + predict for one completed clip).

Streams a moving two-hand motion frame by frame into a pipeline with randomly initialised weights of each preset, or
into a trained checkpoint (--checkpoint), and reports p50/p95 of the per-result wall time and of each stage, after the
history is full (max_clips clips, the most expensive steady state).

    python bench/pipeline_latency.py --presets small paper --results 50 --threads 1
    python bench/pipeline_latency.py --checkpoint ghtt_core/assets/ghtt_small.pt --results 50 --threads 1
"""

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from ghtt_core import geometry
from ghtt_core.action_block import ActionBlock
from ghtt_core.checkpoint import KIND_FULL, LabelEmbeddings, ModelCheckpoint, load_checkpoint
from ghtt_core.config import preset
from ghtt_core.pipeline import FrameInput, PipelineConfig, StreamingPipeline
from ghtt_core.pose_block import PoseBlock
from ghtt_core.skeleton import FINGERS, PALM_TEMPLATES
from ghtt_core.taxonomy import ActionLabel, Taxonomy

PERIOD_NS = 33_333_333
NUM_ACTIONS = 36  # the size of the H2O taxonomy


def random_model(preset_name: str, device: str) -> ModelCheckpoint:
    torch.manual_seed(0)
    config = preset(preset_name)
    nouns = [f"object {i}" for i in range(8)]
    taxonomy = Taxonomy(
        tuple(ActionLabel(f"action {i} {nouns[i % 8]}", f"action {i}", nouns[i % 8]) for i in range(NUM_ACTIONS)),
        tuple(nouns),
    )
    text_dim = config.action.text_dim
    embeddings = LabelEmbeddings(
        "random", torch.nn.functional.normalize(torch.randn(NUM_ACTIONS, text_dim), dim=-1),
        torch.nn.functional.normalize(torch.randn(len(nouns), text_dim), dim=-1),
    )
    return ModelCheckpoint(
        config=config,
        pose_block=PoseBlock(config.pose).to(device).eval(),
        action_block=ActionBlock(config.action).to(device).eval(),
        taxonomy=taxonomy,
        label_embeddings=embeddings,
        model_id=f"random-{preset_name}",
    )


def moving_hands(num_frames: int) -> np.ndarray:
    """(T, 2, 21, 3) metres: palm-template hands with straight fingers, turning and drifting in front of the camera."""
    palms = torch.as_tensor(PALM_TEMPLATES, dtype=torch.float64)
    hands = torch.zeros(2, 21, 3, dtype=torch.float64)
    for finger_index, joints in enumerate(FINGERS.values()):
        base = palms[:, 1] * 0.5 if finger_index == 0 else palms[:, finger_index]
        direction = base / base.norm(dim=-1, keepdim=True)
        for step, joint in enumerate(joints):
            hands[:, joint] = base + direction * 0.025 * step
    time_s = torch.arange(num_frames, dtype=torch.float64)[:, None, None] / 30.0
    rotation = geometry.axis_angle_to_matrix(torch.tensor([[0.3, 0.5, 0.1], [-0.2, 0.4, -0.3]]) * time_s)
    offset = torch.tensor([[-0.15, 0.0, 0.5], [0.15, 0.0, 0.5]]) + 0.05 * torch.sin(time_s)
    return (hands @ rotation + offset.unsqueeze(-2)).float().numpy()


def percentile(values, q):
    return float(np.percentile(np.asarray(values), q))


def bench(name, model, device, results, config):
    pipeline = StreamingPipeline(model, config, device)
    object_label = model.taxonomy.objects[min(1, len(model.taxonomy.objects) - 1)]
    warmup_frames = config.max_clips * config.clip_len
    joints = moving_hands(warmup_frames + results * config.clip_stride)
    per_result = []
    for index, frame_joints in enumerate(joints):
        frame = FrameInput(stamp_ns=index * PERIOD_NS, joints=frame_joints, presence=np.ones(2, bool),
                           object_label=object_label)
        start = time.perf_counter()
        result = pipeline.push(frame)
        elapsed_ms = (time.perf_counter() - start) * 1e3
        if result is not None and index >= warmup_frames:
            per_result.append((elapsed_ms, result.timings_ms))
    push_ms = [ms for ms, _ in per_result]
    print(f"{name:6s} {device:5s} results={len(per_result)} history={config.max_clips} clips "
          f"mode={config.mode} samples={config.num_samples} horizon={config.horizon_frames}")
    print(f"  push (whole result): p50 {statistics.median(push_ms):8.1f} ms   p95 {percentile(push_ms, 95):8.1f} ms")
    for stage in per_result[0][1]:
        values = [timings[stage] for _, timings in per_result]
        print(f"  {stage:10s}         p50 {statistics.median(values):8.1f} ms   p95 {percentile(values, 95):8.1f} ms")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", nargs="+", default=["small", "paper"], choices=["small", "paper"],
                        help="random-weight models of these presets (ignored with --checkpoint)")
    parser.add_argument("--checkpoint", default=None, help="a trained full checkpoint (e.g. the shipped "
                        "ghtt_core/assets/ghtt_small.pt) instead of random-weight presets")
    parser.add_argument("--results", type=int, default=50, help="timed results (clips) after the history is full")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--modes", nargs="+", default=["action_guided"], choices=["action_guided", "pose_only"])
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--horizon", type=int, default=96)
    parser.add_argument("--max-clips", type=int, default=16)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} thread(s), device {args.device}")
    if args.checkpoint:
        models = [(Path(args.checkpoint).stem, load_checkpoint(args.checkpoint, args.device, require=KIND_FULL))]
    else:
        models = [(name, random_model(name, args.device)) for name in args.presets]
    for name, model in models:
        for mode in args.modes:
            config = PipelineConfig(mode=mode, num_samples=args.samples, horizon_frames=args.horizon,
                                    max_clips=args.max_clips)
            bench(name, model, args.device, args.results, config)


if __name__ == "__main__":
    main()
