"""Fast DDS shared-memory files left behind by node processes that were killed.

Every Fast DDS participant creates segment files in /dev/shm (`fastdds_<id>`: 0.5 MB by default, 16.8 MB with the
large-image profile, plus `fastdds_port<N>` port segments), each with a `<name>_el` file that the users of the segment
keep flock-ed while they live. A process that exits normally removes its own; a SIGKILL leaves them. The runner notes
which `_el` files each node process holds while it runs, and after that process has died removes the segments nobody
holds any more (the rule of Fast DDS's own `fastdds shm clean`, restricted to the runner's own processes).
"""

import fcntl
import os
from pathlib import Path

SHM_DIR = Path("/dev/shm")
_PREFIXES = ("fastdds_", "fastrtps_")
_LOCK_SUFFIX = "_el"


def held_segments(pid):
    """Names of the Fast DDS segments whose lock files process pid holds open (empty when it cannot be read)."""
    names = set()
    try:
        descriptors = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return names
    for descriptor in descriptors:
        try:
            target = Path(os.readlink(f"/proc/{pid}/fd/{descriptor}"))
        except OSError:
            continue
        if target.parent == SHM_DIR and target.name.startswith(_PREFIXES) and target.name.endswith(_LOCK_SUFFIX):
            names.add(target.name[:-len(_LOCK_SUFFIX)])
    return names


def remove_abandoned(segments):
    """Remove those of the given segments that no living process holds; returns the bytes freed."""
    freed = 0
    for name in sorted(segments):
        lock_file = SHM_DIR / f"{name}{_LOCK_SUFFIX}"
        if not _unheld(lock_file):
            continue
        for path in (SHM_DIR / name, lock_file):
            try:
                size = path.stat().st_size
                path.unlink()
                freed += size
            except FileNotFoundError:
                continue
    return freed


def _unheld(lock_file):
    """True when nobody holds lock_file (the segment's users all died); False when it is held or gone."""
    try:
        descriptor = os.open(lock_file, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(descriptor)  # also releases the probe's own lock
    return True
