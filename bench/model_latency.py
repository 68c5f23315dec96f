"""CPU/GPU latency of the G-HTT networks for the presets, against the compute bound of the same machine.

Measures (batch 1, eval mode, no grad): one 16-frame clip through P-Enc then A-Enc (over 1 clip and over a full
16-clip history), and a P.b prediction (P-Enc -> A-Enc -> A-Dec -> P-Dec) of 20 samples x 6 future clips (96 frames).
Random weights: latency does not depend on them.

Every measured call is also run once under torch.utils.flop_counter.FlopCounterMode (matmuls and attention), and the
matmul peak is measured in the same run (a large square matmul, same threads and precision). Each line prints the
median and the fastest time, the FLOPs, the bound = FLOPs / peak and the ratios median / bound and fastest / bound:
1.0 would be a call that does nothing but matmuls at peak speed. The machine load (os.getloadavg) is printed at the
start and the peak is measured again at the end; on a shared machine the figures are upper bounds.

    python bench/model_latency.py --presets small paper --threads 2
    OMP_WAIT_POLICY=PASSIVE python bench/model_latency.py --threads 2   # on a machine shared with other jobs
    python bench/model_latency.py --presets paper --threads 2 --profile   # + the top operators of one P.b call
"""

import argparse
import contextlib
import os
import statistics
import time

import torch
import torch._inductor.config as inductor_config
from torch.utils.flop_counter import FlopCounterMode

from ghtt_core.action_block import ActionBlock, ActionInputs
from ghtt_core.config import preset
from ghtt_core.pose_block import FEATURE_DIM, PoseBlock

PEAK_SIZE = 2048  # square matmul for the peak: large enough for every BLAS to reach its steady speed


def times_ms(function, repeats):
    function()  # warm-up (and compilation with --compile)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append((time.perf_counter() - start) * 1e3)
    return times


def flops_of(function) -> int:
    with FlopCounterMode(display=False) as counter:
        function()
    return counter.get_total_flops()


def matmul_peak_flops(device, dtype, repeats=10) -> float:
    """FLOP/s of the fastest of `repeats` PEAK_SIZE^3 matmuls (the best the BLAS gets on this machine now)."""
    a = torch.randn(PEAK_SIZE, PEAK_SIZE, device=device, dtype=dtype)
    b = torch.randn(PEAK_SIZE, PEAK_SIZE, device=device, dtype=dtype)

    def run():
        torch.mm(a, b)
        sync(device)

    return 2 * PEAK_SIZE**3 / (min(times_ms(run, repeats)) / 1e3)


def clip_inputs(clips, clip_len, device):
    features = torch.randn(1, clips, clip_len, FEATURE_DIM, device=device)
    mask = torch.ones_like(features, dtype=torch.bool)
    frame_valid = torch.ones(1, clips, clip_len, dtype=torch.bool, device=device)
    return features, mask, frame_valid


def preset_calls(name, device, samples, future_clips):
    """The measured calls of one preset (name -> function) and the parameter counts."""
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

    calls = {
        "P-Enc + A-Enc, 1 clip": one_clip(1),
        f"P-Enc + A-Enc, {cfg.action.max_clips}-clip history": one_clip(cfg.action.max_clips),
        f"P.b {samples} samples x {future_clips * clip_len} frames": prediction,
    }
    parameters = {
        "P-Block": sum(p.numel() for p in pose.parameters()),
        "A-Block": sum(p.numel() for p in action.parameters()),
    }
    return calls, parameters


def sync(device):
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def synced(function, device):
    def run():
        function()
        sync(device)

    return run


def print_profile(function, rows=12):
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        function()
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=rows))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", nargs="+", default=["small", "paper"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--future-clips", type=int, default=6)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--autocast", choices=("none", "bfloat16", "float16"), default="none",
                        help="run the networks under torch.autocast in this precision (GPU; bfloat16 also on CPU); "
                             "the peak is then measured in this precision")
    parser.add_argument("--compile", action="store_true",
                        help="torch.compile every measured call first, with inductor freezing (the weights are "
                             "constants at inference, so they are prepacked and bias + GELU fused into the matmuls)")
    parser.add_argument("--profile", action="store_true", help="print the top operators of one P.b call")
    args = parser.parse_args()
    # With more threads than free cores, OpenMP workers that spin between operators take the core from the thread
    # that has work: on a shared machine run with OMP_WAIT_POLICY=PASSIVE (docs/inference.md).
    print(f"load average at start (1, 5, 15 min): {' '.join(f'{x:.2f}' for x in os.getloadavg())}, "
          f"{os.cpu_count()} CPUs, OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}")
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    precision = torch.float32 if args.autocast == "none" else getattr(torch, args.autocast)
    peak = matmul_peak_flops(args.device, precision)
    print(f"device {args.device}, torch {torch.__version__}, {args.threads} thread(s), autocast {args.autocast}, "
          f"compile {args.compile}, median and fastest of {args.repeats}")
    print(f"matmul peak ({PEAK_SIZE}^3, {precision}): {peak / 1e9:.1f} GFLOP/s")
    if args.compile:
        inductor_config.freezing = True
    autocast = (torch.autocast(args.device.split(":")[0], dtype=precision)
                if args.autocast != "none" else contextlib.nullcontext())
    for name in args.presets:
        with autocast, torch.no_grad():
            calls, parameters = preset_calls(name, args.device, args.samples, args.future_clips)
            counts = ", ".join(f"{block} {count / 1e6:.2f} M" for block, count in parameters.items())
            print(f"[{name}] parameters: {counts}")
            print(f"  {'call':<36s} {'median':>9s} {'fastest':>9s} {'GFLOP':>8s} {'bound':>9s} {'ratio':>6s} "
                  f"{'best':>6s}")
            for what, function in calls.items():
                flops = flops_of(function)
                if args.compile:
                    function = torch.compile(function, dynamic=False)  # each preset compiles for its own sizes
                times = times_ms(synced(function, args.device), args.repeats)
                bound_ms = flops / peak * 1e3
                median = statistics.median(times)
                print(f"  {what:<36s} {median:7.1f}ms {min(times):7.1f}ms {flops / 1e9:8.2f} {bound_ms:7.1f}ms "
                      f"{median / bound_ms:6.2f} {min(times) / bound_ms:6.2f}")
            if args.profile:
                print_profile(synced(function, args.device))
    print(f"matmul peak at the end: {matmul_peak_flops(args.device, precision) / 1e9:.1f} GFLOP/s, load "
          f"{os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
