"""JSON-lines metrics log: one object per line ({"split": "train"|"val", "step": ..., loss terms...})."""

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

    def write(self, record: dict):
        if not self.enabled:
            return
        row = {"time_s": round(time.monotonic() - self.started, 3), **record}
        with self.path.open("a") as handle:
            handle.write(json.dumps(row) + "\n")


def read_metrics(path: str | Path) -> list[dict]:
    with Path(path).open() as handle:
        return [json.loads(line) for line in handle if line.strip()]
