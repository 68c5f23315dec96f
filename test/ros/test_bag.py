"""rosbag2 recorder / reader / player (ghtt_ros.bag.io): messages published by another process are recorded and read
back byte-identical; playback keeps the timing and publishes /clock; damaged bags give clear errors."""

import threading
import time

import numpy as np
import pytest
import rclpy
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rclpy.serialization import serialize_message
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import get_types_from_msg
from rosgraph_msgs.msg import Clock

from ghtt.msg import TwoHandPose
from ghtt_ros import convert
from ghtt_ros.bag import io as bag
from sample_messages import assert_messages_equal, make_samples

RECORDED_TYPES = ("TwoHandPose", "TwoHandPoseArray", "ActionRecognition", "MotionPrediction")


@pytest.fixture
def ros():
    rclpy.init()
    yield
    rclpy.try_shutdown()


def record_samples(path, topics, storage, min_messages=2, timeout_s=30):
    recorder = bag.BagRecorder(path, topics=topics, storage=storage)
    wanted = [f"/sample_{name}" for name in RECORDED_TYPES]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and not all(recorder.stats.messages.get(t, 0) >= min_messages for t in wanted):
        rclpy.spin_once(recorder, timeout_sec=0.05)
    recorder.close()
    stats = recorder.stats
    recorder.destroy_node()
    return stats


@pytest.mark.parametrize("storage, listed", [("mcap", True), ("sqlite3", False)])
def test_records_another_process_and_reads_back_identical(tmp_path, ros, publisher_process, storage, listed):
    path = tmp_path / "bag"
    topics = [f"sample_{name}" for name in RECORDED_TYPES] if listed else None
    stats = record_samples(path, topics, storage)

    expected = {f"/sample_{name}": msg for name, msg in make_samples().items()}
    recorded = {f"/sample_{name}" for name in RECORDED_TYPES}
    assert recorded <= set(stats.messages)
    if listed:
        assert set(stats.messages) == recorded  # nothing beyond the listed topics
    else:
        assert set(stats.messages) == set(expected)  # discovered every published topic
    assert all(stats.messages[t] >= 2 for t in recorded)

    info = bag.bag_info(path)
    assert info.storage == storage
    assert info.topics["/sample_MotionPrediction"][0] == "ghtt/msg/MotionPrediction"
    read = list(bag.read_messages(path))
    assert len(read) == sum(stats.messages.values())
    stamps = [stamp for _, stamp, _ in read]
    assert stamps == sorted(stamps) and info.start_ns == stamps[0] and info.end_ns == stamps[-1]
    for topic, _, msg in read:
        assert_messages_equal(msg, expected[topic], topic)
    prediction, _, _ = convert.motion_prediction_from_msg(
        next(msg for topic, _, msg in read if topic == "/sample_MotionPrediction"))
    assert prediction.positions.shape == (20, 96, 2, 21, 3)

    only = list(bag.read_messages(path, topics=["/sample_ActionRecognition"]))
    assert only and {topic for topic, _, _ in only} == {"/sample_ActionRecognition"}


def write_pose_bag(path, stamps_ns, storage=StoragePlugin.MCAP):
    """A bag written without ROS: TwoHandPose messages whose wrist x encodes their index."""
    typestore = bag.make_typestore()
    messages = []
    with Writer(path, version=bag.ROSBAG2_VERSION, storage_plugin=storage) as writer:
        connection = writer.add_connection("/hands", "ghtt/msg/TwoHandPose", typestore=typestore)
        for index, stamp in enumerate(stamps_ns):
            joints = np.zeros((2, 21, 3), np.float32)
            joints[:, 0, 0] = index
            msg = convert.two_hand_pose_to_msg(convert.TwoHandArrays(
                stamp_ns=stamp, frame_id="cam", joints=joints, presence=np.array([True, True]),
                confidence=np.ones(2, np.float32)))
            writer.write(connection, stamp, serialize_message(msg))
            messages.append(msg)
    return messages


