"""rosbag2 recording, reading and playback without rosbag2: the pure-Python `rosbags` package does the file format,
rclpy does the transport (raw CDR bytes in, raw CDR bytes out, so messages are never decoded on the way).

Message definitions: the bag must carry the .msg text of every recorded type. Types of the standard ROS 2 Kilted
typestore (sensor_msgs, std_msgs, visualization_msgs, ...) are built into `rosbags`; any other type is registered
from the `msg/*.msg` files of its package, found in the package's installed share directory
(`ament_index_python.get_package_share_directory(<pkg>)/msg`, i.e. `.venv/share/ghtt/msg` here and
`install/share/ghtt/msg` after colcon). For `ghtt` itself the repository's `msg/` is the fallback when the package is
not installed (running from a source checkout).

CLI: `ghtt-bag record|play|info ...` (= `python -m ghtt_ros.bag`; docs/bags.md).
"""

from __future__ import annotations

import importlib
import struct
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from rclpy.clock import Clock, ClockType
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from rclpy.serialization import deserialize_message
from rosbags.rosbag2 import Reader, ReaderError, StoragePlugin, Writer
from rosbags.typesys import Stores, get_types_from_msg, get_typestore

from ghtt_ros.stop_signal import StopSignal

REPO_MSG_DIR = Path(__file__).resolve().parents[2] / "msg"
STORAGES = {"mcap": StoragePlugin.MCAP, "sqlite3": StoragePlugin.SQLITE3}
ROSBAG2_VERSION = 9
CLOCK_TOPIC = "/clock"
_NS_PER_S = 1_000_000_000


class BagError(RuntimeError):
    """A bag cannot be read, written or played; the message says which file, topic or type and why."""


# ---- message types ----------------------------------------------------------------------------------------------

def message_class(msgtype: str):
    """'pkg/msg/Name' -> the generated rclpy class; BagError when this Python environment does not have it."""
    parts = msgtype.split("/")
    if len(parts) != 3:
        raise BagError(f"message type {msgtype!r} is not of the form 'package/msg/Name'")
    package, kind, name = parts
    try:
        return getattr(importlib.import_module(f"{package}.{kind}"), name)
    except (ImportError, AttributeError) as error:
        raise BagError(f"message type {msgtype!r} is not available in this Python environment ({error}); "
                       f"build/install the package that defines it") from error


def package_msg_dir(package: str) -> Path:
    """The directory with the package's .msg files: its installed share dir, or the repository's msg/ for ghtt."""
    from ament_index_python.packages import PackageNotFoundError, get_package_share_directory

    try:
        installed = Path(get_package_share_directory(package)) / "msg"
        if installed.is_dir():
            return installed
    except PackageNotFoundError:
        pass  # not installed: the source checkout below is the only other place we know
    if package == "ghtt" and REPO_MSG_DIR.is_dir():
        return REPO_MSG_DIR
    raise BagError(f"no .msg definitions found for package {package!r} (not in the ament index "
                   f"{'' if package != 'ghtt' else 'and no repository msg/ dir'}); cannot describe its types in a bag")


def make_typestore(packages=("ghtt",)):
    """The ROS 2 Kilted typestore plus every .msg type of the given packages (registered together, so types that
    refer to each other, like ActionRecognition -> ActionHypothesis, resolve)."""
    typestore = get_typestore(Stores.ROS2_KILTED)
    for package in packages:
        register_package_types(typestore, package)
    return typestore


def register_package_types(typestore, package: str):
    types = {}
    for path in sorted(package_msg_dir(package).glob("*.msg")):
        types.update(get_types_from_msg(path.read_text(), f"{package}/msg/{path.stem}"))
    typestore.register(types)


def ensure_type_known(typestore, msgtype: str):
    """Registers the package of `msgtype` when the typestore does not know it yet; BagError when impossible."""
    if msgtype not in typestore.fielddefs:
        register_package_types(typestore, msgtype.split("/")[0])
    if msgtype not in typestore.fielddefs:
        raise BagError(f"message type {msgtype!r}: no definition in the typestore or in its package's msg/ dir")


# ---- recording --------------------------------------------------------------------------------------------------

