"""ros2 launch ghtt ghtt.launch.py [graph:=/path/to/graph.yaml] [namespace:=cam1]

Starts the node graph described by a graph YAML (default: the package's config/graph.yaml, the camera graph). The node
list, namespaces, remappings and parameters come from ghtt_ros.graph.spec.load_graph, the same function the `ghtt-ros`
runner uses, so a launch on a ROS 2 install and a run with the runner start the same graph.
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from ghtt_ros.graph.spec import PACKAGE, launch_node_arguments, load_graph

GRAPH_FILE = "graph.yaml"


def graph_nodes(context):
    graph = LaunchConfiguration("graph").perform(context)
    namespace = LaunchConfiguration("namespace").perform(context) or None
    return [Node(**arguments) for arguments in launch_node_arguments(load_graph(graph, namespace=namespace))]


def generate_launch_description():
    default_graph = os.path.join(get_package_share_directory(PACKAGE), "config", GRAPH_FILE)
    return LaunchDescription([
        DeclareLaunchArgument("graph", default_value=default_graph, description="graph YAML to start"),
        DeclareLaunchArgument("namespace", default_value="",
                              description="namespace of the whole graph (empty: the graph file's own)"),
        OpaqueFunction(function=graph_nodes),
    ])
