"""The three command lines as a user meets them: every option has a --help text, a user error is one `PROG: error:`
line with what to do (no traceback), and `ghtt-bag record` / `play` end with exit status 0 and a closed, readable bag
on SIGTERM and SIGINT."""

import argparse
import re
import signal
import subprocess
import sys
import time

import pytest
import yaml

from ghtt_core.cli import build_parser as ghtt_parser
from ghtt_ros.bag.cli import build_parser as bag_parser
from ghtt_ros.bag.io import bag_info, read_messages
from ghtt_ros.graph.cli import build_parser as ros_parser
from test_graph import CONFIG

PARSERS = {"ghtt": ghtt_parser, "ghtt-ros": ros_parser, "ghtt-bag": bag_parser}
MODULES = {"ghtt": "ghtt_core.cli", "ghtt-ros": "ghtt_ros.graph.cli", "ghtt-bag": "ghtt_ros.bag"}


def _options_without_help(parser, path):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, command in action.choices.items():
                yield from _options_without_help(command, f"{path} {name}")
        elif not isinstance(action, argparse._HelpAction) and not (action.help or "").strip():
            yield f"{path}: {'/'.join(action.option_strings) or action.dest}"


def test_every_option_of_every_command_has_a_help_text():
    missing = [entry for prog, build in PARSERS.items() for entry in _options_without_help(build(), prog)]
    assert missing == []


def _run(prog, *arguments, timeout=180):
    return subprocess.run([sys.executable, "-m", MODULES[prog], *map(str, arguments)], capture_output=True,
                          text=True, timeout=timeout)


def _assert_one_error_line(result, prog, *fragments):
    """One error line, the last on stderr, no traceback (MediaPipe's own start-up log lines may come before it)."""
    lines = result.stderr.strip().splitlines()
    errors = [line for line in lines if "error" in line.lower()]
    assert result.returncode != 0 and errors == lines[-1:] and "Traceback" not in result.stderr, result.stderr
    assert re.match(rf"{prog}( [a-z-]+)*: error: ", errors[0]), errors[0]
    for fragment in fragments:
        assert fragment in errors[0], errors[0]


def _other_taxonomy_dataset(root):
    """A stored dataset of one test recording (view cam0) whose only action is not in the shipped model's taxonomy."""
    import numpy as np

    from ghtt_core.data.recording import Recording
    from ghtt_core.data.sequence import ActionSegment, HandSequence
    from ghtt_core.data.storage import write_dataset
    from ros_fixtures import moving_hands

    joints = moving_hands(160).astype(np.float32)
    sequence = HandSequence(name="rec0/front", joints=joints, presence=np.ones((160, 2), bool), fps=30.0,
                            actions=[ActionSegment(10, 150, "stir soup", "stir", "soup")], split="test")
    write_dataset(root, [Recording.from_sequences([sequence], "rec0")])
    return root


def test_user_errors_of_each_command_line_are_one_line_with_the_fix(tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    import cv2
    import numpy as np

    cv2.imwrite(str(folder / "a.png"), np.zeros((64, 80, 3), np.uint8))
    cv2.imwrite(str(folder / "b.png"), np.zeros((48, 64, 3), np.uint8))
    cases = [
        ("ghtt", ["data", "inspect", tmp_path / "nowhere"], "nowhere"),
        ("ghtt", ["data", "generate", "--seed", "x"], "invalid int value", "--help"),
        ("ghtt", ["estimate", folder, "-o", tmp_path / "p.npz", "--static"], "images of one size"),
        ("ghtt", ["training-report", "--checkpoint", "ghtt_core/assets/ghtt_small.pt", "--data",
                  _other_taxonomy_dataset(tmp_path / "other"), "--split", "train"],
         "no recordings in split 'train' (splits: ['test']); choose one with --split"),
        ("ghtt", ["training-report", "--checkpoint", "ghtt_core/assets/ghtt_small.pt", "--data",
                  tmp_path / "other", "--views", "top"],
         "in view(s) top (views: ['cam0']); choose with --views"),
        ("ghtt-ros", ["run", tmp_path / "no_graph.yaml"], "graph file not found"),
        ("ghtt-ros", ["nodes", CONFIG / "graph.yaml", "--set", "ghtt_pipeline.top_kk=3"], "did you mean top_k"),
        ("ghtt-ros", ["nodes", CONFIG / "graph.yaml", "devices:=cpu"], "launch argument NAME:=VALUE"),
        ("ghtt-ros", ["run", CONFIG / "graph.yaml", "--mode", "threads"], "invalid choice", "--help"),
        ("ghtt-bag", ["info", tmp_path / "no_bag"], "does not exist"),
        ("ghtt-bag", ["play", tmp_path / "no_bag", "--rate", "fast"], "invalid float value"),
        ("ghtt-bag", ["from-dataset", "h2o", "-o", tmp_path / "bag"], "needs the dataset folder (--root)"),
    ]
    for prog, arguments, *fragments in cases:
        _assert_one_error_line(_run(prog, *arguments), prog, *fragments)


@pytest.fixture
def sample_bag(tmp_path, publisher_process):
    """A bag of every ghtt sample message, recorded from another process for 2 s."""
    path = tmp_path / "samples"
    result = _run("ghtt-bag", "record", "-o", path, "/sample_TwoHandPose", "/sample_MotionPrediction",
                  "--duration", "2")
    assert result.returncode == 0, result.stderr
    return path


def _until_line(process, text, timeout_s=60):
    deadline = time.monotonic() + timeout_s
    lines = []
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        lines.append(line)
        if text in line:
            return lines
    raise AssertionError(f"{text!r} not printed: {lines}")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_record_and_play_stop_on_a_signal_with_exit_0_and_the_bag_closed(tmp_path, sample_bag, signum):
    recorded = tmp_path / "recorded"
    recorder = subprocess.Popen([sys.executable, "-m", "ghtt_ros.bag", "record", "-o", str(recorded),
                                 "/sample_TwoHandPose"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    player = None
    try:
        player = subprocess.Popen([sys.executable, "-m", "ghtt_ros.bag", "play", str(sample_bag), "--loop",
                                   "--rate", "5", "--discovery-wait", "0.5"], stdout=subprocess.PIPE, text=True)
        _until_line(player, "playing")
        recorder_log = iter(recorder.stderr.readline, "")
        assert any("recording /sample_TwoHandPose" in line for line in recorder_log)  # the topic is discovered
        time.sleep(1.5)  # both run: the looping player (and the sample publisher) publish, the recorder writes
        assert not (recorded / "metadata.yaml").exists()  # written when the bag is closed
        player.send_signal(signum)
        assert player.wait(30) == 0
        played = player.stdout.read()
        assert "published" in played and "messages from" in played
        recorder.send_signal(signum)
        assert recorder.wait(30) == 0
        assert "wrote" in recorder.stdout.read()
    finally:
        for process in (recorder, player):
            if process is not None and process.poll() is None:
                process.kill()
    assert (recorded / "metadata.yaml").is_file()
    info = bag_info(recorded)
    assert info.topics["/sample_TwoHandPose"][1] > 0
    assert sum(1 for _ in read_messages(recorded)) == info.topics["/sample_TwoHandPose"][1]
    metadata = yaml.safe_load((recorded / "metadata.yaml").read_text())
    assert metadata["rosbag2_bagfile_information"]["message_count"] == info.topics["/sample_TwoHandPose"][1]