def test_player_keeps_timing_scaled_by_rate_and_publishes_clock(tmp_path, ros):
    start = 5_000_000_000
    stamps = [start + i * 200_000_000 for i in range(5)]  # 0.2 s apart
    messages = write_pose_bag(tmp_path / "bag", stamps)

    node = rclpy.create_node("ghtt_test_bag_listener")
    arrivals, clock = [], []
    qos = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
    node.create_subscription(TwoHandPose, "/hands", lambda m: arrivals.append((time.monotonic(), m)), qos)
    node.create_subscription(Clock, "/clock", lambda m: clock.append(convert.stamp_to_ns(m.clock)), 100)
    player_node = rclpy.create_node("ghtt_test_bag_player")
    player = bag.BagPlayer(player_node, tmp_path / "bag", rate=2.0)
    deadline = time.monotonic() + 10
    while node.count_publishers("/hands") == 0 or player_node.count_subscribers("/hands") == 0:
        rclpy.spin_once(node, timeout_sec=0.05)
        assert time.monotonic() < deadline, "player and listener did not match"
    thread = threading.Thread(target=player.play)
    thread.start()
    while (thread.is_alive() or len(arrivals) < len(stamps)) and time.monotonic() < deadline:
        rclpy.spin_once(node, timeout_sec=0.05)
    thread.join()
    for _ in range(20):  # drain what is still queued
        rclpy.spin_once(node, timeout_sec=0.01)

    assert player.published == len(stamps)
    assert len(arrivals) == len(messages)
    for (_, received), sent in zip(arrivals, messages):
        assert_messages_equal(received, sent)
    gaps = np.diff([t for t, _ in arrivals])
    np.testing.assert_allclose(gaps, 0.1, atol=0.05)  # 0.2 s of bag time at rate 2
    assert clock[0] >= start and clock[-1] == stamps[-1] and clock == sorted(clock)
    assert len(clock) > len(stamps)  # /clock also advances between messages
    node.destroy_node()
    player_node.destroy_node()


def test_player_rejects_missing_topic_and_bad_rate(tmp_path, ros):
    write_pose_bag(tmp_path / "bag", [1, 2])
    node = rclpy.create_node("ghtt_test_bad_player")
    with pytest.raises(bag.BagError, match=r"no topic\(s\) \['/nope'\].*'/hands'"):
        bag.BagPlayer(node, tmp_path / "bag", topics=["/nope"])
    with pytest.raises(bag.BagError, match="rate"):
        bag.BagPlayer(node, tmp_path / "bag", rate=0)
    node.destroy_node()


@pytest.mark.parametrize("storage, suffix", [(StoragePlugin.MCAP, ".mcap"), (StoragePlugin.SQLITE3, ".db3")])
def test_truncated_bag_gives_clear_error(tmp_path, storage, suffix):
    path = tmp_path / "bag"
    write_pose_bag(path, [i * 1_000_000 for i in range(200)], storage=storage)
    (storage_file,) = path.glob(f"*{suffix}")
    data = storage_file.read_bytes()
    storage_file.write_bytes(data[: len(data) // 2])
    with pytest.raises(bag.BagError, match=r"bag .*bag (cannot be opened|is damaged)"):
        list(bag.read_messages(path))


def test_missing_bag_topic_and_unfinished_recording_give_clear_errors(tmp_path):
    with pytest.raises(bag.BagError, match="does not exist"):
        list(bag.read_messages(tmp_path / "nowhere"))
    (tmp_path / "unfinished").mkdir()
    with pytest.raises(bag.BagError, match="no metadata.yaml"):
        bag.bag_info(tmp_path / "unfinished")
    write_pose_bag(tmp_path / "bag", [1, 2])
    with pytest.raises(bag.BagError, match=r"no topic\(s\) \['/camera'\]"):
        list(bag.read_messages(tmp_path / "bag", topics=["/camera"]))


def test_unknown_message_type_gives_clear_error(tmp_path):
    typestore = bag.make_typestore()
    typestore.register(get_types_from_msg("float64 value", "robot_only_msgs/msg/Secret"))
    with Writer(tmp_path / "bag", version=bag.ROSBAG2_VERSION, storage_plugin=StoragePlugin.MCAP) as writer:
        connection = writer.add_connection("/secret", "robot_only_msgs/msg/Secret", typestore=typestore)
        writer.write(connection, 1, typestore.serialize_cdr(
            typestore.types["robot_only_msgs/msg/Secret"](value=1.0), "robot_only_msgs/msg/Secret"))
    assert bag.bag_info(tmp_path / "bag").topics == {"/secret": ("robot_only_msgs/msg/Secret", 1)}
    with pytest.raises(bag.BagError, match="'robot_only_msgs/msg/Secret' is not available"):
        list(bag.read_messages(tmp_path / "bag"))


def test_ghtt_types_are_described_from_the_installed_msg_files():
    msg_dir = bag.package_msg_dir("ghtt")
    assert (msg_dir / "MotionPrediction.msg").read_text() == (bag.REPO_MSG_DIR / "MotionPrediction.msg").read_text()
    typestore = bag.make_typestore()
    definition, _ = typestore.generate_msgdef("ghtt/msg/ActionRecognition", ros_version=2)
    assert "ghtt/ActionHypothesis[] hypotheses" in definition and "MSG: ghtt/ActionHypothesis" in definition
    with pytest.raises(bag.BagError, match="no .msg definitions found for package 'no_such_pkg'"):
        bag.ensure_type_known(typestore, "no_such_pkg/msg/Thing")
