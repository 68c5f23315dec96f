"""Rosbag replay evaluation (ghtt_ros.bag.dataset, bag_evaluation, bag_live; `ghtt-bag from-dataset / evaluate`): a
synthetic sequence becomes a bag with inputs and ground truth; replaying it through the live ghtt_pipeline node (sim
time, DDS) gives the same scores as the in-process pipeline; bad bags give clear errors or partial reports, never a
hang."""

import json
import os
import struct
import time

import numpy as np
import pytest
import rclpy
from rclpy.serialization import deserialize_message, serialize_message
from rosbags.rosbag2 import Writer
from rosbags.typesys import get_types_from_msg
from std_msgs.msg import String

from ghtt.msg import TwoHandPose
from ghtt_core.data.recording import Recording
from ghtt_core.data.storage import write_dataset
from ghtt_core.evaluate.metrics import mpjpe
from ghtt_core.evaluate.stream_scoring import score_differences
from ghtt_core.pipeline import PipelineConfig
from ghtt_ros.bag import cli as bag_cli
from ghtt_ros.bag.io import (ROSBAG2_VERSION, STORAGES, BagError, BagPlayer, bag_info, make_typestore, parse_remappings,
                          read_messages, read_raw)
from ghtt_ros.bag.dataset import DEFAULT_START_NS, GT_ACTION_TOPIC, GT_HANDS_TOPIC, INPUT_TOPIC
from ghtt_ros.bag.evaluation import EVAL_NAMESPACE
from ghtt_ros.convert import stamp_to_ns, two_hand_pose_from_msg
from ghtt_ros.demo.sources import SyntheticActionSource
from ros_fixtures import write_tiny_checkpoint

SEED, ACTIONS = 3, 1
TOLERANCE_MM = 1e-6  # live and offline scores; observed: bit-identical
SHORT_BAG_FRAMES = 96


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return write_tiny_checkpoint(tmp_path_factory.mktemp("model") / "tiny.pt")


@pytest.fixture(scope="module")
def sequence():
    return SyntheticActionSource(SEED, ACTIONS, 0).sequence


@pytest.fixture(scope="module")
def synthetic_bag(tmp_path_factory):
    path = tmp_path_factory.mktemp("bags") / "synthetic"
    assert bag_cli.main(["from-dataset", "synthetic", "-o", str(path), "--seed", str(SEED),
                         "--actions", str(ACTIONS)]) == 0
    return path


@pytest.fixture
def own_ros_domain(monkeypatch):
    """The live graph in a DDS domain of its own: endpoints of destroyed nodes linger in discovery for a while and would
    show up in the topic lists of the tests that run next."""
    domain = int(os.environ["ROS_DOMAIN_ID"])
    monkeypatch.setenv("ROS_DOMAIN_ID", str((domain + 50) % 100 + 1))


def evaluate(bag, output, checkpoint, mode, *extra):
    return bag_cli.main(["evaluate", str(bag), "-o", str(output), "--mode", mode, "--checkpoint", str(checkpoint),
                         "--num-samples", "4", "--horizon-frames", "32", "--timeout", "30", *extra])


def report(directory, mode):
    return json.loads((directory / mode / "report.json").read_text())


def rewrite_bag(source, target, edit, extra_types=None, frames=SHORT_BAG_FRAMES):
    """Copies the first `frames` frames of `source` into a new MCAP bag after edit(list of [topic, msgtype,
    stamp_ns, bytes]) changed them; extra_types: {msgtype: .msg text} for types outside ghtt and ROS."""
    end_ns = DEFAULT_START_NS + frames * 33_333_334
    records = [list(record) for record in read_raw(source) if record[2] < end_ns]
    records = edit(records)
    typestore = make_typestore()
    for msgtype, text in (extra_types or {}).items():
        typestore.register(get_types_from_msg(text, msgtype))
    writer = Writer(target, version=ROSBAG2_VERSION, storage_plugin=STORAGES["mcap"])
    writer.open()
    connections = {}
    for topic, msgtype, stamp_ns, data in records:
        if topic not in connections:
            connections[topic] = writer.add_connection(topic, msgtype, typestore=typestore)
        writer.write(connections[topic], stamp_ns, data)
    writer.close()
    return target


def edit_hands(records, index, change):
    """Applies change(TwoHandPose) to the index-th message on the input topic."""
    record = [r for r in records if r[0] == INPUT_TOPIC][index]
    msg = deserialize_message(record[3], TwoHandPose)
    change(msg)
    record[3] = serialize_message(msg)


