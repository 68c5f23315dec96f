"""`ghtt-ros`: run a ghtt node graph from its YAML file, or list the nodes it would start.

    ghtt-ros run config/graph.yaml [--mode composed|process] [--namespace cam1] [--set ghtt_pipeline.device=cpu]
    ghtt-ros nodes config/graph.yaml
"""

import argparse
import sys

import yaml

from ghtt_ros.graph.spec import GraphError, load_graph
from ghtt_ros.stop_signal import StopSignal


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
    parser = argparse.ArgumentParser(prog="ghtt-ros", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for name, help_text in (("run", "start the graph until Ctrl-C"), ("nodes", "print the nodes the graph starts")):
        command = commands.add_parser(name, help=help_text)
        command.add_argument("graph", help="graph YAML (e.g. config/graph.yaml)")
        command.add_argument("--namespace", help="replace the graph's namespace (e.g. one per camera)")
        command.add_argument("--set", action="append", default=[], metavar="NODE.PARAMETER=VALUE",
                             help="override a node parameter (repeatable)")
    commands.choices["run"].add_argument("--mode", choices=("composed", "process"), default="composed",
                                         help="one process on a multi-threaded executor (default) or one per node")
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        overrides = parse_assignments(args.set)
        if args.command == "nodes":
            for node in load_graph(args.graph, namespace=args.namespace, parameter_overrides=overrides):
                print(f"{node.namespace.rstrip('/')}/{node.name}\t{node.executable}\t"
                      f"remap={dict(node.remappings)}\tparameters={node.parameters}")
            return 0
        from ghtt_ros.graph.runner import GraphRunner

        runner = GraphRunner(args.graph, overrides=overrides, namespace=args.namespace, mode=args.mode)
    except GraphError as error:
        print(f"ghtt-ros: {error}", file=sys.stderr)
        return 2
    stop = StopSignal()
    with runner:
        print(f"ghtt-ros: running {len(runner.launches)} nodes ({args.mode}); Ctrl-C stops", flush=True)
        while not stop.wait(0.2):
            if any(process.poll() is not None for process in runner.processes.values()):
                print("ghtt-ros: a node process exited; stopping the graph", file=sys.stderr)
                return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
