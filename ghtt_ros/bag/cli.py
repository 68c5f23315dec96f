"""`ghtt-bag`: record, play, inspect and build rosbag2 bags, and evaluate the pipeline on them.

Docs: docs/bags.md, docs/bag-evaluation.md. Examples:

    ghtt-bag record -o runs/my_bag /hands --duration 30
    ghtt-bag play runs/my_bag --rate 0.5 --remap /hands:=/robot/hands
    ghtt-bag info runs/my_bag
    ghtt-bag from-dataset synthetic -o runs/eval_bag --seed 0 --actions 3
    ghtt-bag evaluate runs/eval_bag -o runs/eval --mode both
    ghtt-bag from-dataset h2o --root data/h2o --view cam4 --input images -o runs/h2o_images_bag
    ghtt-bag evaluate runs/h2o_images_bag -o runs/h2o_eval     # camera path: hand_estimator -> ghtt_pipeline
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from rosbags.rosbag2 import WriterError

from ghtt_core.cli_errors import USER_ERRORS, ArgumentParser, run_reporting_user_errors
from ghtt_ros.bag.io import STORAGES, BagError, register_commands

# Exit status of `evaluate` when the bag could be read only in part, or live and offline scores differ.
EXIT_PARTIAL, EXIT_MISMATCH = 3, 4
DEFAULT_TOLERANCE_MM = 1e-6
_REPORTED_ESTIMATOR_PARAMETERS = ("backend", "estimator_checkpoint", "model_complexity", "default_horizontal_fov_deg",
                                  "use_camera_info")


# ---- from-dataset -----------------------------------------------------------------------------------------------

def load_sequence(source, root=None, split=None, view=None, name=None, seed=0, actions=3, fine_grained_dir=None):
    """One HandSequence: `synthetic` generates one recording (seed, actions, view, as the demo does); `stored` reads a
    dataset in the ghtt format (`ghtt data generate` / `ghtt data convert` output); h2o, fpha, assemblyhands read the
    released dataset with its reader. name picks a sequence (default: the first). fine_grained_dir: assemblyhands
    only, Assembly101's fine-grained-annotations folder (the actions; without it the sequence has none)."""
    if fine_grained_dir is not None and source != "assemblyhands":  # before generating or reading anything
        raise ValueError(f"--fine-grained-dir is for source assemblyhands, not {source!r}")
    if source == "synthetic":
        from ghtt_ros.demo.sources import SyntheticActionSource

        return SyntheticActionSource(seed, actions, 0, view=view or "front").sequence
    if root is None:
        raise ValueError(f"source {source!r} needs the dataset folder (--root)")
    if source == "stored":
        from ghtt_core.data.storage import StoredDataset

        sequences = StoredDataset(root).sequences(split, views=[view] if view else None)
    else:
        from ghtt_core.data.cli import read_released_dataset

        sequences = read_released_dataset(source, root, split, view, fine_grained_dir)
    if not sequences:
        raise ValueError(f"no sequences in {root} (source {source}, split {split}, view {view})")
    if name is None:
        return sequences[0]
    for sequence in sequences:
        if sequence.name == name:
            return sequence
    raise ValueError(f"no sequence named {name!r}; available: {[s.name for s in sequences][:20]}")


def _from_dataset(args):
    from ghtt_ros.bag.dataset import write_dataset_bag

    sequence = load_sequence(args.source, args.root, args.split, args.view, args.sequence, args.seed, args.actions,
                             args.fine_grained_dir)
    counts = write_dataset_bag(sequence, args.output, input_kind=args.input, storage=args.storage,
                               object_labels=not args.no_object_labels)
    print(f"wrote {args.output}: sequence {sequence.name!r}, {sequence.num_frames} frames, "
          f"{len(sequence.actions)} actions; {counts}")
    return 0


# ---- evaluate ---------------------------------------------------------------------------------------------------

def _input_description(bag, estimator_params):
    if bag.input_kind == "poses":
        return "poses: /hands (ghtt/TwoHandPose) -> ghtt_pipeline"
    extras = " + ".join(topic for topic in bag.input_topics if topic != "/image")
    return (f"images: /image{' + ' + extras if extras else ''} -> hand_estimator (backend "
            f"{estimator_params['backend']}) -> ghtt_pipeline")


