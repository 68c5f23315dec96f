"""`max_rate` of a node: inputs (or outputs) closer together than 1 / max_rate in source time are skipped.

Decided on message stamps, not on arrival times, so a replayed bag is thinned exactly like the live stream was.
"""

# An input this close to the due time still counts as due (camera stamps jitter by a few per cent).
_TOLERANCE = 0.05
_NS_PER_S = 1_000_000_000


class StampRateLimiter:
    def __init__(self, max_rate_hz):
        """max_rate_hz 0: no limit."""
        self.max_rate_hz = float(max_rate_hz)
        self._last_ns = None

    def allow(self, stamp_ns):
        """True when this stamp is at least one period after the last allowed one (or the stream restarted)."""
        if self.max_rate_hz <= 0:
            return True
        if self._last_ns is not None and self._last_ns <= stamp_ns:
            min_gap_ns = (1.0 - _TOLERANCE) * _NS_PER_S / self.max_rate_hz
            if stamp_ns - self._last_ns < min_gap_ns:
                return False
        self._last_ns = stamp_ns
        return True
