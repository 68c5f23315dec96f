"""The stream evaluation report: report.json (scores, series, run details), report.md (tables) and report.png
(recognition over time, refinement error over time, prediction error by horizon)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend is chosen first)
import numpy as np  # noqa: E402

from ghtt_core.evaluate.stream_scoring import StreamEvaluation  # noqa: E402

_NS_PER_S = 1e9


def _pair(summary):
    if not summary:
        return "-"
    values = ["-" if value is None else f"{value:.1f}" for value in summary["mean"]]
    return f"{values[0]} / {values[1]} (n = {summary['count'][0]} / {summary['count'][1]})"


def _percent(value):
    return "-" if value is None else f"{100 * value:.1f} %"


def _markdown(title, scores, details):
    lines = [f"# {title}", ""]
    lines += [f"- {key}: {value}" for key, value in details.items()]
    lines += [f"- frames: {scores['frames']}, labelled actions: {scores['actions']}, results: {scores['results']}", ""]
    refinement = scores.get("refinement") or {}
    if refinement:
        lines += ["## Refinement (mm, left / right)", "", "| poses | MPJPE | MPJPE-RA | MPJPE-PA |",
                  "|---|---|---|---|"]
        lines += [f"| {name} | {_pair(r['mpjpe'])} | {_pair(r['mpjpe_ra'])} | {_pair(r['mpjpe_pa'])} |"
                  for name, r in refinement.items()]
        lines.append("")
    recognition = scores.get("recognition")
    if recognition:
        over_time, end = recognition["over_time"], recognition["end_of_action"]
        lines += ["## Action recognition", "",
                  f"- over time: {_percent(over_time['accuracy'])} of {over_time['count']} recognitions inside actions",
                  f"- at the end of each action: {_percent(end['accuracy'])} of {end['count']} actions "
                  f"({end['actions_without_result']} actions had no recognition inside them)",
                  "- by fraction of the action observed: " + ", ".join(
                      f"{100 * i // recognition['by_progress']['bins']}%+: {_percent(a)} (n={n})"
                      for i, (a, n) in enumerate(zip(recognition["by_progress"]["accuracy"],
                                                     recognition["by_progress"]["count"]))), ""]
    prediction = scores.get("prediction")
    if prediction:
        lines += ["## Motion prediction (mm, left / right)", "", "| metric | value |", "|---|---|"]
        lines += [f"| {name} | {_pair(prediction[name])} |"
                  for name in ("ade_mean", "ade_best", "fde_mean", "fde_best", "ade_sample0", "apd")]
        if "zero_velocity_ade" in prediction:
            lines += [f"| {name} (baseline: last input pose held) | {_pair(prediction[name])} |"
                      for name in ("zero_velocity_ade", "zero_velocity_fde")]
        lines += ["", f"{prediction['predictions']} predictions; the zero-velocity rows are scored on the same "
                      "frames as G-HTT's ade_mean / fde_mean, which they should be compared with.", ""]
    latency = scores["latency_ms"]
    if latency["count"]:
        lines += ["## Result latency (wall clock)", "", f"p50 {latency['p50']:.1f} ms, p95 {latency['p95']:.1f} ms, "
                  f"max {latency['max']:.1f} ms over {latency['count']} results: {details.get('latency', '')}. The "
                  "one latency of this report (the nodes' own latency_ms on /diagnostics is on the sim-time clock "
                  "in a replay).", ""]
    problems = details.get("problems") or []
    if problems:
        lines += ["## Problems (the report is partial)", ""] + [f"- {p}" for p in problems] + [""]
    lines += ["Plots: report.png. All numbers: report.json.", ""]
    return "\n".join(lines)


def _plot(path, series, title):
    stamps = np.asarray(series["stamps_ns"], np.int64)
    start = stamps[0] if stamps.size else 0
    figure, axes = plt.subplots(3, 1, figsize=(11, 9))
    recognition_axis, pose_axis, horizon_axis = axes
    labels = sorted({a["label"] for a in series["actions"]} | {e["predicted"] for e in series["recognition"]})
    row = {label: i for i, label in enumerate(labels)}
    for span in series["actions"]:
        recognition_axis.plot([(span["start_ns"] - start) / _NS_PER_S, (span["end_ns"] - start) / _NS_PER_S],
                              [row[span["label"]]] * 2, color="0.6", linewidth=8, solid_capstyle="butt")
    for entry in series["recognition"]:
        correct = entry["predicted"] == entry["truth"]
        recognition_axis.plot((entry["stamp_ns"] - start) / _NS_PER_S, row[entry["predicted"]],
                              "o" if correct else "x", color="tab:green" if correct else "tab:red")
    recognition_axis.set_yticks(range(len(labels)), labels, fontsize=7)
    recognition_axis.set_title("recognition: ground-truth actions (grey bars), top-1 (green o correct, red x wrong)")
    recognition_axis.set_xlabel("time since stream start (s)")
    seconds = (stamps - start) / _NS_PER_S
    for key, style in (("input_mpjpe", "0.6"), ("refined_mpjpe", "tab:blue")):
        if key in series:
            values = np.array(series[key], dtype=np.float64)
            pose_axis.plot(seconds, np.nanmean(values, axis=1), color=style, label=key.replace("_", " "),
                           linewidth=0.8)
    pose_axis.set_ylabel("MPJPE (mm, mean of hands)")
    pose_axis.set_xlabel("time since stream start (s)")
    pose_axis.legend(loc="upper right")
    if series.get("error_by_horizon"):
        curve = np.array(series["error_by_horizon"], dtype=np.float64)
        frames = np.arange(1, len(curve) + 1)
        for hand, name in enumerate(("left", "right")):
            horizon_axis.plot(frames, curve[:, hand], label=f"{name} hand")
        horizon_axis.legend()
    horizon_axis.set_xlabel("predicted frame")
    horizon_axis.set_ylabel("displacement error (mm, mean of samples)")
    horizon_axis.set_title("prediction error by horizon")
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)


def write_stream_report(directory, evaluation: StreamEvaluation, title: str, details: dict) -> dict:
    """Writes report.json, report.md and report.png into directory; details: run facts (mode, bag, throughput,
    problems, ...) copied into both text files. Returns {kind: path}."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = {"json": directory / "report.json", "markdown": directory / "report.md", "plot": directory / "report.png"}
    with warnings.catch_warnings():  # frames without any scored hand are all-NaN rows of the per-frame curves
        warnings.filterwarnings("ignore", "Mean of empty slice", RuntimeWarning)
        _plot(paths["plot"], evaluation.series, title)
    paths["json"].write_text(json.dumps({"title": title, "details": details, "scores": evaluation.scores,
                                         "series": evaluation.series}, indent=1))
    paths["markdown"].write_text(_markdown(title, evaluation.scores, details))
    return paths
