"""`ghtt data ...`: generate the synthetic benchmark, inspect a dataset, convert a public dataset."""

import importlib
import json
import time
from pathlib import Path

# source -> (reader module, loader, its splits, default view). Each loader is called as loader(root, split, view).
CONVERTIBLE_SOURCES = {
    "h2o": ("ghtt_core.data.h2o", "load_h2o", ("train", "val", "test"), "cam4"),
    "fpha": ("ghtt_core.data.fpha", "load_fpha", ("train", "test"), "color"),
    "assemblyhands": ("ghtt_core.data.assembly", "load_assemblyhands", ("train", "val", "test"), "world"),
}


def read_released_dataset(source: str, root, split: str | None = None, view: str | None = None,
                          fine_grained_dir=None) -> list:
    """HandSequences of one split (default: the source's last) of a released dataset, read by its reader in
    CONVERTIBLE_SOURCES. fine_grained_dir: assemblyhands only, Assembly101's fine-grained-annotations folder (the
    actions; AssemblyHands has none of its own)."""
    if fine_grained_dir is not None and source != "assemblyhands":
        raise ValueError(f"--fine-grained-dir is for source assemblyhands, not {source!r}")
    module_name, loader_name, splits, default_view = CONVERTIBLE_SOURCES[source]
    loader = getattr(importlib.import_module(module_name), loader_name)
    extra = {"fine_grained_dir": fine_grained_dir} if fine_grained_dir is not None else {}
    return loader(root, split=split or splits[-1], view=view or default_view, **extra)


# Cross-view protocol of the synthetic benchmark: train on two fixed views, test on the two others.
SYNTHETIC_VIEW_SPLITS = {"train": ["front", "left"], "test": ["right", "top"]}


def register(subparsers):
    data = subparsers.add_parser("data", help="generate, inspect and convert hand-action datasets")
    commands = data.add_subparsers(dest="data_command", required=True, metavar="DATA_COMMAND")

    generate = commands.add_parser("generate", help="write the synthetic two-hand action benchmark")
    generate.add_argument("--out", default="data/synthetic", type=Path,
                          help="output folder, ghtt dataset format (default data/synthetic)")
    generate.add_argument("--seed", type=int, default=0,
                          help="generator seed: the same seed writes the same dataset (default 0)")
    generate.add_argument("--num-recordings", type=int, default=None, help="recordings to write (default 175, about "
                          "1,050 actions)")
    generate.add_argument("--noise-level", default="medium", choices=("none", "low", "medium", "high"),
                          help="noise of the estimator-like poses stored next to the ground truth (default medium)")
    generate.add_argument("--one-hand-absent-fraction", type=float, default=0.0,
                          help="fraction of frames with one hand out of view, in [0, 1) (default 0)")
    generate.add_argument("--random-views", type=int, default=None,
                          help="extra static camera views with random extrinsics per recording (default 1)")
    generate.add_argument("--style-domain", default="default", choices=("default", "shifted"),
                          help="subject style ranges; 'shifted' = faster/slower, larger movements, other grasp "
                               "postures, more left-handers: motion a model trained on 'default' never saw")
    generate.add_argument("--named-views", default=None,
                          help="comma-separated named views (front,left,right,top,ego; default all; '' = none, "
                               "e.g. with --random-views 3 for cameras a model never saw)")
    generate.set_defaults(handler=_generate)

    inspect = commands.add_parser("inspect", help="print statistics of a dataset and optionally plot a sequence")
    inspect.add_argument("root", type=Path, help="dataset folder (ghtt format)")
    inspect.add_argument("--plot", type=Path, help="write a PNG of one sequence here")
    inspect.add_argument("--recording", help="recording name (default: the first)")
    inspect.add_argument("--view", default=None, help="view name (default: the recording's first)")
    inspect.set_defaults(handler=_inspect)

    convert = commands.add_parser("convert", help="convert a public dataset to the ghtt format")
    convert.add_argument("source", choices=sorted(CONVERTIBLE_SOURCES), help="dataset format (docs/datasets.md)")
    convert.add_argument("input", type=Path, help="the dataset's root folder, laid out as released")
    convert.add_argument("--out", required=True, type=Path, help="output folder (ghtt format, docs/dataset.md)")
    convert.add_argument("--splits", nargs="+", help="splits to convert (default: all of the dataset's splits)")
    convert.add_argument("--view", help="camera view (default: h2o cam4, fpha color, assemblyhands world)")
    convert.add_argument("--fine-grained-dir", type=Path,
                         help="assemblyhands: Assembly101's fine-grained-annotations folder (train/validation/"
                              "test.csv) with the action segments; without it the converted sequences have no actions")
    convert.set_defaults(handler=_convert)

    tracks = commands.add_parser(
        "from-tracks", help="a ghtt dataset from tracked hand poses (`ghtt estimate` .npz files), to score a model on "
                            "your own recordings with `ghtt training-report` (prediction and refinement need no labels)")
    tracks.add_argument("tracks", nargs="+", type=Path, help="pose files written by `ghtt estimate` (one recording each)")
    tracks.add_argument("--out", required=True, type=Path, help="output folder (ghtt format, docs/dataset.md)")
    tracks.add_argument("--split", default="test", help="split the recordings go into (default test)")
    tracks.add_argument("--label", default="unlabelled",
                        help="action label of the one segment per recording, from its first to its last frame with "
                             "a hand (default 'unlabelled'; a class the model does not know is not scored for "
                             "recognition)")
    tracks.set_defaults(handler=_from_tracks)

    card = commands.add_parser(
        "card", help="difficulty baselines of a dataset (chance, nearest neighbour, BiGRU, zero velocity)",
        description="How hard a dataset is (docs/dataset.md, 'Dataset card'): on the ground-truth poses of whole "
        "actions, trained on one split and scored on another, the chance level, 1-nearest-neighbour on the mean "
        "wrist-relative pose, the BiGRU recognition baseline that `ghtt training-report --gru-steps` also reports, "
        "and the 1-s error of holding the last pose. Prints JSON.")
    card.add_argument("root", type=Path, help="dataset folder (ghtt format, e.g. from `ghtt data convert`)")
    card.add_argument("--views", default=None,
                      help="comma-separated camera views the baselines use (default: every view of each recording)")
    card.add_argument("--train-split", default="train", help="split the baselines are trained on (default train)")
    card.add_argument("--test-split", default="test", help="split the baselines are scored on (default test)")
    card.add_argument("--gru-steps", type=int, default=1000,
                      help="training steps (batch 32) of the BiGRU baseline (default 1000)")
    card.add_argument("--seed", type=int, default=0, help="seed of the BiGRU baseline (default 0)")
    card.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    card.add_argument("--no-progress", action="store_true", help="no progress bar for the BiGRU training")
    card.set_defaults(handler=_card)


