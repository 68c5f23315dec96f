"""`ghtt-ros`: run a ghtt node graph from its YAML file, or list the nodes it would start.

    ghtt-ros run config/graph.yaml [NAME:=VALUE ...] [--mode composed|process] [--set ghtt_pipeline.top_k=3]
    ghtt-ros run config/graph.yaml device:=cpu use_sim_time:=true hands_topic:=/tracker/hands enable_visualizer:=false
    ghtt-ros nodes config/graph.yaml namespace:=cam1

NAME:=VALUE are the launch arguments of launch/ghtt.launch.py (the same names, values and meaning):
{arguments}
"""

import sys
import time
from argparse import RawDescriptionHelpFormatter

import yaml

from ghtt_core.cli_errors import ArgumentParser, run_reporting_user_errors
from ghtt_ros.graph.spec import LAUNCH_ARGUMENTS, GraphError, load_graph, parse_launch_arguments
from ghtt_ros.stop_signal import StopSignal, exit_process

# Model loading on a busy 2-core machine takes a while; a node not active by then is reported, the graph keeps running.
STARTUP_TIMEOUT_S = 180.0
# Ctrl-C / SIGTERM end the graph within 2 s even while a worker is busy (children still running then are killed);
# whatever happens (a model still loading), the process is gone STOP_DEADLINE_S after the signal.
STOP_BUDGET_S = 1.2
STOP_DEADLINE_S = 1.5
DUPLICATE_CHECK_PERIOD_S = 2.0

__doc__ = __doc__.format(arguments="\n".join(f"    {name:20s} {description} (default {default!r})"
                                             for name, (default, description) in LAUNCH_ARGUMENTS.items()
                                             if name != "graph"))


def parse_assignments(assignments):
    """["node.param=value", ...] -> {node: {param: value}}; values are read as YAML (1.0, true, text)."""
    overrides = {}
    for assignment in assignments:
        key, separator, value = assignment.partition("=")
        node, dot, parameter = key.partition(".")
        if not (separator and dot and node and parameter):
            raise GraphError(f"--set expects NODE.PARAMETER=VALUE, got {assignment!r}")
        overrides.setdefault(node, {})[parameter] = yaml.safe_load(value)
    return overrides


def build_parser():
    parser = ArgumentParser(prog="ghtt-ros", description=__doc__.split("\n")[0], epilog=__doc__.split("\n", 2)[2],
                            formatter_class=RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    for name, help_text in (("run", "start the graph until Ctrl-C or SIGTERM"),
                            ("nodes", "print the nodes the graph starts, with namespaces, remappings and parameters")):
        command = commands.add_parser(name, help=help_text, description=help_text)
        command.add_argument("graph", help="graph YAML (e.g. config/graph.yaml, config/pose_input.yaml, "
                                           "config/webcam.yaml)")
        command.add_argument("arguments", nargs="*", metavar="NAME:=VALUE",
                             help=f"launch arguments, as for ros2 launch: {', '.join(sorted(LAUNCH_ARGUMENTS))} "
                                  "(see `ghtt-ros --help`)")
        command.add_argument("--namespace", help="replace the graph's namespace (e.g. one per camera); the same as "
                                                 "namespace:=NAME")
        command.add_argument("--set", action="append", default=[], metavar="NODE.PARAMETER=VALUE",
                             help="override a node parameter, value read as YAML (repeatable; applied last)")
    commands.choices["run"].add_argument(
        "--mode", choices=("composed", "process"), default="composed",
        help="composed: every node in this process on one SingleThreadedExecutor (default); process: one process "
             "per node")
    return parser


def _graph_options(args):
    arguments = parse_launch_arguments(args.arguments)
    if "graph" in arguments:
        raise GraphError("give the graph file as the first argument, not as graph:=")
    namespace = arguments.pop("namespace", None) if args.namespace is None else args.namespace
    return arguments, namespace, parse_assignments(args.set)


def _list_nodes(args):
    from ghtt_ros.graph.runner import declared_parameters

    arguments, namespace, overrides = _graph_options(args)
    for node in load_graph(args.graph, namespace=namespace, parameter_overrides=overrides, arguments=arguments,
                           declared_parameters=declared_parameters):
        print(f"{node.namespace.rstrip('/')}/{node.name}\t{node.executable}\t"
              f"remap={dict(node.remappings)}\tparameters={node.parameters}")
    return 0


def _run(args):
    from ghtt_ros.graph.runner import GraphRunner

    arguments, namespace, overrides = _graph_options(args)
    runner = GraphRunner(args.graph, overrides=overrides, namespace=namespace, mode=args.mode, arguments=arguments)
    stop = StopSignal(deadline_s=STOP_DEADLINE_S)
    print(f"ghtt-ros: starting {len(runner.launches)} nodes ({args.mode})", flush=True)
    try:
        runner.start()
        status = _run_until_stopped(runner, args.mode, stop)
    finally:
        runner.stop(STOP_BUDGET_S)
    exit_process(status)


def _run_until_stopped(runner, mode, stop):
    """0 on Ctrl-C / SIGTERM; 1 when a node fails to start or dies for good (the reason is printed)."""
    failures, pending = runner.wait_for_startup(STARTUP_TIMEOUT_S, cancelled=lambda: stop.received)
    for name, reason in failures.items():
        print(f"ghtt-ros: error: node {name} failed to start: {reason}; fix its parameters (graph file, parameter "
              "file or --set) and run again", file=sys.stderr)
    if failures:
        return 1
    if pending and not stop.received:
        print(f"ghtt-ros: warning: not active after {STARTUP_TIMEOUT_S:.0f} s: {', '.join(pending)}", file=sys.stderr)
    print(f"ghtt-ros: running {len(runner.launches)} nodes ({mode}); Ctrl-C stops", flush=True)
    next_duplicate_check, duplicates_reported = 0.0, False
    while not stop.wait(0.2):
        failed = runner.failed_nodes()
        if failed:
            print(f"ghtt-ros: error: {'; '.join(failed.values())}; stopping the graph", file=sys.stderr)
            return 1
        if not duplicates_reported and time.monotonic() >= next_duplicate_check:
            duplicates = runner.duplicate_names()
            if duplicates:
                print(f"ghtt-ros: warning: other nodes named {', '.join(duplicates)} are running (the same graph "
                      "started twice in one namespace?): their outputs are doubled and their diagnostics mixed; "
                      "stop one or give it --namespace", file=sys.stderr, flush=True)
                duplicates_reported = True
            next_duplicate_check = time.monotonic() + DUPLICATE_CHECK_PERIOD_S
    return 0


def main(argv=None):
    args = build_parser().parse_args(argv)
    return run_reporting_user_errors("ghtt-ros", lambda: _list_nodes(args) if args.command == "nodes" else _run(args))


if __name__ == "__main__":
    sys.exit(main())
