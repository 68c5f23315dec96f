"""Two terminals that follow the README (`source scripts/ros_env.sh`, then start a program) talk to each other: the
script does not give each shell its own ROS domain. Only the test suite isolates itself (test/conftest.py); here the
unique topic name keeps this check apart from anything else on the default domain."""

import os
import subprocess
import sys
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
# What a fresh terminal has: none of the variables the test session set for itself.
SESSION_VARIABLES = ("ROS_DOMAIN_ID", "ROS_AUTOMATIC_DISCOVERY_RANGE", "ROS_HOME", "ROS_LOG_DIR",
                     "FASTDDS_DEFAULT_PROFILES_FILE")


def _terminal(role, topic):
    """A new bash (its own $$, as a second terminal has) that sources the user-facing script and starts env_talk."""
    env = {name: value for name, value in os.environ.items() if name not in SESSION_VARIABLES}
    command = f"source {REPO / 'scripts' / 'ros_env.sh'} && exec {sys.executable} {HERE / 'env_talk.py'} {role} {topic}"
    return subprocess.Popen(["bash", "-c", command], env=env, stdout=subprocess.PIPE, text=True)


def test_two_terminals_that_source_ros_env_talk_to_each_other():
    topic = f"/ghtt_environment_check_{uuid.uuid4().hex[:12]}"
    talker = _terminal("talk", topic)
    listener = _terminal("listen", topic)
    try:
        output, _ = listener.communicate(timeout=90)
    finally:
        talker.terminate()
        talker.wait(timeout=20)
        if listener.poll() is None:
            listener.kill()
    assert listener.returncode == 0, f"the listener received nothing: {output!r}"
    assert output.startswith("domain=unset received=hello from pid"), output