def test_from_dataset_writes_inputs_ground_truth_and_action_labels(synthetic_bag, sequence):
    topics = bag_info(synthetic_bag).topics
    assert topics == {INPUT_TOPIC: ("ghtt/msg/TwoHandPose", sequence.num_frames),
                      GT_HANDS_TOPIC: ("ghtt/msg/TwoHandPose", sequence.num_frames),
                      GT_ACTION_TOPIC: ("ghtt/msg/ActionRecognition", ACTIONS)}
    messages = {topic: [] for topic in topics}
    for topic, bag_stamp, msg in read_messages(synthetic_bag):
        assert bag_stamp == stamp_to_ns(msg.header.stamp)  # bag time = source time, so /clock replays it
        messages[topic].append(msg)
    (segment,) = sequence.actions
    (action,) = messages[GT_ACTION_TOPIC]
    frame_ns = np.round(np.arange(sequence.num_frames) * 1e9 / sequence.fps).astype(np.int64) + DEFAULT_START_NS
    assert (stamp_to_ns(action.observation_start), stamp_to_ns(action.observation_end)) == (
        frame_ns[segment.start], frame_ns[segment.end - 1])
    assert [(h.label, h.noun, h.score) for h in action.hypotheses] == [(segment.label, segment.noun, 1.0)]
    inputs = [two_hand_pose_from_msg(msg) for msg in messages[INPUT_TOPIC]]
    truth = [two_hand_pose_from_msg(msg) for msg in messages[GT_HANDS_TOPIC]]
    assert [h.stamp_ns for h in inputs] == [h.stamp_ns for h in truth] == frame_ns.tolist()
    estimated = np.array([h.presence for h in inputs])
    np.testing.assert_array_equal(estimated, sequence.estimated_presence)  # the dataset's estimates are the input
    np.testing.assert_array_equal(np.array([h.joints for h in inputs])[estimated],
                                  sequence.estimated_joints[estimated])
    np.testing.assert_array_equal(np.array([h.presence for h in truth]), sequence.presence)
    labels = [h.object_label for h in inputs]
    assert set(labels[segment.start:segment.end]) == {segment.noun} and set(labels[:segment.start]) <= {""}


def test_from_dataset_reads_stored_datasets_and_can_feed_ground_truth(tmp_path, sequence):
    write_dataset(tmp_path / "data", [Recording.from_sequences([sequence], "rec0")])
    bag = tmp_path / "bag"
    assert bag_cli.main(["from-dataset", "stored", "--root", str(tmp_path / "data"), "--sequence", "rec0/front",
                         "--input", "ground_truth", "--no-object-labels", "--storage", "sqlite3",
                         "-o", str(bag)]) == 0
    assert bag_info(bag).storage == "sqlite3"
    inputs = [two_hand_pose_from_msg(msg) for _, _, msg in read_messages(bag, [INPUT_TOPIC])]
    np.testing.assert_array_equal(np.array([h.presence for h in inputs]), sequence.presence)
    np.testing.assert_allclose(np.array([h.joints for h in inputs])[sequence.presence],
                               sequence.joints[sequence.presence], atol=1e-6)
    assert {h.object_label for h in inputs} == {""}
    assert bag_cli.main(["from-dataset", "stored", "--root", str(tmp_path / "data"), "--sequence", "nope",
                         "-o", str(tmp_path / "other")]) == 1
    assert bag_cli.main(["from-dataset", "h2o", "-o", str(tmp_path / "other")]) == 1  # needs --root


