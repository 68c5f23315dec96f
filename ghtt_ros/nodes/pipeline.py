"""ghtt_pipeline node: TwoHandPose per frame -> refined poses, action recognition and motion prediction per clip.

All model work happens in ghtt_core.pipeline.StreamingPipeline; this node converts messages, keeps a bounded queue of
poses in stamp order (a worker thread runs the model), and publishes what each completed clip yields, in the input
frame or in `target_frame`. Time comes only from the pose stamps, so live, replayed and sim-time runs give identical
outputs.
"""

import dataclasses
import time
from collections import Counter
from pathlib import Path

import torch
from nav_msgs.msg import Path as PathMsg
from rclpy.qos_overriding_options import QoSOverridingOptions
from std_msgs.msg import String

import ghtt_core
from ghtt_core.pipeline import FrameInput, PipelineConfig, StreamingPipeline
from ghtt_core.results import PREDICTION_MODES
from ghtt_ros.convert import (
    TwoHandArrays,
    action_recognition_to_msg,
    first_future_frame,
    motion_prediction_summary,
    motion_prediction_to_msg,
    stamp_to_ns,
    two_hand_pose_array_to_msg,
    two_hand_pose_from_msg,
)
from ghtt_ros.nodes.base import GhttNode, run_node
from ghtt_ros.nodes.frame_worker import FrameWorker
from ghtt_ros.nodes.input_health import StampMonitor
from ghtt_ros.nodes.parameters import ParameterSpec
from ghtt_ros.nodes.qos import INPUT_RELIABILITY_PARAMETER, OUTPUT_QOS, input_qos
from ghtt_ros.nodes.target_frame import TARGET_FRAME_PARAMETERS, TargetFrame, transform_parameter
from ghtt_ros.paths import wrist_paths
from ghtt.msg import ActionRecognition, MotionPrediction, MotionPredictionSummary, TwoHandPose, TwoHandPoseArray

SHIPPED_CHECKPOINT = Path(ghtt_core.__file__).resolve().parent / "assets" / "ghtt_small.pt"
# Every pose of a clip matters, so the reader keeps up to 4 clips while the executor is busy (a few kB each); the
# model itself runs behind the bounded pose_queue_size queue.
POSE_INPUT_DEPTH = 64
WRIST_PATH_TOPICS = ("predicted_path/left_wrist", "predicted_path/right_wrist")

