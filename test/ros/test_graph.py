"""One YAML describes the graph: the runner, the launch files and the config files agree with it and with the code."""

import ast
import importlib.util
import py_compile
import sys
import types
from pathlib import Path

import pytest
import yaml

from ghtt_ros.graph.cli import main as cli_main, parse_assignments
from ghtt_ros.graph.spec import (
    LAUNCH_ARGUMENTS,
    NODE_EXECUTABLES,
    GraphError,
    launch_node_arguments,
    load_graph,
    parse_launch_arguments,
    read_parameter_file,
)
from ghtt_ros.nodes.hand_estimator import HandEstimatorNode
from ghtt_ros.nodes.parameters import defaults
from ghtt_ros.nodes.pipeline import PipelineNode
from ghtt_ros.graph.runner import GraphRunner
from ghtt_ros.nodes.video_source import VideoSourceNode
from ghtt_ros.nodes.visualizer import VisualizerNode

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "config"
NODE_CLASSES = {"video_source": VideoSourceNode, "hand_estimator": HandEstimatorNode, "ghtt_pipeline": PipelineNode,
                "visualizer": VisualizerNode}


def _all_specs(node_class):
    return node_class.parameter_specs()


@pytest.mark.parametrize("executable", sorted(NODE_CLASSES))
def test_parameter_files_list_exactly_the_code_defaults(executable):
    node_class = NODE_CLASSES[executable]
    assert NODE_EXECUTABLES[executable].endswith(f":{node_class.__name__}")
    from_file = read_parameter_file(CONFIG / f"{executable}.yaml", executable)
    code = defaults(_all_specs(node_class))
    assert from_file.keys() == code.keys()
    for name, value in code.items():
        assert from_file[name] == pytest.approx(value), name


def test_every_parameter_has_a_description_and_numbers_have_ranges():
    for node_class in NODE_CLASSES.values():
        for spec in _all_specs(node_class):
            assert len(spec.description) > 15, spec.name
            descriptor = spec.descriptor()
            if isinstance(spec.default, (int, float)) and not isinstance(spec.default, bool):
                assert descriptor.floating_point_range or descriptor.integer_range, spec.name
                assert spec.minimum <= spec.default <= spec.maximum, spec.name


def test_graph_merges_file_inline_and_override_parameters_and_joins_namespaces(tmp_path):
    (tmp_path / "p.yaml").write_text(yaml.safe_dump({
        "/**": {"ros__parameters": {"top_k": 3, "mode": "pose_only", "nested": {"a": 1}}},
        "other_node": {"ros__parameters": {"top_k": 99}},
        "pipe": {"ros__parameters": {"seed": 7}},
    }))
    graph = {"namespace": "robot", "nodes": [
        {"name": "pipe", "executable": "ghtt_pipeline", "namespace": "cam1", "parameters_file": "p.yaml",
         "parameters": {"mode": "action_guided"}, "remappings": {"hands": "/tracker/hands"}},
        {"name": "viz", "executable": "visualizer", "enabled": False},
    ]}
    path = tmp_path / "graph.yaml"
    path.write_text(yaml.safe_dump(graph))
    [node] = load_graph(path, parameter_overrides={"pipe": {"seed": 8}})
    assert node.namespace == "/robot/cam1" and node.name == "pipe"
    assert node.parameters == {"top_k": 3, "mode": "action_guided", "nested.a": 1, "seed": 8}
    assert node.ros_arguments() == ["--ros-args", "-r", "hands:=/tracker/hands"]
    assert load_graph(path, namespace="")[0].namespace == "/cam1"


@pytest.mark.parametrize("graph, message", [
    ({"nodes": [{"name": "x", "executable": "camera_driver"}]}, "executable must be one of"),
    ({"nodes": [{"name": "x", "executable": "visualizer", "param": 1}]}, "unknown keys"),
    ({"nodes": [{"name": "x", "executable": "visualizer"}, {"name": "x", "executable": "ghtt_pipeline"}]}, "unique"),
    ({"nodes": [{"name": "x", "executable": "visualizer", "parameters": {"bad": None}}]}, "unsupported value"),
    ({"nodes": [{"name": "x", "executable": "visualizer", "parameters_file": "missing.yaml"}]}, "not found"),
    ({"node": []}, "nodes"),
])
def test_bad_graphs_are_rejected_with_the_reason(graph, message):
    with pytest.raises(GraphError, match=message):
        load_graph(graph)