def test_live_replay_scores_equal_the_offline_scores(tmp_path, checkpoint, synthetic_bag, sequence, capsys,
                                                     own_ros_domain):
    started = time.monotonic()
    assert evaluate(synthetic_bag, tmp_path, checkpoint, "both") == 0
    assert time.monotonic() - started < 60
    stdout = capsys.readouterr().out
    assert f"live and offline scores agree within {bag_cli.DEFAULT_TOLERANCE_MM} mm" in stdout
    live, offline = report(tmp_path, "live"), report(tmp_path, "offline")
    assert score_differences(live["scores"], offline["scores"], TOLERANCE_MM) == []
    assert not json.loads((tmp_path / "comparison.json").read_text())["differences"]

    # Lossless: every pose reached the node, nothing skipped or dropped; a result at the end of the first 16-frame
    # clip and then every clip_stride frames (the default stream).
    node_stats = live["details"]["node_stats"]
    assert live["details"]["inputs_published"] == node_stats["frames_received"] == sequence.num_frames
    assert node_stats["frames_skipped"] == node_stats["frames_dropped"] == 0
    result_ends = result_frames(sequence.num_frames)
    results = len(result_ends)
    assert live["scores"]["results"] == offline["scores"]["results"] == results
    # a forecast for every result with a hand seen within max_fill_frames of its end (the others have none)
    presence = sequence.estimated_presence.any(axis=1)
    tolerance = PipelineConfig.max_fill_frames
    predicted = [i for i in result_ends if presence[max(0, i - tolerance):i + 1].any()]
    assert 0 < len(predicted) <= results
    assert live["scores"]["prediction"]["predictions"] == offline["scores"]["prediction"]["predictions"] == len(
        predicted)
    assert live["scores"]["latency_ms"]["count"] == offline["scores"]["latency_ms"]["count"] == results
    recorded = bag_info(tmp_path / "live" / "outputs_bag").topics
    assert recorded[f"/{EVAL_NAMESPACE}/refined_hands"] == ("ghtt/msg/TwoHandPoseArray", results)

    # The scores are the metrics of the real data: the input error is the dataset's estimation error.
    counted = sequence.estimated_presence & sequence.presence
    expected = mpjpe(sequence.estimated_joints, sequence.joints, counted).mean.tolist()
    assert offline["scores"]["refinement"]["input"]["mpjpe"]["mean"] == pytest.approx(expected, rel=1e-5)
    recognition = live["scores"]["recognition"]
    assert recognition["over_time"]["count"] == len(recognition_stamps_inside(sequence, result_ends))
    assert recognition["end_of_action"]["count"] == ACTIONS
    for mode in ("live", "offline"):
        assert (tmp_path / mode / "report.png").stat().st_size > 10_000
        markdown = (tmp_path / mode / "report.md").read_text()
        assert "## Motion prediction" in markdown
        assert "| zero_velocity_ade (baseline: last input pose held) |" in markdown
        assert markdown.count("## Result latency (wall clock)") == 1 and "result latency:" in markdown
        prediction = report(tmp_path, mode)["scores"]["prediction"]
        assert prediction["zero_velocity_ade"]["count"] == prediction["ade_mean"]["count"]
        assert all(value > 0 for value in prediction["zero_velocity_fde"]["mean"])
        assert report(tmp_path, mode)["details"]["throughput_x_real_time"] > 0
    assert not any(key.startswith("latency_ms") for key in node_stats)  # sim-time figures are not reported


def result_frames(num_frames):
    """Frame indices of the results of the default pipeline: the first clip's last frame, then every clip_stride."""
    return list(range(15, num_frames, PipelineConfig.clip_stride))


def recognition_stamps_inside(sequence, result_ends):
    """Frame indices of the results that lie inside a labelled action."""
    return [i for i in result_ends if any(s.start <= i < s.end for s in sequence.actions)]


def test_bad_messages_stamps_and_missing_topics_give_a_partial_report(tmp_path, checkpoint, synthetic_bag, capsys):
    def damage(records):
        edit_hands(records, 5, lambda msg: setattr(msg.left, "side", 7))  # malformed: unknown hand side
        edit_hands(records, 20, lambda msg: setattr(msg.header.stamp, "sec", msg.header.stamp.sec - 1))
        records.append(["/robot/state", "my_robot/msg/State", records[0][2], b"\x00\x01\x00\x00" + bytes(8)])
        return [r for r in records if r[0] != GT_ACTION_TOPIC]

    bag = rewrite_bag(synthetic_bag, tmp_path / "bag", damage, {"my_robot/msg/State": "float64 x"})
    assert evaluate(bag, tmp_path / "out", checkpoint, "offline") == bag_cli.EXIT_PARTIAL
    problems = report(tmp_path / "out", "offline")["details"]["problems"]
    assert any("1 malformed message(s) skipped" in p for p in problems)
    assert any(p.startswith(f"{INPUT_TOPIC}: header stamps do not increase at 1 message(s)") for p in problems)
    assert any(f"no {GT_ACTION_TOPIC} topic" in p for p in problems)
    scores = report(tmp_path / "out", "offline")["scores"]
    assert scores["recognition"] is None and scores["actions"] == 0
    assert scores["refinement"]["input"]["mpjpe"]["count"][0] > 0  # everything else is still scored
    assert "## Problems (the report is partial)" in (tmp_path / "out" / "offline" / "report.md").read_text()
    assert "problem: 1 malformed message(s) skipped" in capsys.readouterr().err


def break_mcap_chunk(path, index):
    """Gives the first record inside the index-th chunk of an (uncompressed) MCAP file an impossible length."""
    data = bytearray(path.read_bytes())
    position, chunks = 8, []  # after the magic: records of opcode (1 byte), length (uint64), body
    while data[position] != 0x0F:  # footer
        if data[position] == 0x06:
            chunks.append(position + 9)
        position += 9 + struct.unpack_from("<Q", data, position + 1)[0]
    body = chunks[index]  # start, end time, uncompressed size (3 x uint64), crc (uint32), compression (string)
    compression_length = struct.unpack_from("<I", data, body + 28)[0]
    first_record = body + 32 + compression_length + 8  # + records length (uint64)
    struct.pack_into("<Q", data, first_record + 1, 2**62)
    path.write_bytes(bytes(data))
    return len(chunks)