def _subscription_qos(publishers_info, depth):
    """Matches what the publishers offer: reliable / transient-local only when every publisher offers it (a stricter
    request would not match the others)."""
    reliable = bool(publishers_info) and all(
        info.qos_profile.reliability == ReliabilityPolicy.RELIABLE for info in publishers_info)
    latched = bool(publishers_info) and all(
        info.qos_profile.durability == DurabilityPolicy.TRANSIENT_LOCAL for info in publishers_info)
    return QoSProfile(depth=depth,
                      reliability=ReliabilityPolicy.RELIABLE if reliable else ReliabilityPolicy.BEST_EFFORT,
                      durability=DurabilityPolicy.TRANSIENT_LOCAL if latched else DurabilityPolicy.VOLATILE)


@dataclass
class RecorderStats:
    messages: dict = field(default_factory=dict)  # topic -> messages written
    skipped_topics: dict = field(default_factory=dict)  # topic -> why it is not recorded


class BagRecorder(Node):
    """Records topics into a rosbag2 directory (MCAP by default). topics=None records every topic it discovers
    (re-checked every `discovery_period_s`), except /rosout and /parameter_events. Timestamps are the receive time on
    this node's clock (sim time when use_sim_time is set), as in `ros2 bag record`. Call close() to finish the bag
    (metadata.yaml is written then; an unclosed bag is unreadable)."""

    IGNORED_TOPICS = ("/rosout", "/parameter_events")

    def __init__(self, path, topics=None, storage="mcap", node_name="ghtt_bag_recorder", discovery_period_s=0.5,
                 queue_depth=100, **node_kwargs):
        super().__init__(node_name, **node_kwargs)
        if storage not in STORAGES:
            raise BagError(f"unknown bag storage {storage!r} (known: {sorted(STORAGES)})")
        self.path = Path(path)
        if self.path.exists():
            raise BagError(f"bag path {self.path} already exists; rosbag2 writes a new directory")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._wanted = None if topics is None else [self.resolve_topic_name(t) for t in topics]
        self._queue_depth = queue_depth
        self._typestore = make_typestore()
        self._writer = Writer(self.path, version=ROSBAG2_VERSION, storage_plugin=STORAGES[storage])
        self._writer.open()
        self._writer_lock = threading.Lock()
        self._bag_connections = {}
        self._raw_subscriptions = {}
        self.stats = RecorderStats()
        self._discover()
        # Discovery runs on the steady clock: under use_sim_time a ROS-clock timer would not fire before the first
        # /clock message (topics appearing later would never be recorded).
        self._discovery_timer = self.create_timer(discovery_period_s, self._discover,
                                                  clock=Clock(clock_type=ClockType.STEADY_TIME))

    @property
    def recorded_topics(self):
        return sorted(self._bag_connections)

    def _discover(self):
        for topic, types in self.get_topic_names_and_types():
            if topic in self._raw_subscriptions or topic in self.stats.skipped_topics or topic in self.IGNORED_TOPICS:
                continue
            if self._wanted is not None and topic not in self._wanted:
                continue
            if len(types) != 1:
                self._skip(topic, f"published with several types {types}")
                continue
            self._subscribe(topic, types[0])

    def _skip(self, topic, reason):
        self.stats.skipped_topics[topic] = reason
        self.get_logger().error(f"not recording {topic}: {reason}")

    def _subscribe(self, topic, msgtype):
        try:
            cls = message_class(msgtype)
            ensure_type_known(self._typestore, msgtype)
        except BagError as error:
            self._skip(topic, str(error))
            return
        with self._writer_lock:
            self._bag_connections[topic] = self._writer.add_connection(topic, msgtype, typestore=self._typestore)
        qos = _subscription_qos(self.get_publishers_info_by_topic(topic), self._queue_depth)
        self._raw_subscriptions[topic] = self.create_subscription(
            cls, topic, lambda data, t=topic: self._write(t, data), qos, raw=True)
        self.stats.messages[topic] = 0
        self.get_logger().info(f"recording {topic} [{msgtype}]")

    def _write(self, topic, data):
        stamp_ns = self.get_clock().now().nanoseconds
        with self._writer_lock:
            if self._writer is None:
                return  # a message that was already queued when the bag was closed
            self._writer.write(self._bag_connections[topic], stamp_ns, data)
            self.stats.messages[topic] += 1

    def close(self):
        """Stops recording and finishes the bag; returns its path. Idempotent."""
        self.destroy_timer(self._discovery_timer)
        for subscription in self._raw_subscriptions.values():
            self.destroy_subscription(subscription)
        self._raw_subscriptions.clear()
        with self._writer_lock:
            if self._writer is not None:
                self._writer.close()
                self._writer = None
        return self.path

    def destroy_node(self):
        self.close()
        return super().destroy_node()


