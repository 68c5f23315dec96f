"""One node of a process-mode graph: its `python -m ghtt_ros.nodes.<node>` subprocess, restarted after a crash when
the graph asks for it (`respawn`, `respawn_delay`, `respawn_max_retries`, as launch_ros), with the Fast DDS
shared-memory files of the dead process removed before the restart.
"""

import signal
import subprocess
import sys
import time

from ghtt_ros.graph import shared_memory

# How often the shared-memory files a running child holds are noted (a participant creates them at start).
_SEGMENT_REFRESH_S = 2.0
# A killed process's nodes stay in the ROS graph until its DDS participant's lease expires (Fast DDS: 20 s).
STALE_GRAPH_ENTRY_S = 30.0


def describe_exit(returncode):
    if returncode is not None and returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exit status {returncode}"


class NodeProcess:
    def __init__(self, launch, command, env, report=None):
        """launch: the NodeLaunch; command: the argv starting it; report(message): where restart notes go."""
        self.launch = launch
        self.command = command
        self.env = env
        self.report = report or (lambda message: print(f"ghtt-ros: {message}", file=sys.stderr, flush=True))
        self.process = None
        self.respawns = 0
        self.failure = None  # why the node is gone for good (exited without respawn, or out of retries)
        self.last_exit = None
        self._restart_at = None
        self._segments = set()
        self._segments_noted_at = 0.0
        self._started_at = None

    @property
    def pid(self):
        return None if self.process is None else self.process.pid

    def start(self):
        self.process = subprocess.Popen(self.command, env=self.env)
        self._segments, self._segments_noted_at = set(), 0.0
        self._started_at = time.monotonic()

    def recently_restarted(self, now):
        """True while the ROS graph may still list the node of the process this one replaced."""
        return self.respawns > 0 and now - self._started_at < STALE_GRAPH_ENTRY_S

    def running(self):
        return self.process is not None and self.process.poll() is None

    def supervise(self, now):
        """Called periodically while the graph runs: notes shared-memory files, notices an exit, restarts when due.
        Returns True when the node is running or will be restarted, False once it has failed for good."""
        if self.failure is not None:
            return False
        if self._restart_at is not None:
            if now >= self._restart_at:
                self._restart_at = None
                self.respawns += 1
                self.start()
                limit = self.launch.respawn_max_retries
                self.report(f"node {self.launch.name} restarted (restart {self.respawns}"
                            f"{'' if limit < 0 else f' of {limit}'})")
            return True
        if self.running():
            if now - self._segments_noted_at >= _SEGMENT_REFRESH_S:
                self._segments |= shared_memory.held_segments(self.process.pid)
                self._segments_noted_at = now
            return True
        self.last_exit = self.process.returncode
        freed = self.clean_shared_memory()
        note = f"; removed {freed / 1e6:.1f} MB of its shared-memory files" if freed else ""
        retries = self.launch.respawn_max_retries
        if self.launch.respawn and (retries < 0 or self.respawns < retries):
            self._restart_at = now + self.launch.respawn_delay
            self.report(f"node {self.launch.name} died ({describe_exit(self.last_exit)}){note}; restarting in "
                        f"{self.launch.respawn_delay:g} s")
            return True
        reason = "respawn is off" if not self.launch.respawn else f"it was restarted {self.respawns} times already"
        self.failure = f"node {self.launch.name} died ({describe_exit(self.last_exit)}) and {reason}"
        self.report(self.failure + note)
        return False

    def clean_shared_memory(self):
        """Remove the shared-memory files the (dead) process held that nobody else holds; returns bytes freed."""
        freed = shared_memory.remove_abandoned(self._segments)
        self._segments = set()
        return freed

    def interrupt(self):
        """Ask the process to stop (SIGINT: lifecycle shutdown, exit 0); no restart afterwards."""
        self._restart_at = None
        if self.running():
            self.process.send_signal(signal.SIGINT)

    def wait(self, deadline):
        """The exit status once the process has ended; SIGKILL when it is still running at the deadline (monotonic).
        None when it never started."""
        if self.process is None:
            return None
        try:
            return self.process.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()
