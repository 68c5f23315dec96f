"""The main demo (`python -m ghtt_ros.demo`) in CI size: a few seconds of the real video and one synthetic action
through both graphs over DDS, with a tiny random checkpoint (the plumbing is under test, not the model)."""

import subprocess
import sys
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest

from ghtt_ros.demo import run as demo
from ghtt_ros.bag.io import bag_info, read_messages
from ghtt_ros.demo.sources import SyntheticActionSource, VideoSource

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "core"))
from tiny_models import tiny_model  # noqa: E402

from ghtt_core.checkpoint import save_checkpoint  # noqa: E402

VIDEO_SECONDS = 2.0
SEED = 3


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    model = tiny_model()
    path = tmp_path_factory.mktemp("model") / "tiny.pt"
    save_checkpoint(path, model.config, model.pose_block, model.action_block, model.taxonomy, model.label_embeddings)
    return path


def run_demo(*arguments, timeout=150):
    return subprocess.run([sys.executable, "-m", "ghtt_ros.demo", *map(str, arguments)], capture_output=True,
                          text=True, timeout=timeout)


def test_demo_streams_both_paths_records_a_bag_and_draws_the_figure(tmp_path, tiny_checkpoint):
    result = run_demo("--checkpoint", tiny_checkpoint, "--video-seconds", VIDEO_SECONDS, "--actions", 1,
                      "--seed", SEED, "--speed", 0, "--num-samples", 4, "--output", tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (run_dir,) = tmp_path.iterdir()
    bag_dir, figure = run_dir / "bag", run_dir / "demo.png"
    assert f"[demo] bag:    {bag_dir}" in result.stdout and f"[demo] figure: {figure}" in result.stdout

    synthetic = SyntheticActionSource(SEED, 1, demo.POSE_START_NS)
    video_frames = len(VideoSource(demo.DEFAULT_VIDEO, demo.CAMERA_START_NS, max_seconds=VIDEO_SECONDS).frames)
    pose_lines = [line for line in result.stdout.splitlines() if line.startswith("[pose] t=")]
    assert len(pose_lines) == synthetic.num_frames // demo.CLIP_LEN
    assert all("top-1 '" in line and "(gt: " in line and "pred 4x96 frames, spread@1s" in line for line in pose_lines)

    topics = bag_info(bag_dir).topics
    # Every input frame went through: nothing dropped on the way in.
    assert topics["/pose/hands"] == ("ghtt/msg/TwoHandPose", synthetic.num_frames)
    assert topics["/camera/image"] == ("sensor_msgs/msg/Image", video_frames)
    assert topics["/camera/hands"] == ("ghtt/msg/TwoHandPose", video_frames)
    for namespace in ("pose", "camera"):
        assert topics[f"/{namespace}/action"][0] == "ghtt/msg/ActionRecognition"
        assert topics[f"/{namespace}/prediction"][0] == "ghtt/msg/MotionPrediction"
    assert topics["/pose/action"][1] == topics["/pose/prediction"][1] == len(pose_lines)

    predictions = [msg for topic, _, msg in read_messages(bag_dir, topics=["/pose/prediction"])]
    clip_ends = synthetic.stamps_ns[demo.CLIP_LEN - 1::demo.CLIP_LEN]
    stamps = [msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec for msg in predictions]
    assert stamps == list(clip_ends[:len(stamps)])  # one result per completed clip, stamped with its last frame
    assert all((msg.num_samples, msg.num_frames, msg.num_joints) == (4, 96, 21) for msg in predictions)

    image = matplotlib.image.imread(figure)
    assert image.shape[:2] == (550, 1700) and np.ptp(image[..., :3]) > 0.5


def test_missing_checkpoint_exits_non_zero_and_names_the_command(tmp_path):
    result = run_demo("--checkpoint", tmp_path / "none.pt", "--output", tmp_path, timeout=60)
    assert result.returncode == 2
    assert "none.pt" in result.stderr and "docs/training.md" in result.stderr and "trains nothing" in result.stderr
    assert not any(tmp_path.iterdir())


def test_missing_video_exits_non_zero_with_clear_error(tmp_path, tiny_checkpoint):
    result = run_demo("--checkpoint", tiny_checkpoint, "--video", tmp_path / "missing.mp4", "--output", tmp_path,
                      timeout=60)
    assert result.returncode == 2
    assert "demo video not found" in result.stderr and "missing.mp4" in result.stderr
    assert not any(p.name != "missing.mp4" for p in tmp_path.iterdir())