# ---- reading ----------------------------------------------------------------------------------------------------

@dataclass
class BagInfo:
    path: Path
    storage: str
    start_ns: int  # first message stamp
    end_ns: int  # last message stamp
    topics: dict  # topic -> (msgtype, message count)

    @property
    def duration_s(self):
        return (self.end_ns - self.start_ns) / _NS_PER_S


class _OpenBag:
    """A rosbags Reader whose format errors (missing metadata, truncated or corrupt storage) become BagErrors."""

    def __init__(self, path):
        self.path = Path(path)
        if not self.path.exists():
            raise BagError(f"bag {self.path} does not exist")
        if not (self.path / "metadata.yaml").is_file():
            raise BagError(f"{self.path} is not a rosbag2 directory (no metadata.yaml; an unfinished recording "
                           f"has none)")
        try:
            metadata = yaml.safe_load((self.path / "metadata.yaml").read_text())
            self.storage = metadata["rosbag2_bagfile_information"]["storage_identifier"]
            self.reader = Reader(self.path)
            self.reader.open()
        except (ReaderError, OSError, ValueError, KeyError, TypeError, yaml.YAMLError) as error:
            raise BagError(f"bag {self.path} cannot be opened: {error!r}") from error

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.reader.close()

    def connections(self, topics):
        by_topic = {c.topic: c for c in self.reader.connections}
        if topics is None:
            return list(by_topic.values())
        missing = [t for t in topics if t not in by_topic]
        if missing:
            raise BagError(f"bag {self.path} has no topic(s) {missing}; it has {sorted(by_topic)}")
        return [by_topic[t] for t in topics]

    def messages(self, connections, start_ns=None, stop_ns=None):
        """-> (connection, stamp_ns, raw CDR bytes) in stamp order, for start_ns <= stamp < stop_ns when given."""
        try:
            yield from self.reader.messages(connections=connections, start=start_ns, stop=stop_ns)
        except (ReaderError, OSError, ValueError, EOFError, OverflowError, struct.error) as error:
            raise BagError(f"bag {self.path} is damaged (truncated or corrupt storage file): {error}") from error


def bag_info(path) -> BagInfo:
    with _OpenBag(path) as bag:
        reader = bag.reader
        counts = {c.topic: (c.msgtype, c.msgcount) for c in reader.connections}
        # rosbags reports an exclusive end (last stamp + 1); an empty bag reports start > end.
        return BagInfo(bag.path, bag.storage, reader.start_time, max(reader.start_time, reader.end_time - 1), counts)


def read_raw(path, topics=None, start_ns=None, stop_ns=None):
    """Yields (topic, msgtype, stamp_ns, CDR bytes) in stamp order, for start_ns <= stamp < stop_ns when given.
    BagError for a missing/damaged bag or topic."""
    with _OpenBag(path) as bag:
        for connection, stamp_ns, data in bag.messages(bag.connections(topics), start_ns, stop_ns):
            yield connection.topic, connection.msgtype, stamp_ns, data


def read_messages(path, topics=None, start_ns=None, stop_ns=None):
    """Yields (topic, stamp_ns, rclpy message) in stamp order (start_ns <= stamp < stop_ns when given); stamp_ns is
    the bag (receive) time. BagError for a missing or damaged bag, a missing topic, or a message type this Python
    environment cannot import."""
    classes = {}
    for topic, msgtype, stamp_ns, data in read_raw(path, topics, start_ns, stop_ns):
        if msgtype not in classes:
            classes[msgtype] = message_class(msgtype)
        yield topic, stamp_ns, deserialize_message(data, classes[msgtype])


# ---- playback ---------------------------------------------------------------------------------------------------

