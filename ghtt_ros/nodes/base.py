"""Lifecycle behaviour shared by the ghtt nodes: declared parameters, autostart, device and thread settings,
/diagnostics, the `enable` switch, and the rule that bad configuration or a bad model file leaves the node
unconfigured or inactive with a logged, reported error instead of killing it.

Subclasses set PARAMETERS and implement configure(params) (create publishers, validate settings), activate() (load
models, subscribe; the subscriptions that count as input go into watched_inputs), deactivate() (unsubscribe, free
models) and cleanup() (drop publishers); apply_runtime_parameter(name, value) takes the `runtime` parameters changed
while configured. Raising ValueError, OSError or RuntimeError from a hook fails the transition with that message.
torch is imported only by nodes with USES_TORCH (ghtt_ros.nodes.device).
"""

import time
import traceback

import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rclpy.clock import Clock, ClockType
from rclpy.executors import SingleThreadedExecutor
from rclpy.signals import SignalHandlerOptions
from rclpy.lifecycle import LifecycleNode, TransitionCallbackReturn
from rclpy.qos_overriding_options import InvalidQosOverridesError
from rcl_interfaces.msg import SetParametersResult
from rclpy.parameter import Parameter
from std_srvs.srv import SetBool

from ghtt_ros.nodes.diagnostics import ProcessingStats, diagnostic_array, node_status
from ghtt_ros.nodes.input_watch import InputWatch
from ghtt_ros.nodes.parameters import ParameterSpec, declare_all, read_all
from ghtt_ros.parameter_names import unknown_parameters
from ghtt_ros.stop_signal import StopSignal

COMMON_PARAMETERS = (
    ParameterSpec("autostart", True, "Configure and activate right after start. False: the node waits for "
                  "lifecycle transitions (configure, activate) from a lifecycle manager."),
    ParameterSpec("diagnostics_period_s", 1.0, "Seconds between /diagnostics messages.", 0.1, 60.0),
    ParameterSpec("enable", True, "Process inputs and publish outputs. False: inputs are ignored while the node "
                  "stays active with its model loaded; the `~/enable` service (std_srvs/SetBool) sets it too.",
                  runtime=True),
    ParameterSpec("input_timeout_s", 5.0, "With no input for this long while active and enabled, the node logs "
                  "once which topics, types and QoS it waits for and how many publishers it sees.", 0.5, 3600.0),
)
MODEL_PARAMETERS = (
    ParameterSpec("device", "auto", "Torch device: auto (cuda when available, else cpu), cpu, cuda or cuda:N. An "
                  "explicit cuda request without CUDA falls back to cpu and warns."),
    ParameterSpec("num_threads", 1, "torch.set_num_threads for this process (CPU inference threads; keep small so "
                  "torch does not starve the ROS executor).", 1, 64),
)
# The exceptions a hook may raise to fail a transition with a message; anything else is a bug and propagates.
TRANSITION_ERRORS = (ValueError, OSError, RuntimeError, InvalidQosOverridesError)


