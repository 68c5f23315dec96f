"""The node graph described by one YAML file: the single source of truth for the runner and the launch files.

Graph file layout (see config/graph.yaml and docs/ros.md):

    namespace: ""                       # prefix of every node's namespace (e.g. one camera's name)
    nodes:
      - name: hand_estimator            # node name (unique in the graph)
        executable: hand_estimator      # one of NODE_EXECUTABLES
        namespace: ""                   # optional, below the graph namespace
        enabled: true                   # optional
        parameters_file: hand_estimator.yaml   # optional ROS parameter file, relative to the graph file
        parameters: {num_threads: 1}    # optional inline values, override the file
        remappings: {image: /camera/color/image_raw}
        respawn: true                   # optional (process mode, ros2 launch): restart the node when it dies
        respawn_delay: 1.0              # optional, seconds before a restart
        respawn_max_retries: 5          # optional, restarts at most (-1: no limit)

On top of the graph file come the launch arguments (LAUNCH_ARGUMENTS: `ros2 launch ghtt ghtt.launch.py NAME:=VALUE`
and `ghtt-ros run GRAPH NAME:=VALUE` take the same ones) and `--set` overrides. With declared_parameters (the names
each executable's node declares) every parameter name is checked: a misspelled one is a GraphError that names the
closest real ones.

This module reads YAML only (no rclpy, no launch) so that launch files on a real ROS 2 install, the runner and the
tests all build the node list with the same function.
"""

from dataclasses import dataclass, field
from pathlib import Path

from ghtt_ros.graph.yaml_files import YamlFileError, load_yaml_file
from ghtt_ros.parameter_names import unknown_parameters

PACKAGE = "ghtt"
# executable name -> "module:class" of the node (the bin/ scripts and the runner use the same names).
NODE_EXECUTABLES = {
    "video_source": "ghtt_ros.nodes.video_source:VideoSourceNode",
    "hand_estimator": "ghtt_ros.nodes.hand_estimator:HandEstimatorNode",
    "ghtt_pipeline": "ghtt_ros.nodes.pipeline:PipelineNode",
    "visualizer": "ghtt_ros.nodes.visualizer:VisualizerNode",
}
# Input topics a launch argument can remap in every node of the graph (name of the argument -> relative topic).
TOPIC_ARGUMENTS = {"image_topic": "image", "camera_info_topic": "camera_info", "hands_topic": "hands"}
# Launch arguments (all strings, as launch passes them) -> (default, description). `graph` is positional for the
# runner; the launch file's default is the package's config/graph.yaml.
LAUNCH_ARGUMENTS = {
    "graph": ("", "graph YAML to start (launch default: the package's config/graph.yaml)"),
    "namespace": ("", "namespace of the whole graph (empty: the graph file's own)"),
    "params_file": ("", "ROS parameter file applied on top of the graph's: `/**` values go to every node that "
                        "declares them, `<node name>` sections to that node"),
    "use_sim_time": ("", "true or false: every node follows /clock (a bag replay) or wall time; empty: as the "
                         "graph sets it"),
    "device": ("", "torch device of every model node: auto, cpu, cuda or cuda:N (empty: each node's own)"),
    **{name: ("", f"topic the graph's `{topic}` is connected to (empty: `{topic}` in the graph namespace)")
       for name, topic in TOPIC_ARGUMENTS.items()},
    **{f"enable_{executable}": ("true", f"start the graph's {executable} node(s): true or false")
       for executable in NODE_EXECUTABLES},
}
_NODE_KEYS = {"name", "executable", "namespace", "enabled", "parameters_file", "parameters", "remappings", "respawn",
              "respawn_delay", "respawn_max_retries"}
# launch_ros semantics: respawn a node that exited while the graph runs, after respawn_delay seconds, at most
# respawn_max_retries times (-1: always). Defaults: no respawn; when on, 1 s and 5 times.
RESPAWN_DEFAULTS = {"respawn": False, "respawn_delay": 1.0, "respawn_max_retries": 5}
_PARAMETER_TYPES = (bool, int, float, str)


def config_dir():
    """The package's config/ folder: next to the sources (development, pip -e) or share/ghtt/config (colcon)."""
    source_tree = Path(__file__).resolve().parents[2] / "config"
    if source_tree.is_dir():
        return source_tree
    from ament_index_python.packages import get_package_share_directory

    return Path(get_package_share_directory(PACKAGE)) / "config"


class GraphError(ValueError):
    """A graph file that cannot describe a node graph (unknown keys, executables or parameter types)."""


