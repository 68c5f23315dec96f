"""pip installation of ghtt's Python packages (the messages are built by CMake: see scripts/setup.sh)."""

from setuptools import find_packages, setup

setup(
    # Not "ghtt": that distribution name belongs to the CMake-installed message package (ghtt.msg).
    name="ghtt-python",
    version="0.1.0",
    description="G-HTT for robots: two-hand pose refinement, action recognition and motion prediction",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["ghtt_core", "ghtt_core.*", "ghtt_ros", "ghtt_ros.*"]),
    package_data={"ghtt_core": ["assets/*", "assets/**/*"], "ghtt_ros": ["*.yaml"]},
    entry_points={
        "console_scripts": [
            "ghtt = ghtt_core.cli:main",
            "ghtt-ros = ghtt_ros.graph.cli:main",
            "ghtt-bag = ghtt_ros.bag.cli:main",
        ],
    },
)
