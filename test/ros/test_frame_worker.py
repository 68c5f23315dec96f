"""FrameWorker: bounded queue, newest-frame semantics for capacity 1, order for larger capacities, errors survive."""

import threading

from ghtt_ros.nodes.frame_worker import FrameWorker


def test_capacity_one_processes_the_newest_pending_frame_and_counts_the_rest():
    release = threading.Event()
    processed = []

    def slow(item):
        processed.append(item)
        release.wait(5)

    worker = FrameWorker(slow, 1, on_error=lambda item, error: None)
    try:
        worker.put(0)
        while not processed:  # frame 0 is being processed; frames 1..9 arrive meanwhile
            threading.Event().wait(0.001)
        discarded = [worker.put(i) for i in range(1, 10)]
        assert worker.pending == 1
        assert discarded == [0] + [1] * 8
        release.set()
        assert worker.wait_idle(5)
        assert processed == [0, 9]
        assert worker.skipped == 8 and worker.processed == 2
    finally:
        release.set()
        worker.stop()


def test_larger_capacity_keeps_order_and_discards_the_oldest():
    release = threading.Event()
    processed = []
    worker = FrameWorker(lambda item: (release.wait(5), processed.append(item)), 3, on_error=lambda i, e: None)
    try:
        for i in range(6):  # 0 is taken at once; 1..5 queue with room for 3
            worker.put(i)
        assert worker.pending <= 3
        release.set()
        assert worker.wait_idle(5)
        assert processed[-3:] == [3, 4, 5] and processed == sorted(processed)
        assert worker.skipped == 6 - len(processed)
    finally:
        worker.stop()


def test_an_error_is_reported_and_the_worker_keeps_going():
    errors = []
    processed = []

    def fails_on_odd(item):
        if item % 2:
            raise ValueError(f"bad {item}")
        processed.append(item)

    worker = FrameWorker(fails_on_odd, 10, on_error=lambda item, error: errors.append((item, str(error))))
    try:
        for i in range(4):
            worker.put(i)
        assert worker.wait_idle(5)
        assert processed == [0, 2]
        assert errors == [(1, "bad 1"), (3, "bad 3")]
    finally:
        worker.stop()