@dataclass
class NodeLaunch:
    """Everything needed to start one node, in a form both rclpy and launch_ros accept."""

    name: str
    executable: str
    namespace: str
    parameters: dict = field(default_factory=dict)
    remappings: list = field(default_factory=list)  # [(from, to)]
    respawn: bool = False
    respawn_delay: float = 1.0
    respawn_max_retries: int = 5

    @property
    def fully_qualified_name(self):
        return f"{self.namespace.rstrip('/')}/{self.name}"

    @property
    def node_class_path(self):
        return NODE_EXECUTABLES[self.executable]

    def ros_arguments(self):
        """`--ros-args` remapping arguments for this node (used for rclpy's cli_args and for subprocesses)."""
        arguments = ["--ros-args"]
        for source, target in self.remappings:
            arguments += ["-r", f"{source}:={target}"]
        return arguments


def join_namespaces(*parts):
    names = [part.strip("/") for part in parts if part and part.strip("/")]
    return "/" + "/".join(names) if names else "/"


def read_parameter_file(path, node_name):
    """Parameters of `node_name` from a ROS parameter file: the `/**` section, then the node's own section."""
    wildcard, own = _parameter_sections(path, node_name)
    return wildcard | own


def _parameter_sections(path, node_name):
    """({`/**` values}, {values of the node's own sections}) of a ROS parameter file."""
    path = Path(path)
    if not path.is_file():
        raise GraphError(f"parameter file not found: {path}")
    content = _read_yaml(path) or {}
    if not isinstance(content, dict):
        raise GraphError(f"{path}: expected a mapping of node names to ros__parameters")
    sections = []
    for names in (("/**",), (node_name, f"/{node_name}", f"/**/{node_name}")):
        values = {}
        for section in names:
            block = content.get(section)
            if isinstance(block, dict) and isinstance(block.get("ros__parameters"), dict):
                values.update(_flatten(block["ros__parameters"], path))
        sections.append(values)
    return tuple(sections)


def _read_yaml(path):
    try:
        return load_yaml_file(path)
    except YamlFileError as error:
        raise GraphError(str(error)) from None


def _flatten(values, origin, prefix=""):
    """Nested mappings become dotted names, as ROS does for parameter files."""
    if not isinstance(values, dict):
        raise GraphError(f"{origin}: parameters must be a mapping of names to values, got {type(values).__name__}")
    flat = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, origin, f"{name}."))
        elif isinstance(value, _PARAMETER_TYPES) or (isinstance(value, list) and value):
            flat[name] = value
        else:
            raise GraphError(f"{origin}: parameter {name!r} has unsupported value {value!r}")
    return flat


def parse_launch_arguments(assignments):
    """["NAME:=VALUE", ...] (the ROS launch syntax) -> {NAME: VALUE}; GraphError for an unknown name."""
    arguments = {}
    for assignment in assignments:
        name, separator, value = assignment.partition(":=")
        if not separator or name not in LAUNCH_ARGUMENTS:
            raise GraphError(f"expected a launch argument NAME:=VALUE with NAME one of {sorted(LAUNCH_ARGUMENTS)}, "
                             f"got {assignment!r}")
        arguments[name] = value
    return arguments


def _boolean_argument(name, value):
    lowered = value.strip().lower()
    if lowered in ("true", "1"):
        return True
    if lowered in ("false", "0"):
        return False
    raise GraphError(f"launch argument {name}: expected true or false, got {value!r}")


def load_graph(source, namespace=None, parameter_overrides=None, arguments=None, declared_parameters=None):
    """Graph YAML (a path or an already parsed dict) -> list of NodeLaunch for the enabled nodes.

    namespace: replaces the graph's top-level namespace (e.g. to run a second camera's graph next to the first).
    parameter_overrides: {node name: {parameter: value}}, applied last.
    arguments: {launch argument: string value} (LAUNCH_ARGUMENTS; `graph` and `namespace` are the parameters above).
    declared_parameters: executable -> the parameter names its node declares; given, every name is checked.
    """
    arguments = {name: default for name, (default, _) in LAUNCH_ARGUMENTS.items()} | dict(arguments or {})
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.is_file():
            raise GraphError(f"graph file not found: {path}")
        graph = _read_yaml(path) or {}
        base_dir, origin = path.resolve().parent, f"{path}: "
    else:
        graph, base_dir, origin = source, config_dir(), ""
    if not isinstance(graph, dict) or not isinstance(graph.get("nodes"), list):
        raise GraphError(f"{origin}a graph needs a `nodes:` list")
    overrides = dict(parameter_overrides or {})
    graph_namespace = graph.get("namespace", "") if namespace is None else namespace
    shared_file = Path(arguments["params_file"]).expanduser() if arguments["params_file"] else None
    nodes = []
    for entry in graph["nodes"]:
        node = _node_launch(entry, graph_namespace, base_dir, origin)
        if node is None or not _boolean_argument(f"enable_{node.executable}",
                                                 arguments[f"enable_{node.executable}"]):
            continue
        known = None if declared_parameters is None else declared_parameters(node.executable)
        if shared_file is not None:
            node.parameters.update(_shared_parameters(shared_file, node.name, known))
        _apply_launch_arguments(node, arguments, known)
        node.parameters.update(overrides.pop(node.name, {}))
        if known is not None:
            errors = unknown_parameters(node.parameters, known)
            if errors:
                raise GraphError(f"node {node.name} ({node.executable}): {'; '.join(errors)}")
        nodes.append(node)
    if shared_file is not None and declared_parameters is not None:
        wildcard, _ = _parameter_sections(shared_file, "/**")
        errors = unknown_parameters(wildcard, set().union(*(declared_parameters(n.executable) for n in nodes)))
        if errors:
            raise GraphError(f"{shared_file}, section /**: {'; '.join(errors)}")
    names = [node.name for node in nodes]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise GraphError(f"{origin}node names must be unique in a graph, repeated: {duplicates}")
    if overrides:
        raise GraphError(f"parameter overrides for nodes not in the graph: {sorted(overrides)}")
    return nodes


