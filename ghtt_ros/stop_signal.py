"""SIGINT / SIGTERM as a flag, so node processes and the runner stop in order (lifecycle shutdown: workers stopped,
models freed) instead of rclpy tearing the context down under them.

With a deadline, the process also ends that many seconds after the first signal even if the orderly stop has not
finished (a model still loading, a native call that does not return): Python's own signal handler only writes the
signal number to a wakeup pipe, which a watchdog thread reads without waiting for the main thread.
"""

import os
import signal
import sys
import threading
import time


def exit_process(status):
    """End a node or runner process with `status` once its nodes are shut down, without the interpreter's teardown:
    that teardown can spin for good in garbage collection of the rclpy objects (seen on 2 loaded cores: SIGINT
    handled, every node shut down, then a busy main thread until SIGKILL), and aborts ("terminate called without an
    active exception") while a worker is still inside a native model call."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


class StopSignal:
    def __init__(self, deadline_s=None):
        self._event = threading.Event()
        self.on_stop = None  # called (in the main thread) when the signal arrives, e.g. to end a blocking loop
        signal.signal(signal.SIGINT, self._handle)
        signal.signal(signal.SIGTERM, self._handle)
        if deadline_s is not None:
            read_end, write_end = os.pipe()
            os.set_blocking(write_end, False)
            signal.set_wakeup_fd(write_end)
            threading.Thread(target=self._watchdog, args=(read_end, deadline_s), name="ghtt-stop-watchdog",
                             daemon=True).start()

    def _handle(self, signum, frame):
        self._event.set()
        if self.on_stop is not None:
            self.on_stop()

    @staticmethod
    def _watchdog(read_end, deadline_s):
        os.read(read_end, 1)  # returns as soon as a signal arrived, whatever the main thread is doing
        time.sleep(deadline_s)
        print(f"stop took longer than {deadline_s:g} s: exiting without finishing the shutdown", file=sys.stderr,
              flush=True)
        os._exit(0)

    @property
    def received(self):
        return self._event.is_set()

    def wait(self, timeout_s):
        """True once a stop signal arrived (waits at most timeout_s)."""
        return self._event.wait(timeout_s)
