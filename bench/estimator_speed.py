"""Estimator figures on the real fixture videos: detection rate, reprojection error, wrist jitter, ms per frame.

Usage: python bench/estimator_speed.py [--max-frames N] [--resnet]
(--resnet also times the untrained ResNet-18 estimator at the paper's 480x270 input.)
"""

import argparse
from pathlib import Path

import numpy as np

from ghtt_core.estimator.camera import CameraIntrinsics, project
from ghtt_core.estimator.media import iter_rgb_frames
from ghtt_core.estimator.mediapipe_backend import MediaPipeHandEstimator
from ghtt_core.estimator.offline import estimate_frames

VIDEOS = Path(__file__).resolve().parents[1] / ".." / "shared" / "fixtures" / "real_hands" / "videos"


def reprojection_errors_px(poses):
    cam = CameraIntrinsics.from_matrix(poses.intrinsics, *poses.image_size)
    return np.array([
        np.linalg.norm(project(poses.joints[t, side], cam) - poses.keypoints_2d[t, side], axis=-1).mean()
        for t, side in zip(*np.nonzero(poses.presence))
    ])


def report(name, poses):
    errors = reprojection_errors_px(poses)
    side = int(np.argmax(poses.presence.sum(axis=0)))
    jitter = poses.wrist_jitter(side) * 1000
    ms = poses.seconds_per_frame * 1000
    print(f"{name}: {poses.num_frames} frames {poses.image_size[0]}x{poses.image_size[1]}")
    print(f"  detection rate {poses.presence.any(axis=1).mean():.1%}, frames per side (left, right) "
          f"{poses.presence.sum(axis=0).tolist()}")
    print(f"  reprojection error px: median {np.median(errors):.1f}, p90 {np.percentile(errors, 90):.1f}")
    print(f"  wrist jitter (second difference) mm: median {np.median(jitter):.1f}, p90 {np.percentile(jitter, 90):.1f}")
    print(f"  ms/frame: median {np.median(ms):.1f}, p90 {np.percentile(ms, 90):.1f}")


def time_resnet(repeats=10):
    import time

    import torch

    from ghtt_core.estimator.resnet_estimator import ResNetHandEstimator, ResNetHandObjectNet

    estimator = ResNetHandEstimator(ResNetHandObjectNet())
    image = np.random.default_rng(0).integers(0, 255, (720, 1280, 3), dtype=np.uint8)
    estimator.estimate(image)
    start = time.perf_counter()
    for _ in range(repeats):
        estimator.estimate(image)
    print(f"resnet18 estimator (480x270, {torch.get_num_threads()} threads): "
          f"{1000 * (time.perf_counter() - start) / repeats:.1f} ms/frame")


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--max-frames", type=int)
    parser.add_argument("--resnet", action="store_true")
    args = parser.parse_args()
    for video in sorted(VIDEOS.glob("*.mp4")):
        with MediaPipeHandEstimator() as estimator:
            poses = estimate_frames(estimator, iter_rgb_frames(video, args.max_frames), fps=25.0)
        report(video.name, poses)
    if args.resnet:
        time_resnet()


if __name__ == "__main__":
    main()