class BagPlayer:
    """Publishes a bag's raw messages on `node` with the original timing divided by `rate` (float("inf"): as fast as
    possible), optionally in a loop, and publishes the bag time on /clock (so nodes with use_sim_time see the recorded
    time). Each loop restarts the clock at the bag's start, as `ros2 bag play --loop` does. Message types must be
    importable (BagError if not).

    remap: {bag topic: published topic} (topics not in it keep their names). before_publish(topic, stamp_ns), when
    given, is called right before each message is published (after the timing wait) and may block, e.g. to pace the
    playback on a consumer's progress; `topic` is the bag topic."""

    def __init__(self, node: Node, path, rate=1.0, loop=False, topics=None, publish_clock=True, clock_hz=100.0,
                 qos_depth=100, remap=None, before_publish=None):
        if not rate > 0:
            raise BagError(f"playback rate must be > 0, got {rate}")
        self.node = node
        self.path = Path(path)
        self.rate = float(rate)
        self.loop = loop
        self.info = bag_info(self.path)
        self.topics = list(self.info.topics) if topics is None else list(topics)
        missing = [t for t in self.topics if t not in self.info.topics]
        if missing:
            raise BagError(f"bag {self.path} has no topic(s) {missing}; it has {sorted(self.info.topics)}")
        remap = dict(remap or {})
        unknown = sorted(set(remap) - set(self.topics))
        if unknown:
            raise BagError(f"cannot remap {unknown}: not among the played topics {sorted(self.topics)}")
        self.published_topics = {topic: remap.get(topic, topic) for topic in self.topics}
        targets = list(self.published_topics.values())
        if len(set(targets)) != len(targets) or CLOCK_TOPIC in targets:
            raise BagError(f"remapping must give distinct topics other than {CLOCK_TOPIC}, got {self.published_topics}")
        qos = QoSProfile(depth=qos_depth, reliability=ReliabilityPolicy.RELIABLE)
        self._publishers = {topic: node.create_publisher(message_class(self.info.topics[topic][0]), target, qos)
                            for topic, target in self.published_topics.items()}
        self._before_publish = before_publish
        self._clock_publisher = None
        if publish_clock:
            from rosgraph_msgs.msg import Clock as ClockMessage

            self._clock_cls = ClockMessage
            self._clock_publisher = node.create_publisher(ClockMessage, CLOCK_TOPIC, 10)
        self._clock_period_s = 1.0 / clock_hz
        self._stop = threading.Event()
        self.published = 0

    def stop(self):
        self._stop.set()

    def play(self):
        """Blocks until the bag has been played (forever with loop=True, until stop()). Returns messages published."""
        while not self._stop.is_set():
            self._play_once()
            if not self.loop:
                break
        return self.published

    def _play_once(self):
        wall_start = time.monotonic()
        for topic, _, stamp_ns, data in read_raw(self.path, self.topics):
            self._wait_until(wall_start, stamp_ns)
            if self._before_publish is not None:
                self._before_publish(topic, stamp_ns)
            if self._stop.is_set():
                return
            self._publish_clock(stamp_ns)
            self._publishers[topic].publish(data)
            self.published += 1

    def _wait_until(self, wall_start, stamp_ns):
        """Sleeps until the wall time of `stamp_ns`, publishing the advancing bag time on /clock meanwhile."""
        due = wall_start + (stamp_ns - self.info.start_ns) / _NS_PER_S / self.rate
        while not self._stop.is_set():
            remaining = due - time.monotonic()
            if remaining <= 0:
                return
            time.sleep(min(remaining, self._clock_period_s))
            elapsed_bag_ns = int((time.monotonic() - wall_start) * self.rate * _NS_PER_S)
            self._publish_clock(min(self.info.start_ns + elapsed_bag_ns, stamp_ns))

    def _publish_clock(self, stamp_ns):
        if self._clock_publisher is None:
            return
        msg = self._clock_cls()
        msg.clock.sec, msg.clock.nanosec = divmod(int(stamp_ns), _NS_PER_S)
        self._clock_publisher.publish(msg)


# ---- CLI --------------------------------------------------------------------------------------------------------

