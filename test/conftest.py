"""Test-session environment: DDS on loopback, a per-session ROS domain, logs inside the build tree, no hub access."""

import os
import random
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent

os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ.setdefault("ROS_DOMAIN_ID", str(random.Random(os.getpid()).randint(1, 100)))
os.environ["ROS_HOME"] = str(REPO_ROOT / "build" / "ros_home")
os.environ["ROS_LOG_DIR"] = str(REPO_ROOT / "build" / "ros_home" / "log")
# Fast DDS reads its profile once per process: a 16 MB shared-memory segment so whole camera images are delivered.
os.environ["FASTDDS_DEFAULT_PROFILES_FILE"] = str(REPO_ROOT / "config" / "fastdds_large_messages.xml")
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("OMP_NUM_THREADS", "1")
tempfile.tempdir = None

import torch  # noqa: E402  (imported after the environment is set)

torch.set_num_threads(1)

import pytest  # noqa: E402


@pytest.fixture
def error_line(capsys):
    """read(prog) -> the one `PROG: error: ...` line a command line printed on stderr (asserts there is exactly one
    line and no traceback)."""

    def read(prog):
        lines = capsys.readouterr().err.splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"{prog}: error: "), lines
        return lines[0]

    return read