def _shared_parameters(path, node_name, known):
    """The params_file values for one node: its own sections, and the `/**` values it declares (a shared file may set
    e.g. device for the model nodes only; a name no node declares is still caught by the check of each node)."""
    if not path.is_file():
        raise GraphError(f"params_file not found: {path}")
    wildcard, own = _parameter_sections(path, node_name)
    if known is not None:
        wildcard = {name: value for name, value in wildcard.items() if not unknown_parameters([name], known)}
    return wildcard | own


def _apply_launch_arguments(node, arguments, known):
    if arguments["use_sim_time"]:
        node.parameters["use_sim_time"] = _boolean_argument("use_sim_time", arguments["use_sim_time"])
    if arguments["device"] and (known is None or "device" in known):
        node.parameters["device"] = arguments["device"]
    remappings = dict(node.remappings)
    for argument, topic in TOPIC_ARGUMENTS.items():
        if arguments[argument]:
            remappings[topic] = arguments[argument]
    node.remappings = list(remappings.items())


def _node_launch(entry, graph_namespace, base_dir, origin):
    """origin: "<graph file>: " (or "" for a graph given as a dict), the prefix of every error message."""
    if not isinstance(entry, dict):
        raise GraphError(f"{origin}each node entry must be a mapping, got {entry!r}")
    unknown = set(entry) - _NODE_KEYS
    if unknown:
        raise GraphError(f"{origin}node entry {entry.get('name')!r}: unknown keys {sorted(unknown)}")
    executable = entry.get("executable")
    if executable not in NODE_EXECUTABLES:
        raise GraphError(f"{origin}node entry {entry.get('name')!r}: executable must be one of "
                         f"{sorted(NODE_EXECUTABLES)}, got {executable!r}")
    if not entry.get("enabled", True):
        return None
    name = entry.get("name") or executable
    parameters = {}
    if entry.get("parameters_file"):
        parameters.update(read_parameter_file(base_dir / entry["parameters_file"], name))
    parameters.update(_flatten(entry.get("parameters") or {}, f"{origin}node {name}"))
    remappings = entry.get("remappings") or {}
    if not isinstance(remappings, dict):
        raise GraphError(f"{origin}node {name}: remappings must be a mapping from topic to topic")
    return NodeLaunch(
        name=name,
        executable=executable,
        namespace=join_namespaces(graph_namespace, entry.get("namespace", "")),
        parameters=parameters,
        remappings=[(str(source), str(target)) for source, target in remappings.items()],
        **_respawn_settings(entry, f"{origin}node {name}"),
    )


def _respawn_settings(entry, node):
    settings = {key: entry.get(key, default) for key, default in RESPAWN_DEFAULTS.items()}
    if not isinstance(settings["respawn"], bool):
        raise GraphError(f"{node}: respawn must be true or false, got {settings['respawn']!r}")
    delay = settings["respawn_delay"]
    if isinstance(delay, bool) or not isinstance(delay, (int, float)) or not 0 <= delay <= 3600:
        raise GraphError(f"{node}: respawn_delay must be seconds in [0, 3600], got {delay!r}")
    retries = settings["respawn_max_retries"]
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < -1:
        raise GraphError(f"{node}: respawn_max_retries must be an integer >= -1 (-1: no limit), got {retries!r}")
    settings["respawn_delay"] = float(delay)
    return settings


def launch_node_arguments(nodes):
    """Keyword arguments of launch_ros.actions.Node for each NodeLaunch (what the launch files build)."""
    return [
        dict(package=PACKAGE, executable=node.executable, name=node.name, namespace=node.namespace,
             parameters=[dict(node.parameters)], remappings=list(node.remappings), output="screen",
             respawn=node.respawn, respawn_delay=node.respawn_delay, respawn_max_retries=node.respawn_max_retries)
        for node in nodes
    ]
