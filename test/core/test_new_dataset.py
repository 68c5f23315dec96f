"""The researcher's path on a new dataset (issue 17): a released dataset without a val split (FPHA fixture files) is
converted, both stages train with --val-fraction (best checkpoints, resumable logs), and the data card runs with its
defaults."""

import json

import numpy as np
import pytest
import yaml
from model_batches import moving_hands
from released_formats import write_fpha
from training_data import tiny_config

from ghtt_core.checkpoint import load_checkpoint
from ghtt_core.cli import main
from ghtt_core.data.joint_orders import FPHA_TO_GHTT
from ghtt_core.skeleton import RIGHT
from ghtt_core.train.metrics_log import read_metrics

CLASSES = {0: "open_juice_bottle", 1: "close_juice_bottle", 43: "handshake"}
MINILM_DIM = 384  # the default text encoder's embedding size (train-action embeds the labels with it)


def _fpha_skeleton_mm(num_frames, seed):
    """A moving right hand (T, 21, 3) in mm, in FPHA's joint order."""
    ghtt_order = moving_hands(1, num_frames, seed=seed)[0, :, RIGHT].numpy() * 1000.0
    fpha_order = np.empty_like(ghtt_order)
    fpha_order[:, FPHA_TO_GHTT] = ghtt_order
    return fpha_order


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """FPHA fixture (3 subjects x 3 training sequences, 1 test sequence each; no val split) converted to ghtt."""
    root = tmp_path_factory.mktemp("fpha")
    splits = {"train": [], "test": []}
    for subject in (1, 2, 3):
        for index, (label, folder) in enumerate(CLASSES.items()):
            seed = 10 * subject + index
            splits["train"].append((f"Subject_{subject}/{folder}/1", label, _fpha_skeleton_mm(64 + 4 * index, seed)))
        splits["test"].append((f"Subject_{subject}/{CLASSES[0]}/2", 0, _fpha_skeleton_mm(72, 100 + subject)))
    write_fpha(root, splits)
    data = root / "converted"
    assert main(["data", "convert", "fpha", str(root), "--out", str(data)]) == 0
    return data


@pytest.fixture(scope="module")
def tiny_yaml(tmp_path_factory):
    config = tiny_config()
    config.action.text_dim = config.flattened.text_dim = MINILM_DIM
    path = tmp_path_factory.mktemp("config") / "tiny.yaml"
    path.write_text(yaml.safe_dump({"preset": "small", **config.to_dict()}))
    return path


def _common(data, out, *extra):
    return ["--data", str(data), "--out-dir", str(out), "--batch-size", "8", "--device", "cpu", "--log-every", "1",
            "--no-progress", "--threads", "1", *extra]


def test_converted_dataset_has_no_val_split(converted):
    index = json.loads((converted / "index.json").read_text())
    assert sorted(index["splits"]["subject"]) == ["test", "train"]


def test_training_without_validation_warns(converted, tiny_yaml, tmp_path, capsys):
    assert main(["train-pose", *_common(converted, tmp_path / "run"), "--config", str(tiny_yaml), "--steps", "1",
                 "--window-stride", "16"]) == 0
    captured = capsys.readouterr()
    assert "warning: training without validation: split 'val'" in captured.err
    assert "--val-fraction" in captured.err and "no validation" in captured.out
    assert not (tmp_path / "run" / "pose_best.pt").exists()


def test_both_stages_train_with_val_fraction_keep_the_best_checkpoint_and_resume_the_log(converted, tiny_yaml,
                                                                                         tmp_path, capsys):
    pose_dir, action_dir = tmp_path / "pose", tmp_path / "action"
    holdout = ["--val-fraction", "0.34", "--val-every", "2"]
    assert main(["train-pose", *_common(converted, pose_dir, *holdout), "--config", str(tiny_yaml), "--steps", "4",
                 "--window-stride", "8"]) == 0
    out = capsys.readouterr().out
    assert "validation: 3 of the 9 recordings of split 'train' held out" in out and "best val" in out

    rows = read_metrics(pose_dir / "metrics.jsonl")
    val_rows = [row for row in rows if row["split"] == "val"]
    assert [row["step"] for row in val_rows] == [2, 4]
    best = min(val_rows, key=lambda row: row["total"])
    best_model = load_checkpoint(pose_dir / "pose_best.pt")
    assert best_model.training.step == best["step"]
    held_out = best_model.provenance["validation"]["recordings"]
    # one recording of each subject (stratified), whole recordings of the training split
    assert sorted(name.split("__")[1] for name in held_out) == ["Subject_1", "Subject_2", "Subject_3"]

    assert main(["train-pose", *_common(converted, pose_dir, *holdout), "--steps", "6",
                 "--resume", str(pose_dir / "pose.pt")]) == 0
    rows = read_metrics(pose_dir / "metrics.jsonl")
    resume = [row for row in rows if row["split"] == "resume"]
    assert len(resume) == 1 and resume[0]["step"] == 4 and resume[0]["from"] == str(pose_dir / "pose.pt")
    assert [row["step"] for row in rows if row["split"] == "train"] == [1, 2, 3, 4, 5, 6]
    times = [row["time_s"] for row in rows]
    assert times == sorted(times) and times[-1] > 0  # cumulative over the interruption
    assert load_checkpoint(pose_dir / "pose_best.pt").training.step in (2, 4, 6)

    assert main(["train-action", *_common(converted, action_dir, *holdout), "--steps", "2",
                 "--pose-checkpoint", str(pose_dir / "pose.pt")]) == 0
    action_best = load_checkpoint(action_dir / "model_best.pt", require="full")
    assert action_best.provenance["validation"]["recordings"] == held_out  # the same recordings in both stages
    assert [row["step"] for row in read_metrics(action_dir / "metrics.jsonl") if row["split"] == "val"] == [2]


def test_data_card_runs_with_its_default_views_and_splits_on_the_converted_dataset(converted, capsys):
    # every default but the BiGRU's training length (1000 steps: minutes, not a unit test's seconds)
    assert main(["data", "card", str(converted), "--gru-steps", "20", "--no-progress"]) == 0
    card = json.loads(capsys.readouterr().out)
    assert card["views"] == ["color"] and card["train_actions"] == 9 and card["test_actions"] == 3
    assert card["classes"] == 3 and card["chance_accuracy"] == 0.333 and card["bigru_steps"] == 20
    assert 0.0 <= card["bigru_accuracy"] <= 1.0 and 0.0 <= card["nearest_neighbour_mean_pose_accuracy"] <= 1.0
    assert card["zero_velocity_windows"] == 3 * 2 and card["zero_velocity_ade_1s_mm"] > 0.0  # 72 frames: 2 windows


def test_data_card_help_explains_every_option(capsys):
    from ghtt_core.cli import build_parser

    with pytest.raises(SystemExit):
        build_parser().parse_args(["data", "card", "--help"])
    text = capsys.readouterr().out
    data = build_parser()._subparsers._group_actions[0].choices["data"]
    card = data._subparsers._group_actions[0].choices["card"]
    for action in card._actions:
        if action.option_strings and action.dest != "help":
            assert action.help and action.option_strings[-1] in text, action.option_strings


def test_data_card_names_the_views_and_splits_it_could_use(converted, error_line):
    assert main(["data", "card", str(converted), "--views", "front"]) == 2
    assert "no sequences in view(s) ['front'] (views: ['color']); choose with --views" in error_line("ghtt")
    assert main(["data", "card", str(converted), "--test-split", "val"]) == 2
    assert "no recordings in split 'val' (splits: ['test', 'train']); choose one with --test-split" in error_line("ghtt")