def test_storage_damaged_in_the_middle_is_skipped_and_the_rest_scored(tmp_path, checkpoint, synthetic_bag, sequence):
    filler = serialize_message(String(data="x" * 400_000))  # 1 MiB chunks: a few seconds of bag per chunk

    def add_filler(records):
        seconds = sorted({r[2] for r in records})[::30]
        return sorted(records + [["/filler", "std_msgs/msg/String", stamp, filler] for stamp in seconds],
                      key=lambda r: r[2])

    bag = rewrite_bag(synthetic_bag, tmp_path / "bag", add_filler, frames=sequence.num_frames)
    assert break_mcap_chunk(next(bag.glob("*.mcap")), 1) >= 3
    assert evaluate(bag, tmp_path / "out", checkpoint, "offline") == bag_cli.EXIT_PARTIAL
    result = report(tmp_path / "out", "offline")
    assert any(p.startswith("skipped the unreadable parts of the bag") for p in result["details"]["problems"])
    frames = result["details"]["pipeline_stats"]["frames"]
    assert 0 < frames < sequence.num_frames and result["scores"]["frames"] == frames
    assert result["scores"]["refinement"]["refined"]["mpjpe"]["count"][0] > 0


@pytest.mark.parametrize("damage, message", [
    ("truncated", "cannot be opened"),
    ("foreign input type", "topic /hands has type my_robot/msg/Hands, expected ghtt/msg/TwoHandPose"),
    ("no input topic", "has no input topic /hands"),
])
def test_unusable_bags_are_clear_errors(tmp_path, checkpoint, synthetic_bag, capsys, damage, message):
    if damage == "truncated":
        bag = rewrite_bag(synthetic_bag, tmp_path / "bag", lambda records: records)
        (storage,) = bag.glob("*.mcap")
        storage.write_bytes(storage.read_bytes()[: storage.stat().st_size // 2])
    elif damage == "foreign input type":
        bag = rewrite_bag(synthetic_bag, tmp_path / "bag", lambda records: [
            [INPUT_TOPIC, "my_robot/msg/Hands", r[2], b"\x00\x01\x00\x00" + bytes(8)] if r[0] == INPUT_TOPIC else r
            for r in records], {"my_robot/msg/Hands": "float64 x"})
    else:
        bag = rewrite_bag(synthetic_bag, tmp_path / "bag", lambda records: [r for r in records
                                                                             if r[0] != INPUT_TOPIC])
    started = time.monotonic()
    assert evaluate(bag, tmp_path / "out", checkpoint, "offline") == 1
    assert time.monotonic() - started < 20
    error = capsys.readouterr().err
    assert error.startswith("ghtt-bag: error: ") and message in error and str(bag) in error


def test_live_mode_with_a_broken_model_fails_fast(tmp_path, synthetic_bag, capsys, own_ros_domain):
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"not a checkpoint")
    started = time.monotonic()
    assert evaluate(synthetic_bag, tmp_path / "out", broken, "live") == 1
    assert time.monotonic() - started < 25
    assert "the ghtt_pipeline node did not become active" in capsys.readouterr().err


def test_player_remaps_topics_and_rejects_bad_remappings(synthetic_bag, own_ros_domain):
    context = rclpy.Context()
    rclpy.init(context=context)
    node = rclpy.create_node("remap_test", context=context)
    try:
        player = BagPlayer(node, synthetic_bag, topics=[INPUT_TOPIC], remap={INPUT_TOPIC: "/robot/hands"})
        assert player.published_topics == {INPUT_TOPIC: "/robot/hands"}
        assert dict(node.get_publisher_names_and_types_by_node("remap_test", "/"))["/robot/hands"] == [
            "ghtt/msg/TwoHandPose"]
        with pytest.raises(BagError, match=r"cannot remap \['/nope'\]"):
            BagPlayer(node, synthetic_bag, topics=[INPUT_TOPIC], remap={"/nope": "/x"})
        with pytest.raises(BagError, match="distinct topics other than /clock"):
            BagPlayer(node, synthetic_bag, remap={INPUT_TOPIC: GT_HANDS_TOPIC})
        with pytest.raises(BagError, match="FROM:=TO"):
            parse_remappings(["/a=/b"])
        assert parse_remappings(["/a:=/b", "/c:=/d"]) == {"/a": "/b", "/c": "/d"}
    finally:
        node.destroy_node()
        context.try_shutdown()