def test_overrides_for_unknown_nodes_and_bad_assignments_are_errors():
    with pytest.raises(GraphError, match="not in the graph"):
        load_graph(CONFIG / "pose_input.yaml", parameter_overrides={"hand_estimator": {"device": "cpu"}})
    assert parse_assignments(["a.x=1.5", "a.y=true", "b.z=text"]) == {"a": {"x": 1.5, "y": True}, "b": {"z": "text"}}
    with pytest.raises(GraphError, match="NODE.PARAMETER=VALUE"):
        parse_assignments(["device=cpu"])


def test_cli_lists_the_nodes_and_reports_bad_graphs(capsys):
    assert cli_main(["nodes", str(CONFIG / "graph.yaml"), "--namespace", "cam2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("\t")[:2] for line in lines] == [
        ["/cam2/hand_estimator", "hand_estimator"], ["/cam2/ghtt_pipeline", "ghtt_pipeline"],
        ["/cam2/visualizer", "visualizer"]]
    assert cli_main(["run", str(CONFIG / "no_such_graph.yaml")]) == 2
    assert "graph file not found" in capsys.readouterr().err


# ---- launch files: compiled, and run against stand-ins for launch / launch_ros (not installable here) ----------

class _Recorder:
    """Stands in for a launch class: remembers its arguments."""

    def __init__(self, *args, **kwargs):
        self.args, self.kwargs = args, kwargs


def _fake_launch_modules(share_dir, arguments):
    class LaunchConfiguration(_Recorder):
        def perform(self, context):
            return arguments[self.args[0]]

    modules = {
        "launch": types.SimpleNamespace(LaunchDescription=_Recorder),
        "launch.actions": types.SimpleNamespace(DeclareLaunchArgument=_Recorder, OpaqueFunction=_Recorder,
                                                IncludeLaunchDescription=_Recorder),
        "launch.substitutions": types.SimpleNamespace(LaunchConfiguration=LaunchConfiguration),
        "launch.launch_description_sources": types.SimpleNamespace(PythonLaunchDescriptionSource=_Recorder),
        "launch_ros.actions": types.SimpleNamespace(Node=_Recorder),
        "ament_index_python.packages": types.SimpleNamespace(get_package_share_directory=lambda name: str(share_dir)),
    }
    return {name: types.ModuleType(name) for name in modules}, modules


def _load_launch_file(path, share_dir, arguments, monkeypatch):
    empty, contents = _fake_launch_modules(share_dir, arguments)
    for name, module in empty.items():
        module.__dict__.update(vars(contents[name]))
        monkeypatch.setitem(sys.modules, name, module)
    spec = importlib.util.spec_from_file_location(path.stem.replace(".", "_"), path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("path", sorted((REPO / "launch").glob("*.launch.py")), ids=lambda p: p.name)
def test_launch_files_compile_and_name_a_graph_in_config(path):
    py_compile.compile(str(path), doraise=True)
    constants = {node.targets[0].id: node.value.value for node in ast.parse(path.read_text()).body
                 if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)}
    assert (CONFIG / constants["GRAPH_FILE"]).is_file()


# The launch arguments a ROS 2 user expects (yolo_ros / Isaac ROS habits), by launch file.
STANDARD_ARGUMENTS = {"namespace", "params_file", "use_sim_time", "device", "image_topic", "camera_info_topic",
                      "hands_topic", "enable_video_source", "enable_hand_estimator", "enable_ghtt_pipeline",
                      "enable_visualizer"}
EXPECTED_ARGUMENTS = {"ghtt.launch.py": STANDARD_ARGUMENTS | {"graph"}, "pose_input.launch.py": STANDARD_ARGUMENTS}


def _declared_arguments(description):
    """{name: DeclareLaunchArgument stand-in} of a launch description built with the stand-in classes."""
    return {action.args[0]: action for action in description.args[0] if action.args and isinstance(action.args[0], str)}


@pytest.mark.parametrize("name", sorted(EXPECTED_ARGUMENTS))
def test_launch_files_declare_the_standard_arguments_and_the_runner_takes_the_same(monkeypatch, name):
    launch = _load_launch_file(REPO / "launch" / name, REPO, {}, monkeypatch)
    declared = _declared_arguments(launch.generate_launch_description())
    assert set(declared) == EXPECTED_ARGUMENTS[name]
    assert all(len(argument.kwargs["description"]) > 15 for argument in declared.values())
    assert declared["enable_visualizer"].kwargs["default_value"] == "true"
    assert declared["device"].kwargs["default_value"] == "" and declared["params_file"].kwargs["default_value"] == ""
    runner_arguments = parse_launch_arguments([f"{argument}:=x" for argument in declared])
    assert set(runner_arguments) == set(declared)


def _launch_defaults(**arguments):
    return {name: default for name, (default, _) in LAUNCH_ARGUMENTS.items()} | arguments


@pytest.mark.parametrize("namespace", ["", "cam_left"])
def test_ghtt_launch_builds_the_same_nodes_as_the_runner(monkeypatch, namespace):
    arguments = _launch_defaults(graph=str(CONFIG / "graph.yaml"), namespace=namespace)
    launch = _load_launch_file(REPO / "launch" / "ghtt.launch.py", REPO, arguments, monkeypatch)
    description = launch.generate_launch_description()
    assert _declared_arguments(description)["graph"].kwargs["default_value"] == arguments["graph"]
    opaque = description.args[0][-1]
    launch_nodes = [node.kwargs for node in opaque.kwargs["function"](None)]
    runner = GraphRunner(CONFIG / "graph.yaml", namespace=namespace or None)
    assert launch_nodes == launch_node_arguments(runner.launches)
    assert [(n["name"], n["namespace"], n["executable"]) for n in launch_nodes] == [
        (node.name, node.namespace, node.executable) for node in runner.launches]
    assert all((REPO / "bin" / n["executable"]).is_file() for n in launch_nodes)


def test_launch_arguments_set_device_sim_time_topics_params_file_and_switch_nodes_off(monkeypatch, tmp_path):
    params_file = tmp_path / "site.yaml"
    params_file.write_text(yaml.safe_dump({"/**": {"ros__parameters": {"num_threads": 2, "diagnostics_period_s": 0.5}},
                                           "visualizer": {"ros__parameters": {"line_width_m": 0.01}}}))
    given = dict(device="cpu", use_sim_time="true", image_topic="/camera/color/image_raw",
                 camera_info_topic="/camera/color/camera_info", hands_topic="/tracker/hands",
                 enable_hand_estimator="false", params_file=str(params_file))
    arguments = _launch_defaults(graph=str(CONFIG / "webcam.yaml"), **given)
    launch = _load_launch_file(REPO / "launch" / "ghtt.launch.py", REPO, arguments, monkeypatch)
    launch_nodes = [node.kwargs for node in launch.generate_launch_description().args[0][-1].kwargs["function"](None)]
    runner = GraphRunner(CONFIG / "webcam.yaml", arguments=given)
    assert launch_nodes == launch_node_arguments(runner.launches)
    nodes = {node.name: node for node in runner.launches}
    assert sorted(nodes) == ["ghtt_pipeline", "video_source", "visualizer"]  # enable_hand_estimator:=false
    assert all(node.parameters["use_sim_time"] is True for node in nodes.values())
    assert nodes["ghtt_pipeline"].parameters["device"] == "cpu" and "device" not in nodes["visualizer"].parameters
    assert nodes["ghtt_pipeline"].parameters["num_threads"] == 2 and "num_threads" not in nodes["visualizer"].parameters
    assert all(node.parameters["diagnostics_period_s"] == 0.5 for node in nodes.values())
    assert nodes["visualizer"].parameters["line_width_m"] == 0.01
    for node in nodes.values():
        remapped = dict(node.remappings)
        assert remapped == {"image": "/camera/color/image_raw", "camera_info": "/camera/color/camera_info",
                            "hands": "/tracker/hands"}
    with pytest.raises(GraphError, match="expected true or false"):
        GraphRunner(CONFIG / "webcam.yaml", arguments={"enable_visualizer": "no"})


def test_pose_input_launch_includes_ghtt_launch_with_its_graph_and_passes_every_argument(monkeypatch):
    launch = _load_launch_file(REPO / "launch" / "pose_input.launch.py", REPO, {}, monkeypatch)
    include = launch.generate_launch_description().args[0][-1]
    assert include.args[0].args[0] == str(REPO / "launch" / "ghtt.launch.py")
    arguments = dict(include.kwargs["launch_arguments"])
    assert arguments["graph"] == str(CONFIG / "pose_input.yaml")
    assert set(arguments) == STANDARD_ARGUMENTS | {"graph"}
    assert [n.executable for n in load_graph(arguments["graph"])] == ["ghtt_pipeline", "visualizer"]


@pytest.mark.parametrize("where", ["inline", "parameters_file", "params_file", "set"])
def test_a_misspelled_parameter_is_an_error_that_names_the_real_one(tmp_path, capsys, where):
    graph = {"nodes": [{"name": "ghtt_pipeline", "executable": "ghtt_pipeline"}]}
    arguments = []
    if where == "inline":
        graph["nodes"][0]["parameters"] = {"num_sample": 4}
    elif where == "parameters_file":
        (tmp_path / "pipe.yaml").write_text(yaml.safe_dump({"/**": {"ros__parameters": {"num_sample": 4}}}))
        graph["nodes"][0]["parameters_file"] = "pipe.yaml"
    elif where == "params_file":  # a node's own section is checked; `/**` values no node declares as well
        (tmp_path / "site.yaml").write_text(yaml.safe_dump({"ghtt_pipeline": {"ros__parameters": {"num_sample": 4}}}))
        arguments = [f"params_file:={tmp_path / 'site.yaml'}"]
    path = tmp_path / "graph.yaml"
    path.write_text(yaml.safe_dump(graph))
    options = ["--set", "ghtt_pipeline.num_sample=4"] if where == "set" else []
    assert cli_main(["nodes", str(path), *arguments, *options]) == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and error.startswith("ghtt-ros: error:")
    assert "unknown parameter 'num_sample' (did you mean num_samples?)" in error


def test_a_params_file_wildcard_value_no_node_declares_is_an_error(tmp_path):
    (tmp_path / "site.yaml").write_text(yaml.safe_dump({"/**": {"ros__parameters": {"devise": "cpu"}}}))
    with pytest.raises(GraphError, match="unknown parameter 'devise' .*did you mean device"):
        GraphRunner(CONFIG / "pose_input.yaml", arguments={"params_file": str(tmp_path / "site.yaml")})


def test_bin_scripts_start_the_node_modules():
    for executable, class_path in NODE_EXECUTABLES.items():
        script = (REPO / "bin" / executable).read_text()
        assert script.startswith("#!/usr/bin/env python3")
        assert f"from {class_path.split(':')[0]} import main" in script
    assert "from ghtt_ros.graph.runner import main" in (REPO / "bin" / "ghtt_runner").read_text()


def test_docs_name_every_parameter_with_its_default():
    rows = {line.split("|")[1].strip().strip("`"): line.split("|")[2].strip().strip("`")
            for line in (REPO / "docs" / "ros.md").read_text().splitlines() if line.startswith("| `")}
    for node_class in NODE_CLASSES.values():
        for spec in _all_specs(node_class):
            assert spec.name in rows, f"docs/ros.md does not list {spec.name}"
            documented = yaml.safe_load(rows[spec.name])
            if isinstance(spec.default, float):
                assert documented == pytest.approx(spec.default, rel=1e-5), spec.name
            else:
                assert documented == spec.default, spec.name


def test_one_default_optical_frame_name_everywhere():
    import inspect

    from ghtt_ros.bag.dataset import write_dataset_bag
    from ghtt_ros.demo.sources import SyntheticActionSource, VideoSource
    from ghtt_ros.nodes.video_source import VIDEO_SOURCE_PARAMETERS
    from ghtt_ros.transforms import DEFAULT_OPTICAL_FRAME

    rviz = yaml.safe_load((CONFIG / "ghtt.rviz").read_text())
    assert rviz["Visualization Manager"]["Global Options"]["Fixed Frame"] == DEFAULT_OPTICAL_FRAME
    for function in (write_dataset_bag, VideoSource.__init__, SyntheticActionSource.__init__):
        assert inspect.signature(function).parameters["frame_id"].default == DEFAULT_OPTICAL_FRAME, function
    assert {spec.name: spec.default for spec in VIDEO_SOURCE_PARAMETERS}["frame_id"] == DEFAULT_OPTICAL_FRAME
    assert read_parameter_file(CONFIG / "video_source.yaml", "video_source")["frame_id"] == DEFAULT_OPTICAL_FRAME
