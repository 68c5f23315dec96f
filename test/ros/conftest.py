import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
# Lets tests import the sample-message helpers next to them.
sys.path.insert(0, str(HERE))


@pytest.fixture
def publisher_process():
    """Another process publishing every ghtt sample message (dds_sample_publisher.py) until the test ends."""
    process = subprocess.Popen([sys.executable, str(HERE / "dds_sample_publisher.py")], stdout=subprocess.PIPE,
                               text=True)
    try:
        assert process.stdout.readline().strip() == "publishing"
        yield process
    finally:
        process.terminate()
        process.wait(timeout=10)