def evaluate_bag(bag_path, output, modes, checkpoint, config, device="cpu", rate=float("inf"), timeout_s=60.0,
                 tolerance_mm=DEFAULT_TOLERANCE_MM, input_kind="auto", estimator_params=None):
    """Runs each mode over the bag, scores it and writes OUTPUT/<mode>/report.{json,md,png}; with both modes also
    OUTPUT/comparison.json. input_kind: "poses" (/hands), "images" (/image through the hand_estimator) or "auto"
    (poses when the bag has them); estimator_params: hand_estimator parameter values for image bags. Returns
    {"reports": {mode: paths}, "scores": {mode: scores}, "problems": [...], "differences": [...] or None,
    "throughput": {mode: x real time}, "input": what was evaluated}."""
    from ghtt_core.evaluate.stream_report import write_stream_report
    from ghtt_core.evaluate.stream_scoring import score_differences, score_stream
    from ghtt_ros.bag.evaluation import estimator_parameters, read_evaluation_bag, run_offline
    from ghtt_ros.bag.live import run_live

    output = Path(output)
    if "live" in modes and (output / "live" / "outputs_bag").exists():
        raise BagError(f"{output / 'live' / 'outputs_bag'} already exists (from an earlier run): choose a new --output")
    bag = read_evaluation_bag(bag_path, input_kind)
    estimator_params = estimator_parameters(**(estimator_params or {}))
    described = _input_description(bag, estimator_params)
    summary = {"reports": {}, "scores": {}, "problems": list(bag.problems), "differences": None, "throughput": {},
               "input": described}
    for mode in modes:
        if mode == "live":
            run = run_live(bag, checkpoint, config, output / "live" / "outputs_bag", device, rate, timeout_s,
                           startup_timeout_s=timeout_s, estimator_params=estimator_params)
        else:
            run = run_offline(bag, checkpoint, config, device, estimator_params)
        problems = bag.problems + run.details.pop("problems", [])
        throughput = bag.duration_s / run.wall_s if run.wall_s > 0 else None
        estimator = ({"estimator": {key: estimator_params[key] for key in _REPORTED_ESTIMATOR_PARAMETERS}}
                     if bag.input_kind == "images" else {})
        details = {"mode": mode, "input": described, **estimator, "bag": str(bag_path),
                   "checkpoint": str(checkpoint), "stream_duration_s": round(bag.duration_s, 3),
                   "wall_s": round(run.wall_s, 3), "throughput_x_real_time": throughput, **run.details,
                   "problems": problems}
        if bag.truth is None:
            problems.append("no ground truth in the bag: nothing to score")
            summary["reports"][mode] = {"json": _write_json(output / mode / "report.json", details)}
            continue
        input_poses = run.input_poses if run.input_poses is not None else bag.input_poses()
        evaluation = score_stream(bag.truth, run.outputs, input_poses)
        summary["reports"][mode] = write_stream_report(output / mode, evaluation, f"ghtt bag evaluation ({mode})",
                                                       details)
        summary["scores"][mode] = evaluation.scores
        summary["throughput"][mode] = throughput
        summary["problems"] = sorted(set(summary["problems"]) | set(problems))
    if {"live", "offline"} <= set(summary["scores"]):
        summary["differences"] = score_differences(summary["scores"]["live"], summary["scores"]["offline"],
                                                   tolerance_mm)
        _write_json(output / "comparison.json", {"tolerance_mm": tolerance_mm, "equal": not summary["differences"],
                                                 "differences": summary["differences"]})
    return summary


def _write_json(path, content):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(content, indent=1))
    return path


def _evaluate(args):
    import torch

    from ghtt_core.pipeline import PipelineConfig
    from ghtt_ros.nodes.pipeline import checkpoint_path

    torch.set_num_threads(1)  # as the nodes do: torch's pool would fight the executor threads

    config = PipelineConfig(mode=args.prediction_mode, num_samples=args.num_samples,
                            horizon_frames=args.horizon_frames, seed=args.seed)
    modes = ("live", "offline") if args.mode == "both" else (args.mode,)
    estimator_params = {"backend": args.estimator, "estimator_checkpoint": args.estimator_checkpoint,
                        "model_complexity": args.model_complexity}
    summary = evaluate_bag(args.bag, args.output, modes, checkpoint_path(args.checkpoint), config, args.device,
                           args.rate, args.timeout, args.tolerance, args.input, estimator_params)
    print(f"evaluated input: {summary['input']}")
    for mode, paths in summary["reports"].items():
        throughput = summary["throughput"].get(mode)
        speed = f", {throughput:.1f}x real time" if throughput else ""
        print(f"[{mode}] report: {paths.get('markdown', paths['json'])}{speed}")
    for problem in summary["problems"]:
        print(f"problem: {problem}", file=sys.stderr)
    if summary["differences"]:
        print(f"live and offline scores differ (tolerance {args.tolerance} mm): {summary['differences'][:10]}",
              file=sys.stderr)
        return EXIT_MISMATCH
    if summary["differences"] is not None:
        print(f"live and offline scores agree within {args.tolerance} mm")
    return EXIT_PARTIAL if summary["problems"] else 0


def _run_bag_command(args):
    """record / play / info from ghtt_ros.bag.io return nothing on success."""
    args.run(args)
    return 0


