"""ros2 launch ghtt ghtt.launch.py [graph:=/path/to/graph.yaml] [namespace:=cam1] [params_file:=my.yaml]
    [use_sim_time:=true] [device:=cpu] [image_topic:=/camera/color/image_raw] [camera_info_topic:=...]
    [hands_topic:=/tracker/hands] [enable_visualizer:=false] ...

Starts the node graph described by a graph YAML (default: the package's config/graph.yaml, the camera graph). The node
list, namespaces, remappings and parameters come from ghtt_ros.graph.spec.load_graph with the launch arguments of
ghtt_ros.graph.spec.LAUNCH_ARGUMENTS, the same function and arguments the `ghtt-ros` runner uses
(`ghtt-ros run GRAPH NAME:=VALUE`), so a launch on a ROS 2 install and a run with the runner start the same graph.
A misspelled parameter name in the graph, its parameter files or params_file stops the launch with the reason.
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from ghtt_ros.graph.runner import declared_parameters
from ghtt_ros.graph.spec import LAUNCH_ARGUMENTS, PACKAGE, launch_node_arguments, load_graph

GRAPH_FILE = "graph.yaml"


def graph_nodes(context):
    arguments = {name: LaunchConfiguration(name).perform(context) for name in LAUNCH_ARGUMENTS}
    graph, namespace = arguments.pop("graph"), arguments.pop("namespace") or None
    nodes = load_graph(graph, namespace=namespace, arguments=arguments, declared_parameters=declared_parameters)
    return [Node(**node_arguments) for node_arguments in launch_node_arguments(nodes)]


def generate_launch_description():
    defaults = {name: default for name, (default, _) in LAUNCH_ARGUMENTS.items()}
    defaults["graph"] = os.path.join(get_package_share_directory(PACKAGE), "config", GRAPH_FILE)
    return LaunchDescription([
        *(DeclareLaunchArgument(name, default_value=defaults[name], description=description)
          for name, (_, description) in LAUNCH_ARGUMENTS.items()),
        OpaqueFunction(function=graph_nodes),
    ])
