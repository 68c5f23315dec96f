"""ros2 launch ghtt pose_input.launch.py [namespace:=robot1] [hands_topic:=/tracker/hands] [device:=cpu] ...

The pose-input graph (config/pose_input.yaml: ghtt_pipeline + visualizer, fed by any hand tracker publishing
ghtt/TwoHandPose on `hands`): ghtt.launch.py with that graph file and every other launch argument passed through.
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, IncludeLaunchDescription
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration

from ghtt_ros.graph.spec import LAUNCH_ARGUMENTS, PACKAGE

GRAPH_FILE = "pose_input.yaml"


def generate_launch_description():
    share = get_package_share_directory(PACKAGE)
    passed = {name: value for name, value in LAUNCH_ARGUMENTS.items() if name != "graph"}
    return LaunchDescription([
        *(DeclareLaunchArgument(name, default_value=default, description=description)
          for name, (default, description) in passed.items()),
        IncludeLaunchDescription(
            PythonLaunchDescriptionSource(os.path.join(share, "launch", "ghtt.launch.py")),
            launch_arguments={"graph": os.path.join(share, "config", GRAPH_FILE),
                              **{name: LaunchConfiguration(name) for name in passed}}.items(),
        ),
    ])
