import json

import pytest
import yaml

from ghtt_core.checkpoint import load_checkpoint
from ghtt_core.cli import build_parser, main
from ghtt_core.data.recording import Recording
from ghtt_core.data.storage import write_dataset
from training_data import action_sequences, tiny_config


@pytest.mark.parametrize("command", ["train-pose", "train-action", "training-report", "export-model"])
def test_help_explains_every_option(command, capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args([command, "--help"])
    text = capsys.readouterr().out
    parser = build_parser()._subparsers._group_actions[0].choices[command]
    for action in parser._actions:
        if action.option_strings and action.dest != "help":
            assert action.help, f"{command} {action.option_strings} has no help"
            assert action.option_strings[-1] in text


def _tiny_dataset(root):
    recordings = []
    for index, (sequence, split) in enumerate(zip(action_sequences(3), ("train", "val", "test"))):
        sequence.subject, sequence.split, sequence.view = f"s{index}", split, "front"
        recordings.append(Recording.from_sequences([sequence], name=f"rec{index}"))
    write_dataset(root, recordings)


def test_train_pose_then_report_from_the_command_line(tmp_path, capsys):
    _tiny_dataset(tmp_path / "data")
    config = tiny_config().to_dict()
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump({"preset": "small", **config}))
    out = tmp_path / "run"
    common = ["--data", str(tmp_path / "data"), "--out-dir", str(out), "--batch-size", "8", "--device", "cpu",
              "--log-every", "1", "--no-progress", "--window-stride", "8"]
    assert main(["train-pose", *common, "--config", str(tmp_path / "tiny.yaml"), "--steps", "3", "--lambda-kl",
                 "0.001"]) == 0
    model = load_checkpoint(out / "pose.pt")
    assert model.training.step == 3 and model.config.pose.lambda_kl == 0.001
    assert model.config.pose.transformer.d_model == 32
    assert model.provenance["command"].startswith("ghtt")
    assert model.model_id.startswith("pose-data-")  # <file>-<training data folder>-<weights digest>
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [row["step"] for row in rows if row["split"] == "train"] == [1, 2, 3]
    assert [row["split"] for row in rows].count("val") == 1

    assert main(["train-pose", *common, "--steps", "5", "--resume", str(out / "pose.pt")]) == 0
    assert load_checkpoint(out / "pose.pt").training.step == 5
    capsys.readouterr()

    assert main(["training-report", "--checkpoint", str(out / "pose.pt"), "--data", str(tmp_path / "data"),
                 "--out", str(tmp_path / "report.json")]) == 0
    report = json.loads((tmp_path / "report.json").read_text())
    refinement = report["refinement_mm"]
    assert report["kind"] == "pose" and "recognition" not in report
    # the synthetic estimate is the truth + ~4 mm noise per coordinate
    assert 3.0 < refinement["input_absolute"] < 12.0
    assert refinement["refined_absolute"] > 0.0
