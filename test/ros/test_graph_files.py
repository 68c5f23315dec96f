"""Broken graph and parameter files: `ghtt-ros` answers every one with a single `error:` line naming the file (and the
line where there is one) in well under a second; a YAML bomb is refused instead of hanging; respawn settings are
checked and reach the launch arguments."""

import time

import pytest
import yaml

from ghtt_ros.graph.cli import main as cli_main
from ghtt_ros.graph.spec import GraphError, launch_node_arguments, load_graph
from ghtt_ros.graph.yaml_files import MAX_EXPANDED_NODES, YamlFileError, load_yaml_file
from test_graph import CONFIG


def _billion_laughs():
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    previous = "a"
    for name in "bcdefghi":
        lines.append(f"{name}: &{name} [{', '.join([f'*{previous}'] * 9)}]")
        previous = name
    lines.append("nodes: *i")
    return "\n".join(lines) + "\n"


BROKEN_FILES = {  # name -> (content, what the one line must say)
    "billion_laughs.yaml": (_billion_laughs(), ":6: aliases expand to more than"),  # line of &f: 9**6 values
    "recursive.yaml": ("nodes: &n [*n]\n", ":1: an alias refers to the value containing it"),
    "syntax.yaml": ("nodes:\n  - name: x\n    executable: [unclosed\n", ":4:1: while parsing a flow sequence"),
    "tab.yaml": ("nodes:\n\t- name: x\n", ":2:1: while scanning for the next token"),
    "python_tag.yaml": ("nodes: !!python/object/apply:os.system [\"echo pwned\"]\n",
                        ":1:8: could not determine a constructor for the tag"),
    "binary.yaml": (bytes(range(256)) * 4, ":2: not UTF-8 text"),
    "nul.yaml": (b"nodes:\n  - name: \x00\n", ":2: special characters are not allowed"),
    "not_a_graph.yaml": ("- just\n- a list\n", ": a graph needs a `nodes:` list"),
}


@pytest.mark.parametrize("name", sorted(BROKEN_FILES))
def test_a_broken_graph_file_is_one_error_line_with_file_and_line(tmp_path, capsys, name):
    content, expected = BROKEN_FILES[name]
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    started = time.monotonic()
    assert cli_main(["nodes", str(path)]) == 2
    elapsed = time.monotonic() - started
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and not captured.out, captured
    assert lines[0].startswith(f"ghtt-ros: error: {path}") and expected in lines[0], lines[0]
    assert "Traceback" not in captured.err
    assert elapsed < 1.0, f"{name}: {elapsed:.2f} s"


def test_a_broken_parameter_file_names_itself_and_its_line(tmp_path, capsys):
    (tmp_path / "params.yaml").write_text("/**:\n  ros__parameters:\n    top_k: [1, 2\n")
    graph = tmp_path / "graph.yaml"
    graph.write_text(yaml.safe_dump({"nodes": [{"name": "p", "executable": "ghtt_pipeline",
                                                "parameters_file": "params.yaml"}]}))
    assert cli_main(["run", str(graph)]) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"ghtt-ros: error: {tmp_path / 'params.yaml'}:4:1:"), line


def test_the_limit_is_on_the_expanded_size(tmp_path):
    """A file whose aliases expand to fewer values than the limit loads; one alias level more is refused."""
    width = 10  # a list of 10 lists: each level expands to 1 + 10 x the previous one (11, 111, 1111, ...)
    levels = [f"a: &a [{', '.join(['1'] * width)}]"] + [
        f"{name}: &{name} [{', '.join([f'*{previous}'] * width)}]" for previous, name in zip("abc", "bcd")]
    assert 11111 < MAX_EXPANDED_NODES < 111111
    small, large = tmp_path / "small.yaml", tmp_path / "large.yaml"
    small.write_text("\n".join(levels) + "\n")
    large.write_text("\n".join(levels) + f"\ne: [{', '.join(['*d'] * width)}]\n")
    assert len(load_yaml_file(small)["d"]) == width
    with pytest.raises(YamlFileError, match="billion laughs"):
        load_yaml_file(large)


@pytest.mark.parametrize("entry, message", [
    ({"respawn": "yes"}, "respawn must be true or false"),
    ({"respawn_delay": -1}, "respawn_delay must be seconds"),
    ({"respawn_max_retries": 1.5}, "respawn_max_retries must be an integer"),
])
def test_respawn_settings_are_checked(entry, message):
    with pytest.raises(GraphError, match=message):
        load_graph({"nodes": [{"name": "v", "executable": "visualizer", **entry}]})


def test_respawn_settings_reach_the_launch_arguments():
    nodes = load_graph(CONFIG / "graph.yaml")
    assert all(node.respawn and node.respawn_delay == 1.0 and node.respawn_max_retries == 5 for node in nodes)
    arguments = launch_node_arguments(nodes)
    assert all((a["respawn"], a["respawn_delay"], a["respawn_max_retries"]) == (True, 1.0, 5) for a in arguments)
