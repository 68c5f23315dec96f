"""CPU/GPU latency of the G-HTT networks for the presets.

Measures (batch 1, eval mode, no grad): one 16-frame clip through P-Enc then A-Enc (over 1 clip and over a full
16-clip history), and a P.b prediction (P-Enc -> A-Enc -> A-Dec -> P-Dec) of 20 samples x 6 future clips (96 frames).
Random weights: latency does not depend on them.

    python bench/model_latency.py --presets small paper --threads 1
"""

import argparse
import contextlib
import statistics
import time

import torch

from ghtt_core.action_block import ActionBlock, ActionInputs
from ghtt_core.config import preset
from ghtt_core.pose_block import FEATURE_DIM, PoseBlock


def median_ms(function, repeats):
    function()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def clip_inputs(clips, clip_len, device):
    features = torch.randn(1, clips, clip_len, FEATURE_DIM, device=device)
    mask = torch.ones_like(features, dtype=torch.bool)
    frame_valid = torch.ones(1, clips, clip_len, dtype=torch.bool, device=device)
    return features, mask, frame_valid


def bench_preset(name, repeats, device, samples, future_clips):
    cfg = preset(name)
    pose = PoseBlock(cfg.pose).to(device).eval()
    action = ActionBlock(cfg.action).to(device).eval()
    clip_len = cfg.pose.clip_len
    objects = torch.randn(1, cfg.action.max_clips, cfg.action.text_dim, device=device)
    objects = torch.nn.functional.normalize(objects, dim=-1)
    history = torch.randn(1, cfg.action.max_clips, cfg.pose.transformer.d_model, device=device)

    def one_clip(history_clips):
        features, mask, valid = clip_inputs(1, clip_len, device)

        def run():
            mid = pose.encode(features[:, 0], mask[:, 0], valid[:, 0]).mu
            mids = torch.cat([history[:, : history_clips - 1], mid.unsqueeze(1)], dim=1)
            inputs = ActionInputs(
                mids=mids,
                clip_valid=torch.ones(1, history_clips, dtype=torch.bool, device=device),
                phase=torch.arange(history_clips, device=device).unsqueeze(0),
                object_embeddings=objects[:, :history_clips],
            )
            action.encode(inputs)
            sync(device)

        return run

    features, mask, valid = clip_inputs(1, clip_len, device)
    future_phase = torch.arange(1, 1 + future_clips, device=device).unsqueeze(0)

    def prediction():
        action.predict_future_features(
            pose, features, mask, valid,
            clip_valid=torch.ones(1, 1, dtype=torch.bool, device=device),
            phase=torch.zeros(1, 1, dtype=torch.long, device=device),
            future_phase=future_phase,
            object_embeddings=objects[:, :1],
            num_samples=samples,
        )
        sync(device)

    with torch.no_grad():
        results = {
            "P-Enc + A-Enc, 1 clip": median_ms(one_clip(1), repeats),
            f"P-Enc + A-Enc, {cfg.action.max_clips}-clip history": median_ms(one_clip(cfg.action.max_clips), repeats),
            f"P.b {samples} samples x {future_clips * clip_len} frames": median_ms(prediction, max(1, repeats // 2)),
        }
    parameters = {
        "P-Block": sum(p.numel() for p in pose.parameters()),
        "A-Block": sum(p.numel() for p in action.parameters()),
    }
    return results, parameters


def sync(device):
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", nargs="+", default=["small", "paper"])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--future-clips", type=int, default=6)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--autocast", choices=("none", "bfloat16", "float16"), default="none",
                        help="run the networks under torch.autocast in this precision (GPU; bfloat16 also on CPU)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"device {args.device}, torch {torch.__version__}, {args.threads} thread(s), median of {args.repeats}")
    autocast = (torch.autocast(args.device.split(":")[0], dtype=getattr(torch, args.autocast))
                if args.autocast != "none" else contextlib.nullcontext())
    print(f"autocast: {args.autocast}")
    for name in args.presets:
        with autocast:
            results, parameters = bench_preset(name, args.repeats, args.device, args.samples, args.future_clips)
        counts = ", ".join(f"{block} {count / 1e6:.2f} M" for block, count in parameters.items())
        print(f"[{name}] parameters: {counts}")
        for what, ms in results.items():
            print(f"  {what:<40s} {ms:9.1f} ms")


if __name__ == "__main__":
    main()
