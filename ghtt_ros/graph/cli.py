"""`ghtt-ros`: run a ghtt node graph from its YAML file, or list the nodes it would start.

    ghtt-ros run config/graph.yaml [NAME:=VALUE ...] [--mode composed|process] [--set ghtt_pipeline.top_k=3]
    ghtt-ros run config/graph.yaml device:=cpu use_sim_time:=true hands_topic:=/tracker/hands enable_visualizer:=false
    ghtt-ros nodes config/graph.yaml namespace:=cam1

NAME:=VALUE are the launch arguments of launch/ghtt.launch.py (the same names, values and meaning):
{arguments}
"""

import sys
from argparse import RawDescriptionHelpFormatter

import yaml

from ghtt_core.cli_errors import ArgumentParser, run_reporting_user_errors
from ghtt_ros.graph.spec import LAUNCH_ARGUMENTS, GraphError, load_graph, parse_launch_arguments
from ghtt_ros.stop_signal import StopSignal

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
    stop = StopSignal()
    with runner:
        print(f"ghtt-ros: running {len(runner.launches)} nodes ({args.mode}); Ctrl-C stops", flush=True)
        while not stop.wait(0.2):
            if any(process.poll() is not None for process in runner.processes.values()):
                print("ghtt-ros: error: a node process exited; stopping the graph", file=sys.stderr)
                return 1
    return 0


def main(argv=None):
    args = build_parser().parse_args(argv)
    return run_reporting_user_errors("ghtt-ros", lambda: _list_nodes(args) if args.command == "nodes" else _run(args))


if __name__ == "__main__":
    sys.exit(main())