PIPELINE_PARAMETERS = (
    ParameterSpec("checkpoint", "", "Model checkpoint (.pt from `ghtt train-action`; a P-Block-only checkpoint "
                  "needs mode pose_only). Empty: the shipped ghtt_core/assets/ghtt_small.pt."),
    ParameterSpec("mode", "action_guided", "Motion prediction: action_guided (P.b) or pose_only (P.a).",
                  choices=PREDICTION_MODES),
    ParameterSpec("clip_stride", 3, "Frames between results: the result rate is the pose rate / clip_stride (3 = "
                  "10 Hz at 30 Hz poses; 16 = one result per clip, under a quarter of the CPU).", 1, 256, runtime=True),
    ParameterSpec("max_clips", 4, "Observation length in 16-frame clips seen by the A-Block (4 = 2.1 s; longer "
                  "histories hold the previous action for seconds).", 1, 16),
    ParameterSpec("num_samples", 20, "Predicted samples K (sample 0 is the deterministic one).", 1, 256,
                  runtime=True),
    ParameterSpec("horizon_frames", 96, "Predicted frames per sample.", 1, 1024),
    ParameterSpec("sampling_temperature", -1.0, "Latent std multiplier for samples 1..K-1; negative = the "
                  "checkpoint's calibrated temperature (5 without a forecast calibration).", -1.0, 100.0,
                  runtime=True),
    ParameterSpec("top_k", 5, "Action hypotheses per recognition.", 1, 100, runtime=True),
    ParameterSpec("idle_speed_m_s", 0.03, "Recognition reports `idle` first when no hand of the newest clip moves "
                  "faster than this (m/s; 0 = never).", 0.0, 10.0, runtime=True),
    ParameterSpec("min_action_score", 0.0, "Recognition reports `unknown` first when the best action scores lower "
                  "(0 = never).", 0.0, 0.5, runtime=True),
    ParameterSpec("frame_period_s", 1.0 / 30.0, "Nominal time between input frames (the model runs at 30 Hz).",
                  0.001, 1.0),
    ParameterSpec("max_gap_s", 0.5, "A larger gap between pose stamps, or a backwards stamp, resets the history.",
                  0.001, 3600.0),
    ParameterSpec("max_fill_frames", 4, "A hand missing for at most this many final frames is still predicted.",
                  0, 15),
    ParameterSpec("min_confidence", 0.0, "Hands below this confidence count as absent.", 0.0, 1.0),
    ParameterSpec("commanded_action", "", "Non-empty: generate motion for this action label instead of the "
                  "recognized one (mode action_guided)."),
    ParameterSpec("seed", 0, "Combined with each result's last stamp to seed its samples.", 0, 2**31 - 1),
    ParameterSpec("object_label", "", "Object used when neither the pose message nor the object_label topic names "
                  "one ('' = unknown-object token)."),
    ParameterSpec("publish_latent", False, "Fill ActionRecognition.latent with the action latent."),
    ParameterSpec("pose_queue_size", 256, "Poses waiting for the model at most (all kept, in order, up to this); "
                  "when full the oldest is discarded, counted as skipped and logged. A safety net: stale results are "
                  "skipped long before (docs/ros.md, overload policy).", 1, 4096),
    INPUT_RELIABILITY_PARAMETER,
    ParameterSpec("publish_summary", True, "Publish `prediction_summary` (ghtt/MotionPredictionSummary: mean, "
                  "spread and trust without the samples, for planners) beside `prediction`."),
    ParameterSpec("publish_wrist_paths", False, "Publish nav_msgs/Path of each predicted wrist (sample mean, future "
                  "frames only) on `predicted_path/left_wrist` and `predicted_path/right_wrist`."),
) + TARGET_FRAME_PARAMETERS
_PIPELINE_CONFIG_KEYS = ("clip_stride", "max_clips", "mode", "num_samples", "horizon_frames", "sampling_temperature",
                         "top_k", "frame_period_s", "max_gap_s", "max_fill_frames", "min_confidence",
                         "commanded_action", "seed", "idle_speed_m_s", "min_action_score")


def checkpoint_path(parameter):
    path = Path(parameter).expanduser() if parameter else SHIPPED_CHECKPOINT
    if not path.is_file():
        raise ValueError(f"checkpoint not found: {path} (set the `checkpoint` parameter to a model file from "
                         "`ghtt train-action`)")
    return path


