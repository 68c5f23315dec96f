"""Start a ghtt node graph from one YAML file (ghtt_ros.graph.spec), without ros2 launch.

    runner = GraphRunner("config/graph.yaml", overrides={"ghtt_pipeline": {"device": "cpu"}}).start()
    runner.wait_until_active(30)
    runner.nodes["ghtt_pipeline"]          # the node objects (composed mode)
    runner.stop()

mode "composed": every node in this process on one SingleThreadedExecutor (own rclpy context, so the caller may use
rclpy too). The callbacks only convert messages and hand frames to each node's worker thread; rclpy's
MultiThreadedExecutor busy-polls in Python while data waits for a running callback and starved those workers of the
GIL (the pose path skipped a quarter of its poses at 30 Hz; docs/ros.md, "Benchmarks"). mode "process": one `python -m ghtt_ros.<node>` subprocess per node with a generated parameter file; the
children inherit this process's environment (ROS_DOMAIN_ID, discovery range, ...); a child that dies is restarted
when its graph entry says `respawn: true` (ghtt_ros.graph.node_process), and the runner learns the children's states and
errors from their /diagnostics (ghtt_ros.graph.monitor). CLI: `python -m ghtt_ros.graph.runner config/graph.yaml` or
`ghtt-ros run config/graph.yaml` (see ghtt_ros.graph.cli).
"""

import importlib
import os
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path

import rclpy
import yaml
from lifecycle_msgs.msg import State
from lifecycle_msgs.srv import GetState
from rclpy.context import Context
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.signals import SignalHandlerOptions
from rclpy.parameter import Parameter

from ghtt_ros.graph.monitor import GraphMonitor, duplicated_names
from ghtt_ros.graph.node_process import NodeProcess
from ghtt_ros.graph.spec import NODE_EXECUTABLES, config_dir, load_graph

MODES = ("composed", "process")
SUPERVISE_PERIOD_S = 0.2
# Full camera images need a larger shared-memory segment than Fast DDS's default (see config/).
FASTDDS_PROFILE_NAME = "fastdds_large_messages.xml"


def dds_environment():
    """This process's environment plus the Fast DDS profile for large images unless one is already chosen."""
    env = dict(os.environ)
    env.setdefault("FASTDDS_DEFAULT_PROFILES_FILE", str(config_dir() / FASTDDS_PROFILE_NAME))
    return env


def node_class(launch):
    return _class_of(launch.node_class_path)


def _class_of(class_path):
    module_name, class_name = class_path.split(":")
    return getattr(importlib.import_module(module_name), class_name)


def declared_parameters(executable):
    """The parameter names the node of `executable` declares (for load_graph's check of parameter names)."""
    return {spec.name for spec in _class_of(NODE_EXECUTABLES[executable]).parameter_specs()}


