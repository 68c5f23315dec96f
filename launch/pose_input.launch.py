"""ros2 launch ghtt pose_input.launch.py [namespace:=robot1]

The pose-input graph (config/pose_input.yaml: ghtt_pipeline + visualizer, fed by any hand tracker publishing
ghtt/TwoHandPose on `hands`): ghtt.launch.py with that graph file.
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, IncludeLaunchDescription
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration

from ghtt_ros.graph.spec import PACKAGE

GRAPH_FILE = "pose_input.yaml"


def generate_launch_description():
    share = get_package_share_directory(PACKAGE)
    return LaunchDescription([
        DeclareLaunchArgument("namespace", default_value="", description="namespace of the whole graph"),
        IncludeLaunchDescription(
            PythonLaunchDescriptionSource(os.path.join(share, "launch", "ghtt.launch.py")),
            launch_arguments={"graph": os.path.join(share, "config", GRAPH_FILE),
                              "namespace": LaunchConfiguration("namespace")}.items(),
        ),
    ])
