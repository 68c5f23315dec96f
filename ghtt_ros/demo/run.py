"""The main demo (`make demo`): the full ghtt graph on built-in inputs, over real DDS, recorded to a rosbag2.

Two graphs run side by side, each started from its YAML by ghtt_ros.graph.runner.GraphRunner:
- camera path, namespace /camera (config/graph.yaml): a real video (sensor_msgs/Image + CameraInfo) ->
  hand_estimator (MediaPipe) -> ghtt_pipeline -> visualizer;
- pose path, namespace /pose (config/pose_input.yaml): a synthetic two-hand action sequence (fixed seed, estimator-
  like noise) published as ghtt/TwoHandPose -> ghtt_pipeline -> visualizer.
Both pipelines use the shipped small checkpoint (or --checkpoint). Recognized actions and prediction summaries are
printed as they arrive; every topic is recorded to runs/demo/<timestamp>/bag (MCAP); the end writes demo.png
(predicted vs ground-truth wrist trajectories with the sample fan, and a camera frame with the estimated skeleton).

Inputs are published at their own frame rate (--speed) but never run ahead of the graph: each camera frame waits for
the estimator's pose of the previous one, and the pose stream stays less than a clip ahead of the pipeline's
results (so its overload policy never skips one): a busy CPU slows the demo down instead of dropping frames.
Docs: docs/demo.md.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_VIDEO = REPO_ROOT.parent / "shared" / "fixtures" / "real_hands" / "videos" / "gesture_recognizer_test_video.mp4"
DEFAULT_OUTPUT = REPO_ROOT / "runs" / "demo"
CAMERA_NAMESPACE, POSE_NAMESPACE = "camera", "pose"
# Source stamps of the two streams (any fixed, distinct values: nothing in the graph reads the wall clock).
CAMERA_START_NS, POSE_START_NS = 1_000 * 10**9, 2_000 * 10**9
CLIP_LEN = 16
MAX_CLIPS_AHEAD = 1  # fewer than clip_stride poses wait behind a due result: none is skipped as stale
_NS_PER_S = 1_000_000_000


def checkpoint_missing_message(path):
    return (f"error: model checkpoint not found: {path}\n"
            "The demo trains nothing. Create the shipped small checkpoint as described in docs/training.md "
            "(section 'The shipped small checkpoint'), or pass --checkpoint PATH to a model from `ghtt train-action`.")


# ---- output monitoring ------------------------------------------------------------------------------------------

@dataclass
class StreamResult:
    stamp_ns: int
    recognition: object = None  # ghtt_core.results.Recognition
    prediction: object = None  # ghtt_core.results.Prediction
    spread: np.ndarray | None = None  # (T, 2, J) metres


class ProgressStamp:
    """The newest stamp seen on a topic; feeders wait on it so they never run far ahead of the graph."""

    def __init__(self):
        self._condition = threading.Condition()
        self.latest_ns = -1

    def update(self, stamp_ns):
        with self._condition:
            self.latest_ns = max(self.latest_ns, stamp_ns)
            self._condition.notify_all()

    def wait_for(self, stamp_ns, timeout_s):
        with self._condition:
            return self._condition.wait_for(lambda: self.latest_ns >= stamp_ns, timeout_s)


class StreamMonitor:
    """One pipeline's outputs: pairs ActionRecognition and MotionPrediction of the same result (same stamp),
    prints a line per result and keeps the results for the summary and the figure."""

    def __init__(self, name, start_stamp_ns, ground_truth=None):
        self.name = name
        self.start_stamp_ns = start_stamp_ns
        self.ground_truth = ground_truth  # stamp_ns -> label or None; None when the stream has no labels
        self.results: dict[int, StreamResult] = {}
        self.progress = ProgressStamp()  # last frame stamp of the newest result
        self._printed = set()
        self._lock = threading.Lock()

    def on_refined(self, msg):
        from ghtt_ros.convert import stamp_to_ns

        self._flush_before(stamp_to_ns(msg.frames[-1].header.stamp))
        self.progress.update(stamp_to_ns(msg.frames[-1].header.stamp))

    def on_action(self, msg):
        from ghtt_ros.convert import action_recognition_from_msg

        recognition = action_recognition_from_msg(msg)
        with self._lock:
            self._result(recognition.stamp_ns).recognition = recognition
        self._print_if_complete(recognition.stamp_ns)

    def on_prediction(self, msg):
        from ghtt_ros.convert import motion_prediction_from_msg

        prediction, _, spread = motion_prediction_from_msg(msg)
        with self._lock:
            result = self._result(prediction.stamp_ns)
            result.prediction, result.spread = prediction, spread
        self._print_if_complete(prediction.stamp_ns)

    def _result(self, stamp_ns):
        return self.results.setdefault(stamp_ns, StreamResult(stamp_ns))

    def _print_if_complete(self, stamp_ns):
        """Action and prediction of one result arrive on two topics in either order: print once both are in."""
        with self._lock:
            result = self.results[stamp_ns]
            complete = result.recognition is not None and result.prediction is not None
        if complete:
            self._print(stamp_ns)

    def _flush_before(self, stamp_ns):
        """Results missing a message (no prediction without a hand at the end of the clip) are printed once a
        newer one starts."""
        with self._lock:
            pending = [s for s in self.results if s < stamp_ns and s not in self._printed]
        for stamp in sorted(pending):
            self._print(stamp)

    def flush(self):
        self._flush_before(2**63)

    def _print(self, stamp_ns):
        with self._lock:
            if stamp_ns in self._printed:
                return
            self._printed.add(stamp_ns)
            result = self.results[stamp_ns]
        print(self.describe(result), flush=True)

    def describe(self, result: StreamResult):
        head = f"[{self.name}] t={(result.stamp_ns - self.start_stamp_ns) / _NS_PER_S:5.2f}s"
        parts = []
        if result.recognition is not None and result.recognition.hypotheses:
            top = result.recognition.hypotheses[0]
            text = f"top-1 {top.label!r} {top.score:.2f}"
            if self.ground_truth is not None:
                text += f" (gt: {self.ground_truth(result.stamp_ns) or 'no action'})"
            parts.append(text)
        if result.prediction is not None:
            samples, frames = result.prediction.positions.shape[:2]
            parts.append(f"pred {samples}x{frames} frames, spread@1s {spread_after(result, 1.0) * 1e3:.0f} mm")
        else:
            parts.append("no prediction (no hand in view)")
        return f"{head} {' | '.join(parts)}"

    def top1_accuracy(self):
        """Share of results whose top-1 label equals the ground truth (results inside a labelled action only)."""
        judged = [(r.recognition.hypotheses[0].label, self.ground_truth(r.stamp_ns)) for r in self.results.values()
                  if r.recognition is not None and r.recognition.hypotheses and self.ground_truth(r.stamp_ns)]
        return (sum(p == t for p, t in judged) / len(judged), len(judged)) if judged else (float("nan"), 0)


def spread_after(result: StreamResult, seconds):
    """Mean per-joint spread (metres) of the predicted frame `seconds` after the last observation, present hands."""
    period = result.prediction.frame_period_s
    index = min(result.spread.shape[0] - 1, max(0, int(round(seconds / period)) - 1))
    values = result.spread[index][np.asarray(result.prediction.hand_present, bool)]
    return float(np.mean(values)) if values.size else float("nan")


def start_graphs(checkpoint, device, num_samples, startup_timeout_s, camera_mode="composed", estimator=None,
                 clip_stride=None):
    """The camera graph (config/graph.yaml) in /camera and the pose-input graph (config/pose_input.yaml) in /pose,
    the pose graph composed in this process, the camera graph too or (camera_mode "process") one process per node;
    estimator: further hand_estimator parameters; clip_stride: the pipelines' (None: the graph files' streaming
    default). -> [camera GraphRunner, pose GraphRunner], every node active (else RuntimeError)."""
    from ghtt_ros.graph.spec import config_dir
    from ghtt_ros.graph.runner import GraphRunner

    pipeline = {"device": device, "checkpoint": str(checkpoint), "num_samples": num_samples}
    if clip_stride is not None:
        pipeline["clip_stride"] = clip_stride
    camera = GraphRunner(config_dir() / "graph.yaml", namespace=CAMERA_NAMESPACE, overrides={
        "ghtt_pipeline": pipeline, "hand_estimator": {"device": device, **(estimator or {})}}, mode=camera_mode)
    pose = GraphRunner(config_dir() / "pose_input.yaml", namespace=POSE_NAMESPACE,
                       overrides={"ghtt_pipeline": pipeline})
    graphs = []
    try:
        for graph in (camera, pose):
            graphs.append(graph.start())
        for graph in graphs:
            if not graph.wait_until_active(startup_timeout_s):
                errors = {name: node.error for name, node in graph.nodes.items() if node.error}
                raise RuntimeError(f"the graph did not become active: {graph.lifecycle_states()} {errors}")
    except BaseException:
        for graph in graphs:
            graph.stop()
        raise
    return graphs


# ---- the demo run -----------------------------------------------------------------------------------------------

@dataclass
class DemoOutputs:
    run_dir: Path
    bag: Path
    figure: Path
    counts: dict = field(default_factory=dict)  # topic -> messages recorded


class Demo:
    """Graphs, sources, monitors and recorder of one run. run() returns DemoOutputs."""

    def __init__(self, args):
        from ghtt_ros.demo.sources import SyntheticActionSource, VideoSource

        self.args = args
        self.video = VideoSource(args.video, CAMERA_START_NS, max_seconds=args.video_seconds)
        self.synthetic = SyntheticActionSource(args.seed, args.actions, POSE_START_NS)
        self.camera = StreamMonitor("camera", CAMERA_START_NS)
        self.pose = StreamMonitor("pose", POSE_START_NS, ground_truth=self._pose_label)
        self.estimated = {}  # camera stamp -> TwoHandArrays from hand_estimator
        self.estimator_progress = ProgressStamp()
        self.stalls = {"camera": 0, "pose": 0}  # waits for the graph that timed out

    def _pose_label(self, stamp_ns):
        segment = self.synthetic.action_at(self.synthetic.index_of(stamp_ns))
        return segment.label if segment else None

    def run(self) -> DemoOutputs:
        # One result per clip (the graphs' default streams 10 a second): the demo prints a line for each result, and
        # its feeders pace on clip ends.
        graphs = start_graphs(self.args.checkpoint, self.args.device, self.args.num_samples,
                              self.args.startup_timeout, clip_stride=CLIP_LEN)
        try:
            run_dir = Path(self.args.output) / datetime.now().strftime("%Y%m%d-%H%M%S")
            run_dir.mkdir(parents=True, exist_ok=False)
            bag_path, counts = self._stream_and_record(graphs, run_dir / "bag")
        finally:
            for graph in graphs:
                graph.stop()
        figure = self._write_figure(run_dir / "demo.png")
        return DemoOutputs(run_dir, bag_path, figure, counts)

    def _stream_and_record(self, graphs, bag_path):
        """Feeds both inputs through the running graphs while recording every topic; -> (bag path, counts)."""
        import rclpy
        from rclpy.executors import SingleThreadedExecutor

        from ghtt_ros.bag.io import BagRecorder

        rclpy.init()
        node = rclpy.create_node("ghtt_demo")
        # A deep queue: the recorder shares the executor thread with the monitors on a loaded CPU.
        recorder = BagRecorder(bag_path, topics=None, storage="mcap", queue_depth=1000)
        executor = SingleThreadedExecutor()  # see ghtt_ros.graph.runner: a multi-threaded one starves the graph
        executor.add_node(node)
        executor.add_node(recorder)
        threading.Thread(target=executor.spin, name="ghtt-demo-executor", daemon=True).start()
        try:
            publishers = self._connect(node)
            self._wait_until_ready(recorder, publishers)
            feeders = [threading.Thread(target=self._feed_camera, args=(publishers,), name="demo-camera"),
                       threading.Thread(target=self._feed_poses, args=(publishers,), name="demo-pose")]
            print(f"[demo] streaming {len(self.video.frames)} video frames ({self.video.path.name}) and "
                  f"{self.synthetic.num_frames} synthetic pose frames "
                  f"({', '.join(a.label for a in self.synthetic.sequence.actions)})", flush=True)
            for feeder in feeders:
                feeder.start()
            for feeder in feeders:
                feeder.join()
            self._wait_for_last_results()
            self.camera.flush()
            self.pose.flush()
        finally:
            recorder.close()
            executor.shutdown()
            recorder.destroy_node()
            node.destroy_node()
            rclpy.try_shutdown()
        return bag_path, dict(recorder.stats.messages)

    # ---- graph -------------------------------------------------------------------------------------------------

    def _connect(self, node):
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import CameraInfo, Image

        from ghtt.msg import ActionRecognition, MotionPrediction, TwoHandPose, TwoHandPoseArray
        from ghtt_ros.convert import two_hand_pose_from_msg

        reliable = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
        for namespace, monitor in ((CAMERA_NAMESPACE, self.camera), (POSE_NAMESPACE, self.pose)):
            node.create_subscription(TwoHandPoseArray, f"/{namespace}/refined_hands", monitor.on_refined, reliable)
            node.create_subscription(ActionRecognition, f"/{namespace}/action", monitor.on_action, reliable)
            node.create_subscription(MotionPrediction, f"/{namespace}/prediction", monitor.on_prediction, reliable)

        def on_estimated(msg):
            hands = two_hand_pose_from_msg(msg)
            self.estimated[hands.stamp_ns] = hands
            self.estimator_progress.update(hands.stamp_ns)

        node.create_subscription(TwoHandPose, f"/{CAMERA_NAMESPACE}/hands", on_estimated, reliable)
        return {
            "image": node.create_publisher(Image, f"/{CAMERA_NAMESPACE}/image", reliable),
            "camera_info": node.create_publisher(CameraInfo, f"/{CAMERA_NAMESPACE}/camera_info", reliable),
            "poses": node.create_publisher(TwoHandPose, f"/{POSE_NAMESPACE}/hands", reliable),
        }

    def _wait_until_ready(self, recorder, publishers):
        """Every input has its subscriber and the recorder records inputs and outputs, so nothing is missed.
        The input publishers must have matched both readers: a reader the graph lists is not always matched yet,
        and reliable delivery only covers matched readers."""
        inputs = [f"/{CAMERA_NAMESPACE}/image", f"/{POSE_NAMESPACE}/hands"]
        outputs = [f"/{ns}/{topic}" for ns in (CAMERA_NAMESPACE, POSE_NAMESPACE)
                   for topic in ("action", "prediction", "refined_hands")]
        deadline = time.monotonic() + self.args.startup_timeout
        while time.monotonic() < deadline:
            recorded = set(recorder.recorded_topics)
            subscribed = all(publishers[name].get_subscription_count() >= 2  # graph + recorder
                             for name in ("image", "poses"))
            if subscribed and set(inputs + outputs) <= recorded:
                return
            time.sleep(0.1)
        raise RuntimeError(f"graph topics not connected in {self.args.startup_timeout} s "
                           f"(recording: {sorted(recorder.recorded_topics)})")

    # ---- feeders -----------------------------------------------------------------------------------------------

    def _pace(self, wall_start, stamp_ns, start_ns):
        if self.args.speed > 0:
            delay = wall_start + (stamp_ns - start_ns) / _NS_PER_S / self.args.speed - time.monotonic()
            if delay > 0:
                time.sleep(delay)

    def _feed_camera(self, publishers):
        wall_start = time.monotonic()
        for frame in self.video.frames:
            self._pace(wall_start, frame.stamp_ns, CAMERA_START_NS)
            image, info = self.video.messages(frame)
            publishers["camera_info"].publish(info)
            publishers["image"].publish(image)
            # The estimator keeps only the newest image: wait for this one's pose before sending the next.
            if not self.estimator_progress.wait_for(frame.stamp_ns, self.args.wait_timeout):
                self.stalls["camera"] += 1

    def _feed_poses(self, publishers):
        wall_start = time.monotonic()
        stamps = self.synthetic.stamps_ns
        for index in range(self.synthetic.num_frames):
            self._pace(wall_start, int(stamps[index]), POSE_START_NS)
            answered_clip_end = ((index + 1) // CLIP_LEN - MAX_CLIPS_AHEAD) * CLIP_LEN - 1
            if answered_clip_end >= 0 and not self.pose.progress.wait_for(int(stamps[answered_clip_end]),
                                                                          self.args.wait_timeout):
                self.stalls["pose"] += 1
            publishers["poses"].publish(self.synthetic.message(index))

    def _wait_for_last_results(self):
        """The results of the last complete clip of each stream (pipelines lag their inputs)."""
        last_pose = (self.synthetic.num_frames // CLIP_LEN) * CLIP_LEN - 1
        if last_pose >= 0 and not self.pose.progress.wait_for(int(self.synthetic.stamps_ns[last_pose]),
                                                              self.args.wait_timeout):
            self.stalls["pose"] += 1
        last_camera = (len(self.video.frames) // CLIP_LEN) * CLIP_LEN - 1
        if last_camera >= 0 and not self.camera.progress.wait_for(self.video.frames[last_camera].stamp_ns,
                                                                  self.args.wait_timeout):
            self.stalls["camera"] += 1
        time.sleep(0.5)  # the last action/prediction messages trail the refined poses

    # ---- figure ------------------------------------------------------------------------------------------------

    def _write_figure(self, path):
        from ghtt_ros.demo.figure import save_demo_figure

        return save_demo_figure(path, self._pose_example(), self._camera_example())

    def _pose_example(self):
        """The latest pose-path prediction whose whole horizon is inside the sequence (else the longest one)."""
        from ghtt_ros.demo.figure import PoseExample

        candidates = [r for r in self.pose.results.values() if r.prediction is not None]
        if not candidates:
            return None
        sequence = self.synthetic.sequence

        def future_frames(result):
            index = self.synthetic.index_of(result.stamp_ns)
            return min(result.prediction.positions.shape[1], sequence.num_frames - index - 1)

        best = max(candidates, key=lambda r: (future_frames(r), r.stamp_ns))
        index = self.synthetic.index_of(best.stamp_ns)
        end = index + 1 + future_frames(best)
        top = best.recognition.hypotheses[0].label if best.recognition and best.recognition.hypotheses else "-"
        return PoseExample(
            observed=sequence.joints[max(0, index - 59):index + 1], future=sequence.joints[index + 1:end],
            future_presence=sequence.presence[index + 1:end], samples=best.prediction.positions,
            hand_present=best.prediction.hand_present,
            title=f"t={(best.stamp_ns - POSE_START_NS) / _NS_PER_S:.2f}s: recognized {top!r}, ground truth "
                  f"{self._pose_label(best.stamp_ns) or 'no action'!r}; {best.prediction.positions.shape[0]} samples")

    def _camera_example(self):
        """A frame with the most estimated hands, preferring one where a camera-path prediction was made."""
        from ghtt_ros.demo.figure import CameraExample

        frames = {frame.stamp_ns: frame for frame in self.video.frames}
        with_hands = [s for s, hands in self.estimated.items() if hands.presence.any() and s in frames]
        if not with_hands:
            return None
        predicted = {s: r for s, r in self.camera.results.items() if r.prediction is not None and s in with_hands}
        pool = list(predicted) or with_hands
        stamp = max(pool, key=lambda s: (int(self.estimated[s].presence.sum()), s))
        hands = self.estimated[stamp]
        prediction = predicted[stamp].prediction if stamp in predicted else None
        return CameraExample(
            rgb=np.ascontiguousarray(frames[stamp].bgr[:, :, ::-1]), intrinsics=self.video.intrinsics,
            joints=hands.joints, presence=hands.presence,
            samples=None if prediction is None else prediction.positions,
            hand_present=None if prediction is None else prediction.hand_present,
            title=f"camera path, t={(stamp - CAMERA_START_NS) / _NS_PER_S:.2f}s: MediaPipe skeleton"
                  + (" + predicted wrist paths (yellow)" if prediction is not None else ""))


# ---- CLI --------------------------------------------------------------------------------------------------------

def build_parser():
    from ghtt_ros.nodes.pipeline import SHIPPED_CHECKPOINT

    parser = argparse.ArgumentParser(prog="python -m ghtt_ros.demo", description=__doc__.split("\n")[0])
    parser.add_argument("--video", type=Path, default=DEFAULT_VIDEO, help="video for the camera path")
    parser.add_argument("--video-seconds", type=float, default=None, help="use only the first seconds of the video")
    parser.add_argument("--actions", type=int, default=3, help="actions in the synthetic sequence")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic sequence")
    parser.add_argument("--checkpoint", type=Path, default=SHIPPED_CHECKPOINT)
    parser.add_argument("--num-samples", type=int, default=20, help="predicted samples K")
    parser.add_argument("--device", default="cpu", help="torch device of the nodes (cpu, cuda)")
    parser.add_argument("--speed", type=float, default=1.0,
                        help="playback speed of the inputs (0 = as fast as the graph keeps up)")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="runs go to OUTPUT/<timestamp>/")
    parser.add_argument("--startup-timeout", type=float, default=60.0, help="seconds for the graph to start")
    parser.add_argument("--wait-timeout", type=float, default=20.0,
                        help="seconds an input waits for the graph before going on (counted as a stall)")
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    if not args.checkpoint.is_file():
        print(checkpoint_missing_message(args.checkpoint), file=sys.stderr)
        return 2
    import torch

    from ghtt_ros.demo.sources import SourceError

    torch.set_num_threads(1)  # the nodes share this process; one thread each keeps the executor responsive
    started = time.monotonic()
    try:
        demo = Demo(args)
        outputs = demo.run()
    except SourceError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    accuracy, judged = demo.pose.top1_accuracy()
    print(f"[demo] done in {time.monotonic() - started:.1f} s: pose path {len(demo.pose.results)} results "
          f"(top-1 {accuracy:.0%} of {judged} inside actions), camera path {len(demo.camera.results)} results, "
          f"stalls {demo.stalls}")
    print(f"[demo] bag:    {outputs.bag} ({sum(outputs.counts.values())} messages on {len(outputs.counts)} topics)")
    print(f"[demo] figure: {outputs.figure}")
    if not any(r.prediction is not None for r in demo.pose.results.values()):
        print("error: the pose path produced no motion prediction", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
