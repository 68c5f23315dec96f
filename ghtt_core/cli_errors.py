"""How every ghtt command line (`ghtt`, `ghtt-ros`, `ghtt-bag`) reports a user error: one `PROG: error: ...` line on
stderr that says what is wrong and what to do, and a non-zero exit status, never a traceback. Bad options, missing or
unreadable files, malformed datasets and checkpoints, and values out of range all reach the user as ValueError or
OSError (the project's DatasetFormatError, CheckpointError and GraphError are ValueErrors); any other exception is a
bug and keeps its traceback."""

import argparse
import sys

USER_ERRORS = (ValueError, OSError)
EXIT_USAGE = 2


class ArgumentParser(argparse.ArgumentParser):
    """argparse, with a usage error on one line that points to --help (subcommand parsers inherit it)."""

    def error(self, message):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def run_reporting_user_errors(prog, command, user_errors=USER_ERRORS, status=EXIT_USAGE):
    """command() -> its exit status; a user error is printed as one line and gives `status`."""
    try:
        return command()
    except user_errors as error:
        print(f"{prog}: error: {one_line(error)}", file=sys.stderr)
        return status


def one_line(error):
    text = str(error) or type(error).__name__
    return " ".join(text.split())
