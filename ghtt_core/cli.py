"""`ghtt` command line: one entry point, subcommands registered by the modules that implement them."""

import importlib
import sys

from ghtt_core.cli_errors import ArgumentParser, run_reporting_user_errors

# Each module exposes register(subparsers) and imports its heavy dependencies only inside its handlers.
SUBCOMMAND_MODULES = (
    "ghtt_core.data.cli",
    "ghtt_core.estimator.cli",
    "ghtt_core.train.cli",
    "ghtt_core.evaluate.cli",
)


def build_parser():
    parser = ArgumentParser(prog="ghtt", description=__doc__)
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module_name in SUBCOMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    return run_reporting_user_errors("ghtt", lambda: args.handler(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
