"""Calibration of the recognition scores a planner gates on, measured on the streaming pipeline as a robot runs it.

    .venv/bin/python bench/action_calibration.py --checkpoint ghtt_core/assets/ghtt_small.pt \
        --data /work/main/data/synthetic [--split test] [--views right,top] [--out runs/calibration]

Every sequence of the split's views goes through ghtt_core.pipeline.StreamingPipeline on its estimated poses (as the
ghtt_pipeline node gets them, with the node's default open-set settings unless given), with the current action's
object as the object label. Each result's top-1 is judged against the ground truth at its last observed frame: the
action whose segment contains that frame, else "idle" (the gaps between actions: hands at rest). Written to OUT:
calibration.json (ECE, reliability bins, idle precision / recall, counts) and reliability.png. Three views of the
same results:

- closed set, inside actions: the model's own top-1 (without idle / unknown) on results inside a labelled action;
- closed set, all results: the same scores, where a result in a gap can only be wrong (what a planner gets without
  the open-set outcomes);
- open set, all results: the published top-1 (idle / unknown included) against the truth including idle.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from ghtt_core.data.storage import StoredDataset
from ghtt_core.evaluate.calibration import plot_reliability, reliability
from ghtt_core.open_set import IDLE
from ghtt_core.pipeline import FrameInput, PipelineConfig, StreamingPipeline

_NS_PER_S = 1_000_000_000


def node_inputs(sequence):
    """(truth label, FrameInput) per frame of a sequence as the ghtt_pipeline node gets it: the estimated poses where
    the data has them, stamped at the sequence's rate, the current action's object as object label; the truth is the
    action containing the frame, else IDLE."""
    joints = sequence.estimated_joints if sequence.estimated_joints is not None else sequence.joints
    presence = sequence.estimated_presence if sequence.estimated_presence is not None else sequence.presence
    for frame in range(sequence.num_frames):
        action = next((segment for segment in sequence.actions if segment.start <= frame < segment.end), None)
        yield (IDLE if action is None else action.label), FrameInput(
            stamp_ns=_NS_PER_S + round(frame * _NS_PER_S / sequence.fps), joints=joints[frame],
            presence=presence[frame], object_label="" if action is None else action.noun, frame_id="camera")


def _results(model, config, sequence):
    """(truth label, closed-set top-1 (label, score), published top-1 (label, score)) per result of one sequence.
    Two pipelines see the same frames: one as configured, one with the open-set outcomes off (the model's own
    softmax scores, which the open-set outcome rescales)."""
    published = StreamingPipeline(model, config, "cpu")
    closed_set = StreamingPipeline(model, dataclasses.replace(config, idle_speed_m_s=0.0, min_action_score=0.0), "cpu")
    rows = []
    for label, frame_input in node_inputs(sequence):
        result, closed = published.push(frame_input), closed_set.push(frame_input)
        if result is None or result.recognition is None:
            continue
        top, closed_top = result.recognition.hypotheses[0], closed.recognition.hypotheses[0]
        rows.append((label, (closed_top.label, closed_top.score), (top.label, top.score)))
    return rows


def measure(checkpoint, data, split, views, config, bins):
    dataset = StoredDataset(data)
    sequences = dataset.sequences(split, views)
    if not sequences:
        raise ValueError(f"{data}: no sequences in split {split!r} for views {views}")
    model_pipeline = StreamingPipeline.from_checkpoint(checkpoint, "cpu", config)
    model = model_pipeline.inference.model
    rows = [row for sequence in sequences for row in _results(model, config, sequence)]
    truth = np.array([row[0] for row in rows])
    closed_label = np.array([row[1][0] for row in rows])
    closed_score = np.array([row[1][1] for row in rows])
    open_label = np.array([row[2][0] for row in rows])
    open_score = np.array([row[2][1] for row in rows])
    inside = truth != IDLE
    curves = {
        "closed set, inside actions": reliability(closed_score[inside], closed_label[inside] == truth[inside], bins),
        "closed set, all results": reliability(closed_score, closed_label == truth, bins),
        "open set (idle / unknown), all results": reliability(open_score, open_label == truth, bins),
    }
    said_idle = open_label == IDLE
    summary = {
        "checkpoint": str(checkpoint), "model_id": model_pipeline.model_id, "data": str(data), "split": split,
        "views": views, "sequences": len(sequences), "results": len(rows), "results_in_gaps": int((~inside).sum()),
        "config": {key: getattr(config, key) for key in ("idle_speed_m_s", "min_action_score", "max_clips")},
        "accuracy": {"closed_set_inside_actions": round(float((closed_label == truth)[inside].mean()), 4),
                     "open_set_all_results": round(float((open_label == truth).mean()), 4)},
        "idle": {"said": int(said_idle.sum()), "precision": round(float((truth[said_idle] == IDLE).mean()), 4)
                 if said_idle.any() else None,
                 "recall": round(float(said_idle[~inside].mean()), 4) if (~inside).any() else None,
                 "said_inside_actions": round(float(said_idle[inside].mean()), 4)},
        "unknown_said": int((open_label == "unknown").sum()),
        "calibration": {name: curve.to_dict() for name, curve in curves.items()},
    }
    return summary, curves


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", type=Path, required=True, help="full checkpoint (ghtt train-action)")
    parser.add_argument("--data", type=Path, required=True, help="dataset folder (ghtt format) with the split")
    parser.add_argument("--split", default="test", help="recording split (default test)")
    parser.add_argument("--views", default="right,top",
                        help="comma-separated views (default right,top: the views the shipped model never trained on)")
    parser.add_argument("--idle-speed", type=float, default=PipelineConfig.idle_speed_m_s,
                        help="idle_speed_m_s of the pipeline (default: the node's)")
    parser.add_argument("--min-action-score", type=float, default=PipelineConfig.min_action_score,
                        help="min_action_score of the pipeline (default: the node's)")
    parser.add_argument("--max-clips", type=int, default=PipelineConfig.max_clips,
                        help="observation length in clips (default: the node's max_clips)")
    parser.add_argument("--bins", type=int, default=10, help="score bins of the reliability diagram")
    parser.add_argument("--out", type=Path, default=Path("runs/calibration"), help="output folder")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    config = PipelineConfig(num_samples=1, horizon_frames=16, idle_speed_m_s=args.idle_speed,
                            min_action_score=args.min_action_score, max_clips=args.max_clips)
    started = time.perf_counter()
    try:
        summary, curves = measure(args.checkpoint, args.data, args.split, args.views.split(","), config, args.bins)
    except (ValueError, OSError) as error:
        print(f"action_calibration: error: {error}", file=sys.stderr)
        return 2
    summary["seconds"] = round(time.perf_counter() - started, 1)
    summary["command"] = " ".join(["bench/action_calibration.py", *(argv if argv is not None else sys.argv[1:])])
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "calibration.json").write_text(json.dumps(summary, indent=1) + "\n")
    plot_reliability(args.out / "reliability.png", curves,
                     f"{summary['model_id']}: top-1 score calibration, {args.data.name} {args.split} "
                     f"({args.views}), {summary['results']} results")
    print(json.dumps({key: summary[key] for key in ("model_id", "results", "results_in_gaps", "accuracy", "idle",
                                                    "unknown_said")}, indent=1))
    print({name: round(curve.ece, 4) for name, curve in curves.items()})
    print(f"wrote {args.out / 'calibration.json'} and {args.out / 'reliability.png'} in {summary['seconds']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
