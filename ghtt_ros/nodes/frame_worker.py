"""A worker thread fed through a bounded queue: subscription callbacks never block and memory never grows.

capacity 1 gives "always process the newest frame": a frame that arrives while another is pending replaces it (the
replaced one is counted as skipped). Larger capacities keep frames in order and discard the oldest when full (the
pipeline node needs every pose of a clip, but must not fall further and further behind either).
"""

import threading
from collections import deque


class FrameWorker:
    def __init__(self, process, capacity, on_error, name="ghtt-frame-worker"):
        """process(item) runs on the worker thread; on_error(item, exception) is called when it raises, and the
        worker goes on with the next item (one bad frame must not stop the node)."""
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self._process = process
        self._on_error = on_error
        self._pending = deque()
        self._capacity = capacity
        self._condition = threading.Condition()
        self._running = True
        self._busy = False
        self.skipped = 0
        self.processed = 0
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def put(self, item):
        """Queue an item; returns how many pending items it pushed out (0 or 1)."""
        with self._condition:
            discarded = 0
            if len(self._pending) >= self._capacity:
                self._pending.popleft()
                discarded = 1
                self.skipped += 1
            self._pending.append(item)
            self._condition.notify()
        return discarded

    @property
    def pending(self):
        with self._condition:
            return len(self._pending)

    def wait_idle(self, timeout):
        """True once nothing is pending or running (for orderly shutdown and tests)."""
        with self._condition:
            return self._condition.wait_for(lambda: not self._pending and not self._busy, timeout)

    def request_stop(self):
        """Discard pending items and end after the item in hand (returns at once)."""
        with self._condition:
            self._running = False
            self._pending.clear()
            self._condition.notify_all()

    def stop(self, timeout=1.0):
        """request_stop(), then wait for the thread at most timeout s; False when it is still busy (it is a daemon
        thread and ends with the process; the caller must not free what it uses)."""
        self.request_stop()
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _run(self):
        while True:
            with self._condition:
                self._condition.wait_for(lambda: self._pending or not self._running)
                if not self._running:
                    return
                item = self._pending.popleft()
                self._busy = True
            try:
                self._process(item)
            except Exception as error:  # reported to the node (logged + counted); the worker keeps serving
                self._on_error(item, error)
            with self._condition:
                self._busy = False
                self.processed += 1
                self._condition.notify_all()