def _cli_record(args):
    import rclpy
    from rclpy.signals import SignalHandlerOptions

    # The command line is ours (argparse; rcl would read FROM:=TO words as remappings), and so are the signals:
    # SIGINT / SIGTERM end the recording with the bag closed (metadata written) and exit status 0.
    rclpy.init(args=[], signal_handler_options=SignalHandlerOptions.NO)
    stop = StopSignal()
    recorder = BagRecorder(args.output, topics=args.topics or None, storage=args.storage)
    deadline = None if args.duration is None else time.monotonic() + args.duration
    print(f"recording {'all topics' if not args.topics else ' '.join(args.topics)} into {args.output} "
          f"(Ctrl-C to stop)", flush=True)
    try:
        while not stop.received and (deadline is None or time.monotonic() < deadline):
            rclpy.spin_once(recorder, timeout_sec=0.1)
    finally:
        recorder.close()
        counts = dict(recorder.stats.messages)
        recorder.destroy_node()
        rclpy.try_shutdown()
    print(f"wrote {args.output}: {counts}", flush=True)


def _cli_play(args):
    import rclpy
    from rclpy.signals import SignalHandlerOptions

    rclpy.init(args=[], signal_handler_options=SignalHandlerOptions.NO)  # as record: our arguments, our signals
    stop = StopSignal()
    node = rclpy.create_node("ghtt_bag_player")
    try:
        player = BagPlayer(node, args.bag, rate=args.rate, loop=args.loop, topics=args.topics or None,
                           publish_clock=not args.no_clock, remap=parse_remappings(args.remap))
        stop.on_stop = player.stop  # SIGINT / SIGTERM end a (looping) playback; exit status 0
        print(f"playing {args.bag}{' in a loop' if args.loop else ''} (Ctrl-C to stop)", flush=True)
        if not stop.wait(args.discovery_wait):  # let subscribers match before the first message
            player.play()
        print(f"published {player.published} messages from {args.bag}", flush=True)
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


def _cli_info(args):
    info = bag_info(args.bag)
    print(f"{info.path}  storage {info.storage}  duration {info.duration_s:.3f} s")
    for topic, (msgtype, count) in sorted(info.topics.items()):
        print(f"  {topic:40s} {msgtype:40s} {count}")


def parse_remappings(assignments):
    """["FROM:=TO", ...] (the ROS remapping syntax) -> {FROM: TO}."""
    remap = {}
    for assignment in assignments or ():
        source, separator, target = assignment.partition(":=")
        if not (separator and source and target):
            raise BagError(f"--remap expects FROM:=TO, got {assignment!r}")
        remap[source] = target
    return remap


def register_commands(commands):
    """Adds record, play and info to an argparse subparsers object (also used by ghtt_ros.bag.cli)."""
    record = commands.add_parser("record", help="record topics (all discovered topics when none are given)",
                                 description="Record topics into a new rosbag2 directory until Ctrl-C / SIGTERM or "
                                             "--duration; the bag is closed (readable) either way.")
    record.add_argument("topics", nargs="*", metavar="TOPIC",
                        help="topics to record, e.g. /hands /prediction (default: every topic discovered, also "
                             "those appearing later, except /rosout and /parameter_events)")
    record.add_argument("-o", "--output", required=True, help="new bag directory (must not exist)")
    record.add_argument("--storage", choices=sorted(STORAGES), default="mcap", help="bag storage format")
    record.add_argument("--duration", type=float, help="seconds (default: until Ctrl-C or SIGTERM)")
    record.set_defaults(run=_cli_record)
    play = commands.add_parser("play", help="publish a bag with its original timing",
                               description="Publish a bag's messages with their recorded timing (and /clock) until "
                                           "its end, or until Ctrl-C / SIGTERM with --loop.")
    play.add_argument("bag", help="bag directory")
    play.add_argument("--topics", nargs="*", metavar="TOPIC",
                      help="bag topics to publish (default: all of them)")
    play.add_argument("--remap", nargs="*", metavar="FROM:=TO", help="publish bag topic FROM on topic TO")
    play.add_argument("--rate", type=float, default=1.0, help="speed factor (inf: as fast as possible)")
    play.add_argument("--loop", action="store_true",
                      help="start again at the end (the /clock restarts at the bag's start each time)")
    play.add_argument("--no-clock", action="store_true", help="do not publish /clock")
    play.add_argument("--discovery-wait", type=float, default=1.0, help="seconds to wait for subscribers")
    play.set_defaults(run=_cli_play)
    info = commands.add_parser("info", help="topics, types, counts and duration of a bag")
    info.add_argument("bag", help="bag directory")
    info.set_defaults(run=_cli_info)
