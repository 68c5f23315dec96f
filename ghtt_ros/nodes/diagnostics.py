"""What every ghtt node reports on /diagnostics: input rate, latency (source stamp -> publish), processing time,
skipped and dropped frames (by reason), device and lifecycle state.

Rates and processing times use the monotonic clock (they measure this computer); latency uses the node's ROS clock
against the source stamp, so under sim time it is measured in sim time like everything else.
"""

import threading
from collections import Counter, deque

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

RATE_WINDOW_S = 5.0
# No input for this long while active is reported as a warning ("is the camera / tracker running? QoS mismatch?").
STALE_INPUT_S = 3.0


class ProcessingStats:
    """Thread-safe counters fed by subscription callbacks and worker threads."""

    def __init__(self, window=200):
        self._lock = threading.Lock()
        self._arrivals = deque(maxlen=window)
        self._latencies_s = deque(maxlen=window)
        self._processing_s = deque(maxlen=window)
        self.received = 0
        self.published = 0
        self.skipped = 0
        self.dropped = Counter()  # inputs rejected, by reason
        self.events = Counter()  # inputs accepted but noteworthy (stream restarts, fallbacks), by reason

    def on_input(self, arrival_s):
        with self._lock:
            self.received += 1
            self._arrivals.append(arrival_s)

    def on_skipped(self, count=1):
        with self._lock:
            self.skipped += count

    def on_dropped(self, reason):
        with self._lock:
            self.dropped[reason] += 1

    def on_event(self, reason):
        with self._lock:
            self.events[reason] += 1

    def on_published(self, latency_s, processing_s):
        """latency_s None: not measurable (the source stamp is on another time base than the node's clock)."""
        with self._lock:
            self.published += 1
            if latency_s is not None:
                self._latencies_s.append(latency_s)
            self._processing_s.append(processing_s)

    def snapshot(self, now_s):
        """Plain values for diagnostics and tests."""
        with self._lock:
            recent = [t for t in self._arrivals if now_s - t <= RATE_WINDOW_S]
            rate = (len(recent) - 1) / (recent[-1] - recent[0]) if len(recent) > 1 and recent[-1] > recent[0] else 0.0
            latencies = np.array(self._latencies_s) * 1e3
            processing = np.array(self._processing_s) * 1e3
            return {
                "input_rate_hz": rate,
                "seconds_since_input": now_s - self._arrivals[-1] if self._arrivals else None,
                "frames_received": self.received,
                "outputs_published": self.published,
                "frames_skipped": self.skipped,
                "frames_dropped": sum(self.dropped.values()),
                "dropped_by_reason": dict(self.dropped),
                "events": dict(self.events),
                "latency_ms_p50": float(np.percentile(latencies, 50)) if latencies.size else None,
                "latency_ms_max": float(latencies.max()) if latencies.size else None,
                "processing_ms_p50": float(np.percentile(processing, 50)) if processing.size else None,
            }


def node_status(name, hardware_id, state, error, snapshot, extra=None, warning=""):
    """One DiagnosticStatus: ERROR while the node cannot run (error set), WARN when inactive, input is stale or
    `warning` is set (e.g. stamps and clock disagree). extra: further {key: value} pairs of the node (e.g. the
    streaming pipeline's counters)."""
    values = {"state": state, "device": hardware_id}
    for key, value in snapshot.items():
        if key == "dropped_by_reason":
            values.update({f"dropped_{reason}": count for reason, count in sorted(value.items())})
        elif key == "events":
            values.update({f"event_{reason}": count for reason, count in sorted(value.items())})
        elif value is not None:
            values[key] = f"{value:.2f}" if isinstance(value, float) else value
    values.update(extra or {})
    if error:
        level, message = DiagnosticStatus.ERROR, error
    elif state != "active":
        level, message = DiagnosticStatus.WARN, f"node is {state}"
    elif warning:  # the specific reason first: it often explains missing input too
        level, message = DiagnosticStatus.WARN, warning
    elif snapshot["seconds_since_input"] is None or snapshot["seconds_since_input"] > STALE_INPUT_S:
        level, message = DiagnosticStatus.WARN, "no input received recently (publisher running? QoS compatible?)"
    else:
        level, message = DiagnosticStatus.OK, f"{snapshot['input_rate_hz']:.1f} Hz in"
    return DiagnosticStatus(
        level=level, name=name, message=message, hardware_id=hardware_id,
        values=[KeyValue(key=key, value=str(value)) for key, value in values.items()],
    )


def diagnostic_array(stamp, statuses):
    array = DiagnosticArray()
    array.header.stamp = stamp
    array.status = list(statuses)
    return array


def status_values(status):
    """{key: value} of a DiagnosticStatus (for readers and tests)."""
    return {item.key: item.value for item in status.values}