def _generate(args):
    from dataclasses import replace

    from ghtt_core.data.storage import write_dataset
    from ghtt_core.data.synthetic.actions import ACTION_CLASSES
    from ghtt_core.data.synthetic.generator import GeneratorConfig, generate_benchmark
    from ghtt_core.taxonomy import Taxonomy

    config = GeneratorConfig(seed=args.seed, noise_level=args.noise_level,
                             one_hand_absent_fraction=args.one_hand_absent_fraction, style_domain=args.style_domain)
    if args.named_views is not None:
        config = replace(config, named_views=tuple(view for view in args.named_views.split(",") if view))
    if args.num_recordings is not None:
        config = replace(config, num_recordings=args.num_recordings)
    if args.random_views is not None:
        config = replace(config, random_views=args.random_views)
    taxonomy = Taxonomy(tuple((c.label, c.verb, c.noun) for c in ACTION_CLASSES))
    started = time.perf_counter()
    index = write_dataset(args.out, generate_benchmark(config), taxonomy,
                          provenance={"generator": "ghtt synthetic", "config": config.to_dict()},
                          view_splits=SYNTHETIC_VIEW_SPLITS
                          if {v for views in SYNTHETIC_VIEW_SPLITS.values() for v in views} <= set(config.named_views)
                          else None)
    seconds = time.perf_counter() - started
    frames = sum(entry["num_frames"] for entry in index["recordings"])
    actions = sum(len(entry["actions"]) for entry in index["recordings"])
    print(f"wrote {len(index['recordings'])} recordings, {actions} actions, {frames} frames to {args.out} "
          f"in {seconds:.1f} s ({frames / seconds:.0f} frames/s incl. writing)")


def _inspect(args):
    from ghtt_core.data.inspection import dataset_statistics, plot_sequence
    from ghtt_core.data.storage import StoredDataset, load_recording

    dataset = StoredDataset(args.root)
    print(json.dumps(dataset_statistics(dataset), indent=1))
    if args.plot:
        entries = dataset.entries
        entry = next((e for e in entries if e["name"] == args.recording), None) if args.recording else entries[0]
        if entry is None:
            raise ValueError(f"no recording named {args.recording!r} in {args.root}")
        recording = load_recording(dataset.root / entry["file"], entry["name"], entry["subject"], entry["split"])
        plot_sequence(recording.view(args.view or next(iter(recording.views))), args.plot)
        print(f"plot written to {args.plot}")


def _convert(args):
    from ghtt_core.data.recording import Recording
    from ghtt_core.data.storage import write_dataset

    _, _, splits, default_view = CONVERTIBLE_SOURCES[args.source]
    view = args.view or default_view
    sequences = [seq for split in (args.splits or splits)
                 for seq in read_released_dataset(args.source, args.input, split, view, args.fine_grained_dir)]
    # One single-view recording per sequence; dataset paths become flat file names.
    recordings = (Recording.from_sequences([seq], seq.name.replace("/", "__")) for seq in sequences)
    index = write_dataset(args.out, recordings, provenance={"source": args.source, "input": str(args.input),
                                                             "view": view})
    print(f"converted {len(index['recordings'])} recordings from {args.input} to {args.out}")


def _from_tracks(args):
    from ghtt_core.data.recording import Recording
    from ghtt_core.data.storage import write_dataset
    from ghtt_core.data.tracks import sequence_from_tracks

    sequences = [sequence_from_tracks(path, args.label, args.split) for path in args.tracks]
    index = write_dataset(args.out, (Recording.from_sequences([seq], seq.name) for seq in sequences),
                          provenance={"source": "tracks", "files": [str(path) for path in args.tracks]})
    frames = sum(entry["num_frames"] for entry in index["recordings"])
    print(f"wrote {len(index['recordings'])} recordings ({frames} frames) to {args.out}")


def _card(args):
    from ghtt_core.data.difficulty import difficulty_report
    from ghtt_core.data.storage import StoredDataset

    import torch

    if args.gru_steps < 1:
        raise ValueError(f"--gru-steps must be >= 1, got {args.gru_steps}")
    if args.threads:
        torch.set_num_threads(args.threads)
    report = difficulty_report(StoredDataset(args.root), views=args.views.split(",") if args.views else None,
                               train_split=args.train_split, test_split=args.test_split, gru_steps=args.gru_steps,
                               seed=args.seed, progress=not args.no_progress)
    print(json.dumps(report, indent=1))

