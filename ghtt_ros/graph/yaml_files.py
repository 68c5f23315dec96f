"""Reading the YAML files a user hands to ghtt-ros (graph files, ROS parameter files): plain YAML only, bounded in size
and in alias expansion, and every failure one line `file:line:column: what is wrong`.

PyYAML's safe loader already refuses `!!python/...` tags, but with a traceback; and it shares aliased nodes, so a
"billion laughs" file loads in microseconds and then hangs whatever walks or dumps the result (the runner flattens and
re-dumps parameters). Here the composed document's size with every alias expanded is counted before anything is
constructed, and the file is refused when it is implausibly large for a graph.
"""

from pathlib import Path

import yaml

MAX_FILE_BYTES = 1_000_000
# Nodes of the document with aliases expanded. A graph file has a few hundred; a billion-laughs file 10**9.
MAX_EXPANDED_NODES = 100_000


class YamlFileError(ValueError):
    """A file that is not readable, plain, reasonably sized YAML; the message is one line naming file and line."""


def load_yaml_file(path):
    """The parsed content of a YAML file (None for an empty one); YamlFileError otherwise."""
    path = Path(path)
    if not path.is_file():
        raise YamlFileError(f"{path}: file not found" if not path.exists() else f"{path}: not a regular file")
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise YamlFileError(f"{path}: {size} bytes is too large for a graph or parameter file (at most "
                            f"{MAX_FILE_BYTES}); is this the right file?")
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[:error.start].count(b"\n") + 1
        raise YamlFileError(f"{path}:{line}: not UTF-8 text (byte 0x{data[error.start]:02x} at offset "
                            f"{error.start}); is this a YAML file?") from None
    return _parse(path, text)


def _parse(path, text):
    loader = None
    try:
        loader = yaml.SafeLoader(text)
        root = loader.get_single_node()
        if root is None:
            return None
        _expanded_size(root, {}, path)
        return loader.construct_document(root)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else f"{path}"
        problem = " ".join(part for part in (error.context, error.problem) if part)
        if isinstance(error, yaml.constructor.ConstructorError):
            problem += " (only plain YAML: mappings, lists, strings, numbers, booleans)"
        raise YamlFileError(f"{where}: {problem}") from None
    except yaml.reader.ReaderError as error:
        line = text[:error.position].count("\n") + 1
        raise YamlFileError(f"{path}:{line}: {error.reason} (character #x{error.character:04x}); is this a YAML "
                            "file?") from None
    except RecursionError:
        raise YamlFileError(f"{path}: nested too deeply to be a graph or parameter file") from None
    finally:
        if loader is not None:
            loader.dispose()


def _expanded_size(node, sizes, path):
    """Number of nodes with every alias expanded (shared nodes count once per use, measured once); YamlFileError at
    the first node whose expansion exceeds MAX_EXPANDED_NODES."""
    key = id(node)
    if key in sizes and sizes[key] is None:
        raise YamlFileError(f"{path}:{node.start_mark.line + 1}: an alias refers to the value containing it "
                            "(recursive); refused")
    if key not in sizes:
        sizes[key] = None  # being measured
        size = 1
        if isinstance(node, yaml.SequenceNode):
            size += sum(_expanded_size(child, sizes, path) for child in node.value)
        elif isinstance(node, yaml.MappingNode):
            size += sum(_expanded_size(k, sizes, path) + _expanded_size(v, sizes, path) for k, v in node.value)
        sizes[key] = size
        if size > MAX_EXPANDED_NODES:
            raise YamlFileError(f"{path}:{node.start_mark.line + 1}: aliases expand to more than "
                                f"{MAX_EXPANDED_NODES} values (a 'billion laughs' file?); refused")
    return sizes[key]
