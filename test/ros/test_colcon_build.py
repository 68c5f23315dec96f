"""`colcon build --merge-install` of the ghtt package into a temporary prefix works with the ROS wheels here."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGE_ITEMS = ("CMakeLists.txt", "package.xml", "msg", "ghtt_core", "ghtt_ros", "launch", "config", "bin")


@pytest.mark.slow
def test_colcon_merge_install_into_temporary_prefix(tmp_path):
    source = tmp_path / "src" / "ghtt"
    source.mkdir(parents=True)
    for item in PACKAGE_ITEMS:
        path = REPO / item
        if path.is_dir():
            shutil.copytree(path, source / item, ignore=shutil.ignore_patterns("__pycache__"))
        elif path.exists():
            shutil.copy2(path, source / item)
    venv_bin = Path(sys.executable).parent
    env = dict(os.environ, PATH=f"{venv_bin}{os.pathsep}{os.environ['PATH']}", AMENT_PREFIX_PATH=sys.prefix,
               CMAKE_PREFIX_PATH=sys.prefix)
    install = tmp_path / "install"
    result = subprocess.run(
        [str(venv_bin / "colcon"), "--log-base", str(tmp_path / "log"), "build", "--merge-install",
         "--base-paths", str(tmp_path / "src"), "--build-base", str(tmp_path / "build"),
         "--install-base", str(install), "--cmake-args", f"-DPython3_EXECUTABLE={sys.executable}",
         "-DBUILD_TESTING=OFF", "--parallel-workers", "1"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    site = install / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
    assert (site / "ghtt" / "msg" / "_motion_prediction.py").exists()
    assert (site / "ghtt_core" / "skeleton.py").exists() and (site / "ghtt_ros" / "convert.py").exists()
    assert (install / "share" / "ghtt" / "package.xml").exists()
    assert (install / "share" / "ghtt" / "launch").is_dir() and (install / "share" / "ghtt" / "config").is_dir()

    probe = subprocess.run(
        [sys.executable, "-c", "import ghtt.msg, sys; from ghtt.msg import MotionPrediction; "
                               "MotionPrediction(); print(ghtt.msg.__file__)"],
        env=dict(env, PYTHONPATH=str(site), LD_LIBRARY_PATH=f"{install / 'lib'}{os.pathsep}"
                 f"{os.environ.get('LD_LIBRARY_PATH', '')}"),
        capture_output=True, text=True, timeout=120)
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.strip().startswith(str(site))
