"""The demo's picture (matplotlib, no ROS): predicted vs ground-truth wrist trajectories of the pose path with the
fan of samples, and one camera frame with the estimated skeleton and the predicted wrist paths projected into it."""

from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")  # files only; the demo runs headless
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ghtt_core.estimator.camera import CameraIntrinsics, project  # noqa: E402
from ghtt_core.skeleton import DRAW_BONES, HAND_NAMES  # noqa: E402

WRIST = 0
HAND_COLOURS = ("tab:blue", "tab:red")  # left, right
CM_PER_M = 100.0


@dataclass
class PoseExample:
    """One pose-path prediction with its ground truth, all (.., 2, 21, 3) metres in the synthetic camera frame."""

    observed: np.ndarray  # (T_obs, 2, 21, 3) ground truth before the prediction
    future: np.ndarray  # (T_fut, 2, 21, 3) ground truth after it (may be shorter than the horizon)
    future_presence: np.ndarray  # (T_fut, 2)
    samples: np.ndarray  # (K, T, 2, 21, 3) predicted; sample 0 deterministic
    hand_present: np.ndarray  # (2,)
    title: str


@dataclass
class CameraExample:
    rgb: np.ndarray  # (H, W, 3) uint8
    intrinsics: CameraIntrinsics
    joints: np.ndarray  # (2, 21, 3) estimated, metres, camera frame
    presence: np.ndarray  # (2,)
    samples: np.ndarray | None  # (K, T, 2, 21, 3) camera-path prediction made at or before this frame
    hand_present: np.ndarray | None
    title: str


def _plot_pose_projection(axis, example: PoseExample, dims, labels):
    a, b = dims
    for hand in range(2):
        colour = HAND_COLOURS[hand]
        observed = example.observed[:, hand, WRIST] * CM_PER_M
        axis.plot(observed[:, a], observed[:, b], color="0.4", lw=1.5,
                  label="observed (ground truth)" if hand == 0 else None)
        if example.hand_present[hand]:
            for k, sample in enumerate(example.samples[:, :, hand, WRIST] * CM_PER_M):
                axis.plot(sample[:, a], sample[:, b], color=colour, lw=2.0 if k == 0 else 0.6,
                          alpha=1.0 if k == 0 else 0.35,
                          label=f"{HAND_NAMES[hand]}: predicted (sample 0 bold)" if k == 0 else None)
        future = example.future[:, hand, WRIST][example.future_presence[:, hand]] * CM_PER_M
        if len(future):
            axis.plot(future[:, a], future[:, b], color="k", lw=1.5, ls="--",
                      label="future (ground truth)" if hand == 0 else None)
        axis.plot(observed[-1:, a], observed[-1:, b], "o", color=colour, ms=6)
    axis.set_xlabel(labels[0])
    axis.set_ylabel(labels[1])
    axis.set_aspect("equal", adjustable="datalim")
    axis.grid(alpha=0.3)


def _plot_camera(axis, example: CameraExample):
    axis.imshow(example.rgb)
    for hand in range(2):
        if not example.presence[hand]:
            continue
        pixels = project(example.joints[hand], example.intrinsics)
        for parent, child in DRAW_BONES:
            axis.plot(pixels[[parent, child], 0], pixels[[parent, child], 1], color=HAND_COLOURS[hand], lw=1.5)
        axis.plot(pixels[:, 0], pixels[:, 1], ".", color="w", ms=3)
        if example.samples is not None and example.hand_present[hand]:
            for k, sample in enumerate(example.samples[:, :, hand, WRIST]):
                path = project(sample, example.intrinsics)
                axis.plot(path[:, 0], path[:, 1], color="yellow", lw=1.8 if k == 0 else 0.5, alpha=0.9 if k == 0
                          else 0.4)
    height, width = example.rgb.shape[:2]
    axis.set_xlim(0, width)
    axis.set_ylim(height, 0)
    axis.set_axis_off()
    axis.set_title(example.title, fontsize=9)


def save_demo_figure(path, pose: PoseExample | None, camera: CameraExample | None):
    """Writes the PNG; a path that has no example gets a panel that says so (the figure always has 3 panels)."""
    figure, axes = plt.subplots(1, 3, figsize=(17, 5.5))
    if pose is not None:
        _plot_pose_projection(axes[0], pose, (0, 1), ("x (cm, right)", "y (cm, down)"))
        axes[0].invert_yaxis()
        axes[0].set_title(f"pose path, front view\n{pose.title}", fontsize=9)
        axes[0].legend(fontsize=7, loc="best")
        _plot_pose_projection(axes[1], pose, (0, 2), ("x (cm, right)", "z (cm, depth)"))
        axes[1].set_title("pose path, top view (wrists)", fontsize=9)
    else:
        for axis in axes[:2]:
            axis.text(0.5, 0.5, "no pose-path prediction", ha="center", va="center")
            axis.set_axis_off()
    if camera is not None:
        _plot_camera(axes[2], camera)
    else:
        axes[2].text(0.5, 0.5, "no camera frame with a hand", ha="center", va="center")
        axes[2].set_axis_off()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