class GhttNode(LifecycleNode):
    PARAMETERS = ()  # node-specific ParameterSpecs (COMMON_PARAMETERS are added)
    USES_TORCH = False  # adds MODEL_PARAMETERS (device, num_threads)

    @classmethod
    def parameter_specs(cls):
        """Every ParameterSpec the node declares."""
        return COMMON_PARAMETERS + (MODEL_PARAMETERS if cls.USES_TORCH else ()) + tuple(cls.PARAMETERS)

    def __init__(self, node_name, **node_options):
        super().__init__(node_name, **node_options)
        self.specs = self.parameter_specs()
        # rclpy silently ignores values for undeclared names; a misspelled name must not look like a setting.
        # (_parameter_overrides: the values from parameter files, -p and parameter_overrides; rclpy has no accessor.)
        parameter_errors = declare_all(self, self.specs) + unknown_parameters(
            self._parameter_overrides, self.list_parameters([], 0).names)
        for message in parameter_errors:
            self.get_logger().error(message)
        self.error = "; ".join(parameter_errors)  # why the node cannot run; reported as ERROR diagnostics
        self.state_label = "unconfigured"
        self.params = {}
        self.device = "cpu" if self.USES_TORCH else "none"
        self.stats = ProcessingStats()
        self.worker = None  # the FrameWorker of nodes that process inputs on their own thread
        self.watched_inputs = []  # subscriptions whose silence is reported (see input_watch)
        self._input_watch = InputWatch()
        self._active_since = None
        self._diagnostics = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        # Steady clock: diagnostics keep coming while a sim-time /clock is paused or not yet published.
        self.create_timer(self.get_parameter("diagnostics_period_s").value, self.publish_diagnostics,
                          clock=Clock(clock_type=ClockType.STEADY_TIME))
        self.add_on_set_parameters_callback(self._check_parameter_change)
        self.add_post_set_parameters_callback(self._apply_parameter_change)
        self.create_service(SetBool, "~/enable", self._on_enable_request)

    # ---- lifecycle ---------------------------------------------------------------------------------------------

    def start(self):
        """Apply `autostart`: configure, then activate. Returns True when the node ends up active."""
        if not self.get_parameter("autostart").value:
            self.get_logger().info("autostart is false: waiting for lifecycle transitions")
            return False
        if self.trigger_configure() != TransitionCallbackReturn.SUCCESS:
            return False
        return self.trigger_activate() == TransitionCallbackReturn.SUCCESS

    def on_configure(self, state):
        if self.error:
            self.get_logger().error(f"cannot configure: {self.error}")
            return TransitionCallbackReturn.FAILURE
        failure = self._run_hook("configure", self._configure_from_parameters)
        if failure is not None:
            return failure
        self.state_label = "inactive"
        return super().on_configure(state)

    def _configure_from_parameters(self):
        self.params = read_all(self, self.specs)
        if self.USES_TORCH:
            self._apply_torch_settings()
        self.configure(self.params)

    def on_activate(self, state):
        failure = self._run_hook("activate", self.activate)
        if failure is not None:
            self.deactivate()
            return failure
        self.error = ""
        self.state_label = "active"
        self._active_since = time.monotonic()
        self.get_logger().info(f"active on {self.device}")
        return super().on_activate(state)

    def on_deactivate(self, state):
        self.deactivate()
        self.state_label = "inactive"
        return super().on_deactivate(state)

    def on_cleanup(self, state):
        self.cleanup()
        self.state_label = "unconfigured"
        return super().on_cleanup(state)

    def on_shutdown(self, state):
        if self.state_label == "active":
            self.deactivate()
        if self.state_label in ("active", "inactive"):
            self.cleanup()
        self.state_label = "finalized"
        return super().on_shutdown(state)

    def _run_hook(self, transition, hook):
        """None on success, else the transition result: FAILURE for expected errors (bad settings, missing or
        invalid model file), ERROR with the traceback logged for anything else (rclpy would swallow it silently)."""
        try:
            hook()
        except TRANSITION_ERRORS as error:
            self.error = f"{transition} failed: {error}"
            self.get_logger().error(self.error)
            return TransitionCallbackReturn.FAILURE
        except Exception as error:  # a bug: keep the node alive in the lifecycle ErrorProcessing path, say why
            self.error = f"{transition} failed unexpectedly: {error!r}"
            self.get_logger().error(f"{self.error}\n{traceback.format_exc()}")
            return TransitionCallbackReturn.ERROR
        return None

    def _apply_torch_settings(self):
        from ghtt_ros.nodes.device import resolve_device, set_threads

        self.device, warning = resolve_device(self.params["device"])
        if warning:
            self.get_logger().warning(warning)
        set_threads(self.params["num_threads"])

    def _check_parameter_change(self, parameters):
        # Most values are read on configure; changing them later would silently do nothing.
        specs = {spec.name: spec for spec in self.specs}
        changed = [p for p in parameters if p.name in specs]
        if self.state_label == "unconfigured":
            return SetParametersResult(successful=True)
        fixed = [p.name for p in changed if not specs[p.name].runtime]
        if fixed:
            return SetParametersResult(successful=False, reason=f"{fixed} are read on configure: deactivate and "
                                                                "clean up the node first, then configure again")
        try:
            for parameter in changed:
                specs[parameter.name].check(parameter.value)
        except ValueError as error:
            return SetParametersResult(successful=False, reason=str(error))
        return SetParametersResult(successful=True)

    def _apply_parameter_change(self, parameters):
        if self.state_label == "unconfigured":
            return  # configure reads them
        names = {spec.name for spec in self.specs}
        for parameter in parameters:
            if parameter.name in names:
                self.params[parameter.name] = parameter.value
                self.apply_runtime_parameter(parameter.name, parameter.value)
                self.get_logger().info(f"parameter {parameter.name} = {parameter.value!r}")

    def _on_enable_request(self, request, response):
        result = self.set_parameters([Parameter("enable", value=bool(request.data))])[0]
        response.success = result.successful
        response.message = result.reason or ("enabled" if request.data else "disabled")
        return response

    @property
    def enabled(self):
        """False while the `enable` parameter is off: inputs are then ignored."""
        return self.params.get("enable", True)

    def accept_input(self):
        """For input callbacks: counts the arrival; False (and counted as event `disabled`) while disabled."""
        self.stats.on_input(time.monotonic())
        if self.enabled:
            return True
        self.stats.on_event("disabled")
        return False

    # ---- hooks -------------------------------------------------------------------------------------------------

    def configure(self, params):
        raise NotImplementedError

    def activate(self):
        raise NotImplementedError

    def deactivate(self):
        raise NotImplementedError

    def cleanup(self):
        raise NotImplementedError

    def apply_runtime_parameter(self, name, value):
        """A `runtime` parameter changed while configured (self.params already holds the value)."""

    # ---- helpers for subclasses --------------------------------------------------------------------------------

    def now_ns(self):
        return self.get_clock().now().nanoseconds

    def record_published(self, source_stamp_ns, started_monotonic):
        self.stats.on_published((self.now_ns() - source_stamp_ns) / 1e9, time.monotonic() - started_monotonic)

    def hand_to_worker(self, item):
        """Queue an input for the processing thread; an older input it pushes out is counted as skipped.
        Returns True when that happened (the queue was full)."""
        worker = self.worker  # deactivation may run on another executor thread
        if worker is not None and worker.put(item):
            self.stats.on_skipped()
            return True
        return False

    def on_worker_error(self, stamp_ns, error):
        """A processing exception on the worker thread: counted and logged; the worker serves the next input."""
        self.stats.on_dropped("processing_error")
        self.get_logger().error(f"processing the input stamped {stamp_ns} ns failed: {error!r}")

    def drop(self, reason, detail):
        """Count a rejected input and log why (throttled: a broken publisher must not flood the log)."""
        self.stats.on_dropped(reason)
        self.get_logger().warning(f"dropped input ({reason}): {detail}", throttle_duration_sec=2.0)

    def diagnostic_values(self):
        """Node-specific {key: value} pairs added to the diagnostics."""
        return {}

    def diagnostic_status(self):
        status = node_status(self.get_fully_qualified_name(), self.device, self.state_label, self.error,
                             self.stats.snapshot(time.monotonic()), self.diagnostic_values())
        if self.state_label == "active" and not self.enabled and not self.error:
            status.level, status.message = DiagnosticStatus.WARN, "disabled (parameter enable is false)"
        return status

    def publish_diagnostics(self):
        self._diagnostics.publish(diagnostic_array(self.get_clock().now().to_msg(), [self.diagnostic_status()]))
        self._check_input_silence()

    def _check_input_silence(self):
        if self.state_label != "active" or not self.enabled or not self.watched_inputs:
            return
        now = time.monotonic()
        snapshot = self.stats.snapshot(now)
        silence = snapshot["seconds_since_input"]
        if silence is None or now - self._active_since < silence:
            silence = now - self._active_since
        self._input_watch.check(self, silence, snapshot["frames_received"], self.params["input_timeout_s"])


def run_node(node_class, args=None):
    """Entry point of one node process: `python -m ghtt_ros.<node> --ros-args ...` and the bin/ scripts.
    SIGINT / SIGTERM end it with a lifecycle shutdown (worker stopped, model freed) and exit status 0."""
    if node_class.USES_TORCH:
        from ghtt_ros.nodes.device import set_threads

        set_threads(1)
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    stop = StopSignal()
    node = node_class()
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    try:
        node.start()
        while not stop.received and rclpy.ok():
            executor.spin_once(timeout_sec=0.1)
    finally:
        if node.state_label != "finalized":
            node.trigger_shutdown()
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()
