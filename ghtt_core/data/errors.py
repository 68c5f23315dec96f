"""The error every dataset reader raises for malformed files, and the number parsing that produces it."""

import math
from pathlib import Path


class DatasetFormatError(ValueError):
    """A dataset file does not have the documented format. `line` is 1-based, or None for whole-file problems."""

    def __init__(self, path, line, message):
        self.path = Path(path)
        self.line = line
        self.message = message
        where = f"{self.path}:{line}" if line is not None else str(self.path)
        super().__init__(f"{where}: {message}")


def parse_floats(fields, path, line, expected_count=None):
    """Convert whitespace-split text fields to floats, raising DatasetFormatError that names the file and line."""
    if expected_count is not None and len(fields) != expected_count:
        raise DatasetFormatError(path, line, f"expected {expected_count} numbers, got {len(fields)}")
    try:
        values = [float(field) for field in fields]
    except ValueError as error:
        raise DatasetFormatError(path, line, f"not a number: {error}") from None
    if not all(math.isfinite(value) for value in values):
        raise DatasetFormatError(path, line, "non-finite number (nan or inf)")
    return values


def parse_int(field, path, line, what):
    """Convert one text field to an int, raising DatasetFormatError that says which field was wrong."""
    try:
        return int(field)
    except ValueError:
        raise DatasetFormatError(path, line, f"{what} must be an integer, got {field!r}") from None


def read_nonempty_lines(path):
    """(1-based line number, stripped text) for every non-blank line; a missing or blank file is a format error."""
    path = Path(path)
    if not path.is_file():
        raise DatasetFormatError(path, None, "file not found")
    lines = [(number, text.strip()) for number, text in enumerate(path.read_text().splitlines(), start=1)]
    lines = [(number, text) for number, text in lines if text]
    if not lines:
        raise DatasetFormatError(path, None, "file is empty")
    return lines