class PipelineNode(GhttNode):
    USES_TORCH = True
    PARAMETERS = PIPELINE_PARAMETERS

    def __init__(self, node_name="ghtt_pipeline", **node_options):
        super().__init__(node_name, **node_options)
        self.pipeline = None
        self._inputs = []
        self._outputs = {}
        self.messages_published = Counter()  # by output topic name
        self._topic_object_label = ""
        self._last_stamp_ns = None
        self._target = None

    def configure(self, params):
        self.pipeline_config = PipelineConfig(**{key: params[key] for key in _PIPELINE_CONFIG_KEYS})
        self.checkpoint = checkpoint_path(params["checkpoint"])
        if params["target_frame"] and params["target_transform_source"] == "parameter":
            transform_parameter(params["target_transform"])
        overrides = QoSOverridingOptions.with_default_policies()
        outputs = [("refined_hands", TwoHandPoseArray), ("action", ActionRecognition),
                   ("prediction", MotionPrediction)]
        if params["publish_summary"]:
            outputs.append(("prediction_summary", MotionPredictionSummary))
        if params["publish_wrist_paths"]:
            outputs += [(topic, PathMsg) for topic in WRIST_PATH_TOPICS]
        self._outputs = {
            name: self.create_lifecycle_publisher(msg_type, name, OUTPUT_QOS, qos_overriding_options=overrides)
            for name, msg_type in outputs
        }

    def activate(self):
        self.pipeline = StreamingPipeline.from_checkpoint(self.checkpoint, self.device, self.pipeline_config)
        self.get_logger().info(f"loaded {self.checkpoint} ({self.pipeline.model_id}), mode {self.pipeline_config.mode}")
        self._last_stamp_ns = None
        self._target = TargetFrame(self, self.params)
        self.input_stamps = StampMonitor(self.params["frame_period_s"])
        self.worker = FrameWorker(self._process_frame, self.params["pose_queue_size"],
                                  lambda frame, error: self.on_worker_error(frame.stamp_ns, error),
                                  name=f"{self.get_name()}-model")
        overrides = QoSOverridingOptions.with_default_policies()
        hands = self.subscribe(TwoHandPose, "hands", self._on_hands,
                               input_qos(self.params["input_reliability"], POSE_INPUT_DEPTH),
                               qos_overriding_options=overrides)
        self.watched_inputs = [hands]
        self._inputs = [hands, self.subscribe(String, "object_label", self._on_object_label, OUTPUT_QOS)]

    def deactivate(self):
        for subscription in self._inputs:
            self.destroy_subscription(subscription)
        self._inputs = []
        self.watched_inputs = []
        self.stop_worker()
        if self._target is not None:
            self._target.close()
            self._target = None
        self.pipeline = None
        if self.device.startswith("cuda"):
            torch.cuda.empty_cache()

    def apply_runtime_parameter(self, name, value):
        if name in _PIPELINE_CONFIG_KEYS:
            # The running pipeline holds this same config object: the next result uses the new value.
            setattr(self.pipeline_config, name, value)

    @property
    def topic_object_label(self) -> str:
        """The last label received on the object_label topic ("" before any)."""
        return self._topic_object_label

    def cleanup(self):
        for publisher in self._outputs.values():
            self.destroy_lifecycle_publisher(publisher)
        self._outputs = {}

    # ---- input -------------------------------------------------------------------------------------------------

    def _on_object_label(self, msg):
        self._topic_object_label = msg.data

    def _on_hands(self, msg):
        stamp_ns = stamp_to_ns(msg.header.stamp)
        unusable = self.on_input(stamp_ns)
        if unusable:
            self.drop(unusable, f"TwoHandPose stamped {msg.header.stamp.sec} s {msg.header.stamp.nanosec} ns "
                                "(publisher does not copy the image stamp?)")
            return
        if not self.input_enabled():
            return
        try:
            hands = two_hand_pose_from_msg(msg)
        except ValueError as error:
            self.drop("malformed", str(error))
            return
        if self._last_stamp_ns is not None and stamp_ns < self._last_stamp_ns:
            # A replay restarted or the clock jumped: the pipeline resets its history on this frame.
            self.note_event("stamp_backwards", f"pose stamp went backwards by "
                                               f"{(self._last_stamp_ns - stamp_ns) / 1e9:.3f} s: history reset")
        self._last_stamp_ns = stamp_ns
        frame = FrameInput(stamp_ns=stamp_ns, joints=hands.joints, presence=hands.presence,
                           confidence=hands.confidence, frame_id=hands.frame_id,
                           object_label=hands.object_label or self._topic_object_label or self.params["object_label"])
        if self.hand_to_worker(frame):
            # Only when the model falls a whole queue behind: images may be skipped, poses are history.
            self.get_logger().warning(
                f"pose queue full ({self.params['pose_queue_size']} poses waiting for the model): discarded the oldest "
                f"pending pose ({self.stats.skipped} so far); the model is slower than the pose input",
                throttle_duration_sec=2.0)

    # ---- output ------------------------------------------------------------------------------------------------

    def _process_frame(self, frame):
        started = time.monotonic()
        pipeline, worker = self.pipeline, self.worker
        if pipeline is None:
            return
        # Overload policy: every pose enters the history (no gaps, no resets); but when the poses of the next result
        # are already waiting, this one would be stale before it is published: skip it, so the model works on the
        # newest poses instead of queuing stale work (its refined poses come with the next result).
        behind = worker.pending if worker is not None else 0
        result = pipeline.push(frame, skip_result=behind >= self.pipeline_config.clip_stride)
        if result is None:
            return
        transform = self._target.transform_from(result.frame_id)
        if transform is None:
            self.drop("no_transform", f"no /tf_static transform from {result.frame_id!r} to "
                                      f"{self._target.frame!r} yet: result at {frame.stamp_ns} ns not published")
            return
        try:
            messages = self._result_messages(self._in_target_frame(result, transform))
        except ValueError as error:
            self.drop("invalid_output", f"result at {frame.stamp_ns} ns: {error}")
            return
        for name, msg in messages:
            self._outputs[name].publish(msg)
            self.messages_published[name] += 1
        self.record_published(int(result.stamps_ns[-1]), started)

    def _in_target_frame(self, result, transform):
        """The result with every position and frame_id in target_frame (unchanged without one)."""
        target = self._target.frame
        if not target:
            return result
        recognition, prediction = result.recognition, result.prediction
        if recognition is not None:
            recognition = dataclasses.replace(recognition, frame_id=target)
        if prediction is not None:
            prediction = dataclasses.replace(prediction, frame_id=target, positions=transform.apply(prediction.positions))
        return dataclasses.replace(result, frame_id=target, refined_joints=transform.apply(result.refined_joints),
                                   recognition=recognition, prediction=prediction)

    def _result_messages(self, result):
        frames = [
            TwoHandArrays(stamp_ns=int(stamp), frame_id=result.frame_id, joints=joints, presence=presence,
                          confidence=presence.astype("float32"))
            for stamp, joints, presence in zip(result.stamps_ns, result.refined_joints, result.refined_presence)
        ]
        messages = [("refined_hands", two_hand_pose_array_to_msg(frames, self.pipeline_config.frame_period_s))]
        if result.recognition is not None:
            if not self.params["publish_latent"]:
                result.recognition.latent = None
            messages.append(("action", action_recognition_to_msg(result.recognition)))
        if result.prediction is not None:
            prediction = motion_prediction_to_msg(result.prediction)
            messages.append(("prediction", prediction))
            messages += self._light_views(prediction)
        return messages

    def _light_views(self, prediction):
        """prediction_summary and the wrist paths, as far as enabled."""
        if "prediction_summary" not in self._outputs and WRIST_PATH_TOPICS[0] not in self._outputs:
            return []
        future = first_future_frame(stamp_to_ns(prediction.header.stamp), self.pipeline_config.frame_period_s,
                                    prediction.num_frames, self.now_ns())
        summary = motion_prediction_summary(prediction, future)
        views = [("prediction_summary", summary)] if "prediction_summary" in self._outputs else []
        if WRIST_PATH_TOPICS[0] in self._outputs:
            views += list(zip(WRIST_PATH_TOPICS, wrist_paths(summary)))
        return views

    def diagnostic_values(self):
        pipeline = self.pipeline
        if pipeline is None:
            return {}
        stats = pipeline.stats
        worker = self.worker
        return {"history_resets": stats.resets, "filled_missing_frames": stats.dropped_frames,
                "duplicate_stamps": stats.duplicate_frames, "invalid_hands": stats.invalid_hands,
                "implausible_hands": stats.implausible_hands, "results": stats.results,
                "results_skipped": stats.results_skipped,
                "queued_poses": worker.pending if worker is not None else 0, "model_id": pipeline.model_id}


def main(args=None):
    run_node(PipelineNode, args)


if __name__ == "__main__":
    main()
