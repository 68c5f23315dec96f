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
from ghtt_ros.nodes.input_health import StampMonitor
from ghtt_ros.nodes.input_watch import InputWatch
from ghtt_ros.nodes.log_throttle import DEFAULT_PERIOD_S, ThrottledLog
from ghtt_ros.nodes.parameters import ParameterSpec, declare_all, read_all
from ghtt_ros.parameter_names import unknown_parameters
from ghtt_ros.stop_signal import StopSignal, exit_process

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
        self.log = ThrottledLog()
        self.input_stamps = StampMonitor()  # the main input's stamps (subclasses set its nominal period)
        self.worker = None  # the FrameWorker of nodes that process inputs on their own thread
        self.watched_inputs = []  # subscriptions whose silence is reported (see input_watch)
        self._input_watch = InputWatch()
        self._active_since = None
        self._diagnostics = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        # Steady clock: diagnostics keep coming while a sim-time /clock is paused or not yet published.
        self.create_timer(self.get_parameter("diagnostics_period_s").value, self.guarded(self.publish_diagnostics,
                                                                                          "diagnostics"),
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

    def begin_shutdown(self):
        """Tell the worker to end after the input in hand, so that several nodes stopping together wait for their
        busiest worker once, not for each in turn."""
        worker = self.worker
        if worker is not None:
            worker.request_stop()

    def stop_worker(self):
        """Stop the worker thread; True when it ended (False: still busy after a second, so the model it uses must
        not be freed under it; the daemon thread ends with the process)."""
        worker, self.worker = self.worker, None
        if worker is None or worker.stop():
            return True
        self.get_logger().warning("the worker is still busy with an input after 1 s; leaving it to finish")
        return False

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
        """For input callbacks without stamps to check: counts the arrival; False while disabled (input_enabled)."""
        self.stats.on_input(time.monotonic())
        return self.input_enabled()

    def input_enabled(self):
        """False (and counted as event `disabled`) while the node is disabled (parameter / service enable)."""
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

    def guarded(self, callback, what):
        """callback wrapped so that an exception in it is counted (processing_error) and logged (throttled) instead
        of ending the executor, which would silence every node of the process."""
        def run(*args):
            try:
                callback(*args)
            except Exception as error:  # any bug or bad input: this message is lost, the node and its peers go on
                self.stats.on_dropped("processing_error")
                self.log_throttled(f"error_{what}", f"{what} failed: {error!r}", "error")
        return run

    def subscribe(self, msg_type, topic, callback, qos, **options):
        """create_subscription with the callback guarded (see guarded)."""
        return self.create_subscription(msg_type, topic, self.guarded(callback, f"{topic} callback"), qos, **options)

    def on_input(self, stamp_ns, check_stamps=True):
        """An input arrived: counted for the input rate; with check_stamps, its stamp is checked against earlier
        ones (messages lost before arrival) and against the node's clock (logged once when they start to disagree).
        Returns the drop reason for a stamp that cannot be used (zero_stamp, negative_stamp), else None."""
        self.stats.on_input(time.monotonic())
        if stamp_ns <= 0:
            return "zero_stamp" if stamp_ns == 0 else "negative_stamp"
        if check_stamps:
            problem = self.input_stamps.observe(stamp_ns, self.now_ns(), self.get_parameter("use_sim_time").value)
            if problem:
                self.get_logger().warning(problem)
        return None

    def record_published(self, source_stamp_ns, started_monotonic):
        """An output went out: its latency counts only while stamps and the node's clock agree (else it would be
        the clock offset, e.g. 1.8e12 ms under sim time without /clock)."""
        latency_s = (self.now_ns() - source_stamp_ns) / 1e9 if self.input_stamps.clock_agrees else None
        self.stats.on_published(latency_s, time.monotonic() - started_monotonic)

    def hand_to_worker(self, item):
        """Queue an input for the processing thread; an older input it pushes out is counted as skipped.
        Returns True when that happened (the queue was full)."""
        worker = self.worker  # deactivation may run on another executor thread
        if worker is not None and worker.put(item):
            self.stats.on_skipped()
            return True
        return False

    def on_worker_error(self, stamp_ns, error):
        """A processing exception on the worker thread: counted and logged (throttled); the worker serves the next
        input."""
        self.stats.on_dropped("processing_error")
        self.log_throttled("processing_error", f"processing the input stamped {stamp_ns} ns failed: {error!r}",
                           "error")

    def drop(self, reason, detail):
        """Count a rejected input and log why (throttled: a broken publisher must not flood the log)."""
        self.stats.on_dropped(reason)
        self.log_throttled(f"dropped_{reason}", f"dropped input ({reason}): {detail}")

    def note_event(self, reason, detail, period_s=DEFAULT_PERIOD_S):
        """Count an accepted but noteworthy input (event_<reason>) and log it at most once per period_s."""
        self.stats.on_event(reason)
        self.log_throttled(f"event_{reason}", detail, period_s=period_s)

    def log_throttled(self, reason, message, level="warning", period_s=DEFAULT_PERIOD_S):
        """Log (level "warning" or "error") at most one line per reason and period_s; held-back lines are counted
        (diagnostics log_lines_*)."""
        line = self.log.line(reason, message, period_s)
        if line is None:
            return
        # One call site per severity: rclpy refuses a call site whose severity changes between calls.
        if level == "error":
            self.get_logger().error(line)
        else:
            self.get_logger().warning(line)

    def diagnostic_values(self):
        """Node-specific {key: value} pairs added to the diagnostics."""
        return {}

    def diagnostic_warning(self):
        """Why the node works but not as it should ("" when fine): shown as a WARN diagnostic."""
        return self.input_stamps.clock_problem

    def diagnostic_status(self):
        stamps = self.input_stamps
        health = {"frames_lost_before_arrival": stamps.lost, "clock_mismatched_inputs": stamps.skewed,
                  "log_lines_written": self.log.lines_written, "log_lines_held_back": self.log.lines_held_back}
        status = node_status(self.get_fully_qualified_name(), self.device, self.state_label, self.error,
                             self.stats.snapshot(time.monotonic()), {**health, **self.diagnostic_values()},
                             warning=self.diagnostic_warning())
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
    SIGINT / SIGTERM end it with a lifecycle shutdown (worker stopped, model freed) and exit status 0, within 2 s."""
    if node_class.USES_TORCH:
        from ghtt_ros.nodes.device import set_threads

        set_threads(1)
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    stop = StopSignal(deadline_s=1.5)
    node = node_class()
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    try:
        node.start()
        while not stop.received and rclpy.ok():
            try:
                executor.spin_once(timeout_sec=0.1)
            except Exception:  # outside the node's guarded callbacks: report, and keep the node serving
                node.get_logger().error(f"the executor caught an exception; it keeps running:\n"
                                        f"{traceback.format_exc()}")
    finally:
        if node.state_label != "finalized":
            node.trigger_shutdown()
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()
    exit_process(0)