class GraphRunner:
    def __init__(self, graph, overrides=None, namespace=None, mode="composed", arguments=None):
        """graph: path of a graph YAML or its parsed dict. overrides: {node name: {parameter: value}}. arguments:
        launch arguments {name: string value} (ghtt_ros.graph.spec.LAUNCH_ARGUMENTS)."""
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        self.launches = load_graph(graph, namespace=namespace, parameter_overrides=overrides, arguments=arguments,
                                   declared_parameters=declared_parameters)
        self.mode = mode
        self.nodes = {}
        self.processes = {}  # process mode: {name: NodeProcess}
        self._context = None
        self._executor = None
        self._spin_thread = None
        self._parameter_dir = None
        self._monitor = None
        self._supervisor = None
        self._stopping = threading.Event()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()

    def start(self):
        self._stopping.clear()
        if self.mode == "composed":
            self._start_composed()
        else:
            self._start_processes()
        return self

    # ---- composed ----------------------------------------------------------------------------------------------

    def _start_composed(self):
        os.environ.setdefault("FASTDDS_DEFAULT_PROFILES_FILE", dds_environment()["FASTDDS_DEFAULT_PROFILES_FILE"])
        self._context = Context()
        rclpy.init(args=[], context=self._context, signal_handler_options=SignalHandlerOptions.NO)
        self._executor = SingleThreadedExecutor(context=self._context)
        for launch in self.launches:
            node = node_class(launch)(
                launch.name, namespace=launch.namespace, context=self._context, use_global_arguments=False,
                cli_args=launch.ros_arguments(),
                parameter_overrides=[Parameter(name, value=value) for name, value in launch.parameters.items()],
            )
            self.nodes[launch.name] = node
            self._executor.add_node(node)
        self._spin_thread = threading.Thread(target=self._spin, name="ghtt-graph-executor", daemon=True)
        self._spin_thread.start()
        for node in self.nodes.values():
            node.start()

    def _spin(self):
        executor, context = self._executor, self._context
        while context.ok() and not self._stopping.is_set():
            try:
                executor.spin()
            except ExternalShutdownException:
                return
            except Exception:  # outside the nodes' guarded callbacks: report, and keep every node of the graph served
                print(f"ghtt-ros: the executor caught an exception; it keeps running:\n{traceback.format_exc()}",
                      file=sys.stderr, flush=True)

    # ---- processes ---------------------------------------------------------------------------------------------

    def _start_processes(self):
        self._parameter_dir = tempfile.TemporaryDirectory(prefix="ghtt-graph-")
        env = dict(dds_environment(), PYTHONUNBUFFERED="1")
        for launch in self.launches:
            parameter_file = Path(self._parameter_dir.name) / f"{launch.name}.yaml"
            parameter_file.write_text(yaml.safe_dump({"/**": {"ros__parameters": launch.parameters}}))
            module = launch.node_class_path.split(":")[0]
            command = [sys.executable, "-m", module, "--ros-args", "-r", f"__node:={launch.name}",
                       "-r", f"__ns:={launch.namespace}", "--params-file", str(parameter_file)]
            command += launch.ros_arguments()[1:]
            self.processes[launch.name] = NodeProcess(launch, command, env)
        self._monitor = GraphMonitor()
        for process in self.processes.values():
            process.start()
        self._supervisor = threading.Thread(target=self._supervise, name="ghtt-graph-supervisor", daemon=True)
        self._supervisor.start()

    def _supervise(self):
        while not self._stopping.wait(SUPERVISE_PERIOD_S):
            for process in self.processes.values():
                process.supervise(time.monotonic())

    # ---- common ------------------------------------------------------------------------------------------------

    def lifecycle_states(self, timeout_s=2.0):
        """{node name: lifecycle state label}; in process mode asked over the nodes' get_state services
        ('unreachable' when a node does not answer in time)."""
        if self.mode == "composed":
            return {name: node.state_label for name, node in self.nodes.items()}
        return _query_lifecycle_states(self.launches, timeout_s)

    def wait_until_active(self, timeout_s):
        """True when every node is active before timeout_s (False at once when a node process failed for good)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.failed_nodes():
                return False
            if all(state == "active" for state in self.lifecycle_states().values()):
                return True
            time.sleep(0.1)
        return False

    def wait_for_startup(self, timeout_s, cancelled=lambda: False):
        """Wait until every autostarting node is active or has failed (or cancelled() is true); -> ({name: why it
        failed}, [names still starting]). Process mode reads the nodes' /diagnostics (state, error message)."""
        deadline = time.monotonic() + timeout_s
        autostarting = [launch for launch in self.launches if launch.parameters.get("autostart", True) is not False]
        while True:
            failures, pending = dict(self.failed_nodes()), []
            for launch in autostarting:
                if launch.name in failures:
                    continue
                state, error = self._startup_state(launch)
                if error:
                    failures[launch.name] = error
                elif state != "active":
                    pending.append(launch.name)
            if failures or not pending or time.monotonic() >= deadline or cancelled():
                return failures, pending
            time.sleep(0.1)

    def _startup_state(self, launch):
        if self.mode == "composed":
            node = self.nodes[launch.name]
            return node.state_label, node.error
        return self._monitor.node_state(launch.fully_qualified_name) or ("starting", "")

    def failed_nodes(self):
        """{name: reason} of node processes that died and are not restarted (process mode)."""
        return {name: process.failure for name, process in self.processes.items() if process.failure}

    def duplicate_names(self):
        """Fully qualified names of this graph's nodes that other nodes in the ROS graph carry too (the same graph
        started twice in one namespace: outputs doubled, diagnostics mixed)."""
        now = time.monotonic()
        names = [launch.fully_qualified_name for launch in self.launches
                 if launch.name not in self.processes or not self.processes[launch.name].recently_restarted(now)]
        observer = self._monitor.node if self._monitor is not None else next(iter(self.nodes.values()), None)
        return duplicated_names(observer, names) if observer is not None else []

    def stop(self, timeout_s=10.0):
        """Shut every node down (lifecycle shutdown, then destroy) within about timeout_s: workers busy with an input
        are asked to stop all at once, node processes get SIGINT and are killed at the deadline (their
        shared-memory files removed). Returns {node name: exit status} in process mode (0 = stopped cleanly)."""
        deadline = time.monotonic() + timeout_s
        self._stopping.set()
        if self._supervisor is not None:
            self._supervisor.join()
            self._supervisor = None
        for process in self.processes.values():
            process.interrupt()  # first: the children stop in parallel with everything below
        if self._monitor is not None:
            self._monitor.close()
            self._monitor = None
        for node in self.nodes.values():
            node.begin_shutdown()
        for name, node in self.nodes.items():
            if node.state_label != "finalized":
                node.trigger_shutdown()
        if self._executor is not None:
            self._executor.shutdown(timeout_sec=max(0.1, deadline - time.monotonic()))
        for node in self.nodes.values():
            node.destroy_node()
        self.nodes = {}
        if self._context is not None:
            self._context.try_shutdown()
            self._spin_thread.join(max(0.1, deadline - time.monotonic()))
            self._context = self._executor = None
        exit_codes = {name: process.wait(deadline) for name, process in self.processes.items()}
        for process in self.processes.values():
            process.clean_shared_memory()
        self.processes = {}
        if self._parameter_dir is not None:
            self._parameter_dir.cleanup()
            self._parameter_dir = None
        return exit_codes


def _query_lifecycle_states(launches, timeout_s):
    context = Context()
    rclpy.init(args=[], context=context, signal_handler_options=SignalHandlerOptions.NO)
    node = rclpy.create_node("ghtt_graph_probe", context=context, use_global_arguments=False)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    try:
        states = {}
        for launch in launches:
            service = f"{launch.namespace.rstrip('/')}/{launch.name}/get_state"
            client = node.create_client(GetState, service)
            states[launch.name] = "unreachable"
            if client.wait_for_service(timeout_sec=timeout_s):
                future = client.call_async(GetState.Request())
                executor.spin_until_future_complete(future, timeout_sec=timeout_s)
                if future.done() and future.result() is not None:
                    states[launch.name] = _STATE_LABELS.get(future.result().current_state.id, "unknown")
        return states
    finally:
        executor.shutdown()
        node.destroy_node()
        context.try_shutdown()


_STATE_LABELS = {State.PRIMARY_STATE_UNCONFIGURED: "unconfigured", State.PRIMARY_STATE_INACTIVE: "inactive",
                 State.PRIMARY_STATE_ACTIVE: "active", State.PRIMARY_STATE_FINALIZED: "finalized"}


def main(argv=None):
    from ghtt_ros.graph.cli import main as cli_main

    return cli_main(["run", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
