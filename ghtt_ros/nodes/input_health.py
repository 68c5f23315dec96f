"""What the stamps of an input stream tell about its delivery: messages lost before they reached the node (gaps in
the stamps at the stream's period), and a node clock that disagrees with the stamps (use_sim_time without /clock, a
camera or replay on another time base), which would otherwise show up as absurd latencies.
"""

import threading
from collections import deque

import numpy as np

# Stamps and the node's clock further apart than this at arrival cannot be transport delay.
MAX_CLOCK_SKEW_S = 1.0
# A pause longer than this is a stream that stopped and resumed, not lost messages.
MAX_LOSS_GAP_S = 2.0
_PERIOD_WINDOW = 32


class StampMonitor:
    def __init__(self, nominal_period_s=None):
        """nominal_period_s: the stream's frame period when known (the pipeline's 30 Hz); None: the median of the
        recent stamp differences (a camera of unknown rate)."""
        self._nominal_ns = None if nominal_period_s is None else nominal_period_s * 1e9
        self._lock = threading.Lock()
        self._last_stamp_ns = None
        self._differences = deque(maxlen=_PERIOD_WINDOW)
        self.lost = 0  # messages estimated lost before arrival
        self.skewed = 0  # inputs whose stamp disagreed with the node's clock
        self.skew_s = 0.0  # clock minus stamp of the latest input
        self.clock_problem = ""  # why stamps and clock disagree ("" while they agree)

    def observe(self, stamp_ns, clock_ns, sim_time):
        """One input's stamp and the node clock at its arrival. Returns the clock problem when it has just appeared
        (to be logged once), else None."""
        with self._lock:
            self._count_gap(stamp_ns)
            self.skew_s = (clock_ns - stamp_ns) / 1e9
            if abs(self.skew_s) <= MAX_CLOCK_SKEW_S:
                self.clock_problem = ""
                return None
            self.skewed += 1
            appeared = not self.clock_problem
            self.clock_problem = _diagnose(self.skew_s, clock_ns, sim_time)
            return self.clock_problem if appeared else None

    @property
    def clock_agrees(self):
        return not self.clock_problem

    def _count_gap(self, stamp_ns):
        previous, self._last_stamp_ns = self._last_stamp_ns, stamp_ns
        if previous is None or stamp_ns <= previous:
            return
        difference = stamp_ns - previous
        period = self._nominal_ns or (float(np.median(self._differences)) if len(self._differences) >= 4 else None)
        self._differences.append(difference)
        if period and difference <= MAX_LOSS_GAP_S * 1e9:
            self.lost += max(0, round(difference / period) - 1)


def _diagnose(skew_s, clock_ns, sim_time):
    direction = f"{abs(skew_s):.1f} s {'behind' if skew_s > 0 else 'ahead of'}"
    if sim_time and clock_ns == 0:
        cause = "use_sim_time is true but nothing publishes /clock"
    elif sim_time:
        cause = "use_sim_time is true and /clock runs on another time base than the stamps (a bag replayed " \
                "without its clock?)"
    else:
        cause = "the stamps are not this machine's time (a replay without use_sim_time, or a camera clock that is " \
                "not synchronised)"
    return f"input stamps are {direction} this node's clock: {cause}; latencies are not measured meanwhile"
