"""SIGINT / SIGTERM as a flag, so node processes and the runner stop in order (lifecycle shutdown: workers stopped,
models freed) instead of rclpy tearing the context down under them."""

import signal
import threading


class StopSignal:
    def __init__(self):
        self._event = threading.Event()
        self.on_stop = None  # called (in the main thread) when the signal arrives, e.g. to end a blocking loop
        signal.signal(signal.SIGINT, self._handle)
        signal.signal(signal.SIGTERM, self._handle)

    def _handle(self, signum, frame):
        self._event.set()
        if self.on_stop is not None:
            self.on_stop()

    @property
    def received(self):
        return self._event.is_set()

    def wait(self, timeout_s):
        """True once a stop signal arrived (waits at most timeout_s)."""
        return self._event.wait(timeout_s)
