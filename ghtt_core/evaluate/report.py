"""The benchmark report: results.json, report.md (tables shaped like the paper's Tables 1-4) and plots (Agg backend).

Every pose number is in mm as (left, right); the sample counts behind each number are in results.json and, per table,
in report.md.
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend is chosen first)
import numpy as np  # noqa: E402
import torch  # noqa: E402

RECOGNITION_METRICS = (("input_ra", "input_pa", "input poses (estimator)"),
                       ("refined_ra", "refined_pa", "G-HTT refinement"))
DIVERSITY_TABLE_METHODS = ("G-HTT P.a", "G-HTT P.b")


def _mm(pair: dict) -> str:
    values = ["-" if value is None else f"{value:.1f}" for value in pair["mean"]]
    return f"{values[0]} / {values[1]}"


def _counts(pair: dict) -> str:
    return f"{pair['count'][0]} / {pair['count'][1]}"


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _fid(value) -> str:
    return "-" if value is None else f"{value:.2f}"


def recognition_table(results: dict) -> str:
    """Table 1: action accuracy and MPJPE-RA / MPJPE-PA of input and refined poses, overall and per test view."""
    by_view = results["recognition"]["by_view"]
    methods = list(by_view["all"]["accuracy"])
    header = ["view", "sequences", *[f"accuracy {name} (%)" for name in methods],
              *[f"{label} {kind} (mm, L / R)" for ra, pa, label in RECOGNITION_METRICS for kind in ("RA", "PA")],
              "frames counted (L / R)"]
    rows = []
    for view, row in by_view.items():
        rows.append([view, str(row["sequences"]), *[f"{100 * row['accuracy'][name]:.1f}" for name in methods],
                     *[_mm(row["mpjpe"][key]) for ra, pa, _ in RECOGNITION_METRICS for key in (ra, pa)],
                     _counts(row["mpjpe"]["input_ra"])])
    return _table(header, rows)


def prediction_table(protocol: dict, methods=None, with_deterministic: bool = True) -> str:
    """Tables 2-4: ADE / FDE (mean and best of the random samples), APD and FID per method."""
    header = ["method", "samples", "ADE mean", "ADE best", "FDE mean", "FDE best", "APD", "FID",
              "FID features (gen / GT)", "windows counted (L / R)"]
    if with_deterministic:
        header[2:2] = ["deterministic ADE", "deterministic FDE"]
    rows = []
    for name, method in protocol["methods"].items():
        if methods is not None and name not in methods:
            continue
        row = [name, str(method["random_samples"] or "1 (deterministic)"),
               _mm(method["ade_mean"]), _mm(method["ade_best"]), _mm(method["fde_mean"]), _mm(method["fde_best"]),
               _mm(method["apd"]), _fid(method["fid"]), " / ".join(map(str, method["fid_samples"])),
               _counts(method["deterministic_ade"])]
        if with_deterministic:
            row[2:2] = [_mm(method["deterministic_ade"]), _mm(method["deterministic_fde"])]
        rows.append(row)
    return _table(header, rows)


def write_markdown(results: dict, path: Path, plots: list[str]):
    preset = results["preset"]
    fid_net = results["fid_net"]
    lines = [
        "# ghtt benchmark report",
        "",
        f"Data `{results['data']}`, preset `{preset['name']}`, seed {results['seed']}, train views "
        f"{results['views']['train']}, test views {results['views']['test']}; {results['seconds']:.0f} s.",
        "All distances in mm as (left / right hand). Samples: sample 0 = deterministic pass, then "
        f"{preset['num_random_samples']} random samples per window (ADE/FDE mean and best, APD and FID use the random "
        "samples; deterministic baselines have one sample).",
        "",
        f"FID network: top-1 accuracy {100 * fid_net['train_accuracy']:.1f} % on {fid_net['train_windows']} training "
        f"windows, {100 * fid_net['test_accuracy']:.1f} % on {fid_net['test_windows']} test windows "
        f"({fid_net['epochs']} epochs).",
        "",
        "## Table 1: recognition (whole trimmed actions) and pose refinement",
        "",
        recognition_table(results),
    ]
    for name, protocol in results["prediction"].items():
        lines += ["", f"## Prediction, windows with >= {protocol['min_remaining_frames']} frames left ({name}): "
                  f"{protocol['windows']} windows", "", prediction_table(protocol)]
    lines += ["", "## Table 4 shape: hierarchy vs flattened (2 s windows)", "",
              prediction_table(results["prediction"]["2s"], methods=[
                  *DIVERSITY_TABLE_METHODS, *[n for n in results["prediction"]["2s"]["methods"] if "flattened" in n]],
                  with_deterministic=False)]
    lines += ["", "## Models", "", "```json", json.dumps(results["checkpoints"], indent=1, default=str), "```", "",
              "## Plots", ""]
    lines += [f"![{plot}]({plot})" for plot in plots]
    path.write_text("\n".join(lines) + "\n")


def _plot_horizon(results: dict, path: Path):
    figure, axis = plt.subplots(figsize=(7, 4))
    for name, method in results["prediction"]["1s"]["methods"].items():
        curve = np.array([[np.nan if v is None else v for v in frame] for frame in method["horizon_mm"]])
        axis.plot(np.arange(1, len(curve) + 1) / 30.0, np.nanmean(curve, axis=1), label=name)
    axis.set_xlabel("horizon (s)")
    axis.set_ylabel("deterministic error (mm, mean of both hands)")
    axis.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def _plot_confusion(confusion: torch.Tensor, labels: list[str], path: Path):
    figure, axis = plt.subplots(figsize=(8, 7))
    rates = confusion.double() / confusion.sum(dim=1, keepdim=True).clamp_min(1)
    image = axis.imshow(rates.numpy(), vmin=0, vmax=1, cmap="Blues")
    axis.set_xticks(range(len(labels)), labels, rotation=90, fontsize=6)
    axis.set_yticks(range(len(labels)), labels, fontsize=6)
    axis.set_xlabel("predicted")
    axis.set_ylabel("true")
    axis.set_title("G-HTT recognition (row-normalised)")
    figure.colorbar(image)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def _plot_trajectories(arrays: dict, path: Path, window_index: int, hand: int, joint: int = 0):
    """Right-hand wrist x/y over time: observation, ground-truth future, every method's samples (the fan)."""
    windows = arrays["windows"]
    window = windows.select([window_index])
    observed = window.observed_joints[0, :, hand, joint].numpy()
    valid = window.future_valid[0].numpy()
    truth = window.future_joints[0, valid, hand, joint].numpy()
    generator = torch.Generator().manual_seed(0)
    predictors = [p for p in arrays["predictors"] if p.name in ("constant velocity", *DIVERSITY_TABLE_METHODS,
                                                                "flattened, std x 10")]
    figure, axes = plt.subplots(1, len(predictors), figsize=(4 * len(predictors), 4), squeeze=False)
    for axis, predictor in zip(axes[0], predictors):
        samples = predictor.predict(window, 11 if predictor.stochastic else 1, generator).joints[0].cpu()
        for index, sample in enumerate(samples):
            points = sample[valid, hand, joint].numpy()
            axis.plot(points[:, 0], points[:, 1], color="tab:orange" if index else "tab:red", alpha=0.5 if index else 1,
                      lw=1)
        axis.plot(observed[:, 0], observed[:, 1], color="black", lw=2, label="observed")
        axis.plot(truth[:, 0], truth[:, 1], color="tab:green", lw=2, label="ground truth")
        axis.set_title(predictor.name, fontsize=8)
        axis.set_xlabel("x (m, camera)")
        axis.set_ylabel("y (m, camera)")
        axis.axis("equal")
    axes[0][0].legend(fontsize=7)
    figure.suptitle("wrist trajectory: red = deterministic, orange = random samples")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def write_report(results: dict, arrays: dict, out_dir) -> list[Path]:
    """Write results.json, report.md and the plots into out_dir; returns the written paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "results.json").write_text(json.dumps(results, indent=1, default=str))
    plots = ["error_vs_horizon.png", "confusion_matrix.png", "trajectories.png"]
    _plot_horizon(results, out_dir / plots[0])
    _plot_confusion(arrays["confusion"], results["recognition"]["classes"], out_dir / plots[1])
    longest = int(arrays["windows"].future_valid.sum(dim=1).argmax())
    _plot_trajectories(arrays, out_dir / plots[2], longest, hand=1)
    write_markdown(results, out_dir / "report.md", plots)
    return [out_dir / "results.json", out_dir / "report.md", *(out_dir / plot for plot in plots)]
