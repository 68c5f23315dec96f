"""Per-reason log throttling for faults that can repeat with every message (a broken driver, a flood of bad stamps).

rclpy's own `throttle_duration_sec` keys the throttle by call site and raises "Logging filter parameters cannot be
changed between calls" when one call site is used with different periods, which turned every later frame of the
hand_estimator into an error. Here each reason has its own period; the lines held back are counted and the next line
of that reason says how many there were.
"""

import threading
import time

DEFAULT_PERIOD_S = 2.0


class ThrottledLog:
    def __init__(self, clock=time.monotonic):
        self._clock = clock
        self._lock = threading.Lock()
        self._last_logged = {}  # reason -> monotonic time of its last line
        self._held_back = {}  # reason -> lines not written since then
        self.lines_written = 0
        self.lines_held_back = 0

    def line(self, reason, message, period_s=DEFAULT_PERIOD_S):
        """The text to log now for this reason (with the count of lines held back since the last one), or None
        when a line of this reason was written less than period_s ago (the line is counted as held back)."""
        now = self._clock()
        with self._lock:
            last = self._last_logged.get(reason)
            if last is not None and now - last < period_s:
                self._held_back[reason] = self._held_back.get(reason, 0) + 1
                self.lines_held_back += 1
                return None
            self._last_logged[reason] = now
            self.lines_written += 1
            held_back = self._held_back.pop(reason, 0)
        return f"{message} (+{held_back} more like it in the last {now - last:.0f} s)" if held_back else message