def build_parser():
    parser = ArgumentParser(prog="ghtt-bag", description=__doc__.split("\n")[0],
                            formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n", 2)[2])
    commands = parser.add_subparsers(dest="command", required=True)
    register_commands(commands)
    for name in ("record", "play", "info"):
        commands.choices[name].set_defaults(handler=_run_bag_command)

    dataset = commands.add_parser("from-dataset", help="write an evaluation bag of one dataset sequence")
    dataset.add_argument("source", choices=("synthetic", "stored", "h2o", "fpha", "assemblyhands"),
                         help="synthetic: one generated recording; stored: a ghtt-format dataset (`ghtt data "
                              "generate` / `convert`); h2o, fpha, assemblyhands: the released dataset (--root)")
    dataset.add_argument("-o", "--output", required=True, type=Path, help="new bag directory")
    dataset.add_argument("--root", type=Path, help="dataset folder (all sources but synthetic)")
    dataset.add_argument("--split", help="dataset split (default: stored all, readers their last split)")
    dataset.add_argument("--view", help="camera view (default: synthetic front, readers their default)")
    dataset.add_argument("--sequence", help="sequence name (default: the first)")
    dataset.add_argument("--seed", type=int, default=0, help="synthetic: generator seed")
    dataset.add_argument("--actions", type=int, default=3, help="synthetic: chained actions")
    dataset.add_argument("--fine-grained-dir", type=Path,
                         help="assemblyhands: Assembly101's fine-grained-annotations folder (train/validation/"
                              "test.csv), the ground-truth actions (without it the bag has none)")
    dataset.add_argument("--input", choices=("auto", "estimated", "ground_truth", "images"), default="auto",
                         help="poses on /hands (auto: estimated when the dataset has them, else ground truth), or "
                              "images: the dataset's image files on /image + /camera_info (H2O, AssemblyHands)")
    dataset.add_argument("--no-object-labels", action="store_true",
                         help="do not give the current action's object with the input (poses: object_label; "
                              "images: /object_label)")
    dataset.add_argument("--storage", choices=sorted(STORAGES), default="mcap", help="bag storage format")
    dataset.set_defaults(handler=_from_dataset)

    evaluate = commands.add_parser("evaluate", help="run the pipeline over a bag and score it against its ground "
                                                    "truth")
    evaluate.add_argument("bag", type=Path, help="bag with inputs and ground truth (`ghtt-bag from-dataset`)")
    evaluate.add_argument("-o", "--output", required=True, type=Path, help="report folder")
    evaluate.add_argument("--mode", choices=("live", "offline", "both"), default="both",
                          help="live: the ROS graph on sim time over DDS; offline: the pipeline in-process")
    evaluate.add_argument("--input", choices=("auto", "poses", "images"), default="auto",
                          help="what to feed the graph: poses (/hands -> ghtt_pipeline) or images (/image + "
                               "/camera_info -> hand_estimator -> ghtt_pipeline); auto: poses when the bag has /hands")
    evaluate.add_argument("--checkpoint", default="", help="model (default: the shipped ghtt_small.pt)")
    evaluate.add_argument("--estimator", choices=("mediapipe", "resnet"), default="mediapipe",
                          help="image bags: the hand_estimator backend")
    evaluate.add_argument("--estimator-checkpoint", default="", help="image bags: ResNet estimator checkpoint")
    evaluate.add_argument("--model-complexity", type=int, choices=(0, 1), default=1,
                          help="image bags, mediapipe: 0 lite, 1 full landmark model")
    evaluate.add_argument("--device", default="cpu", help="torch device of the models: cpu, cuda or cuda:N")
    evaluate.add_argument("--prediction-mode", choices=("action_guided", "pose_only"), default="action_guided",
                          help="motion prediction: action_guided (P.b) or pose_only (P.a), as the node's `mode`")
    evaluate.add_argument("--num-samples", type=int, default=20, help="predicted samples K per result")
    evaluate.add_argument("--horizon-frames", type=int, default=96, help="predicted frames per sample")
    evaluate.add_argument("--seed", type=int, default=0, help="sampling seed, as the node's `seed`")
    evaluate.add_argument("--rate", type=float, default=float("inf"),
                          help="live playback speed (default inf: as fast as the graph keeps up, never dropping)")
    evaluate.add_argument("--timeout", type=float, default=60.0,
                          help="seconds any wait for the graph may take before the run is reported as partial")
    evaluate.add_argument("--tolerance", type=float, default=DEFAULT_TOLERANCE_MM,
                          help="largest live/offline difference of a score (mm; accuracies as fractions)")
    evaluate.set_defaults(handler=_evaluate)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    return run_reporting_user_errors("ghtt-bag", lambda: args.handler(args), USER_ERRORS + (BagError, WriterError),
                                     status=1)


if __name__ == "__main__":
    sys.exit(main())
