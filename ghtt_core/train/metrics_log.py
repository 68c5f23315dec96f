"""JSON-lines metrics log: one object per line ({"split": "train"|"val"|"resume", "step": ..., loss terms...}).

"time_s" is the run's training time: a resumed run continues from the time stored in its checkpoint (`resume`), so
the column stays cumulative across interruptions (the time between them is not counted).
"""

from __future__ import annotations

import json
import time
from pathlib import Path


class MetricsLog:
    """Appends records to `path` (nothing is written when disabled, e.g. on ranks other than 0)."""

    def __init__(self, path: str | Path | None, enabled: bool = True):
        self.path = Path(path) if path else None
        self.enabled = enabled and self.path is not None
        self.started = time.monotonic()
        if self.enabled:
            self.path.parent.mkdir(parents=True, exist_ok=True)

    def elapsed(self) -> float:
        """Seconds of this run so far, including the time of the runs it resumed."""
        return time.monotonic() - self.started

    def resume(self, elapsed_s: float):
        """Continue the clock of a run that had already trained for elapsed_s seconds."""
        self.started = time.monotonic() - elapsed_s

    def write(self, record: dict):
        if not self.enabled:
            return
        row = {"time_s": round(self.elapsed(), 3), **record}
        with self.path.open("a") as handle:
            handle.write(json.dumps(row) + "\n")


def read_metrics(path: str | Path) -> list[dict]:
    with Path(path).open() as handle:
        return [json.loads(line) for line in handle if line.strip()]
