"""`ghtt-ros`: run a ghtt node graph from its YAML file, or list the nodes it would start.

    ghtt-ros run config/graph.yaml [--mode composed|process] [--namespace cam1] [--set ghtt_pipeline.device=cpu]
    ghtt-ros nodes config/graph.yaml
"""

import argparse
import sys
import time

import yaml

from ghtt_ros.graph.spec import GraphError, load_graph
from ghtt_ros.stop_signal import StopSignal, exit_process

# Model loading on a busy 2-core machine takes a while; a node not active by then is reported, the graph keeps running.
STARTUP_TIMEOUT_S = 180.0
# Ctrl-C / SIGTERM end the graph within 2 s even while a worker is busy (children still running then are killed);
# whatever happens (a model still loading), the process is gone STOP_DEADLINE_S after the signal.
STOP_BUDGET_S = 1.2
STOP_DEADLINE_S = 1.5
DUPLICATE_CHECK_PERIOD_S = 2.0


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
        print(f"ghtt-ros: error: {error}", file=sys.stderr)
        return 2
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


if __name__ == "__main__":
    sys.exit(main())
