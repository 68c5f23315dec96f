"""Reader for FPHA, the First-Person Hand Action benchmark (Garcia-Hernando et al., CVPR 2018); see docs/datasets.md.

    <root>/data_split_action_recognition.txt                 "Training 600", "<Subject_k>/<action>/<seq> <class>" lines,
                                                             "Test 575", more lines
    <root>/Hand_pose_annotation_v1/Subject_k/<action>/<seq>/skeleton.txt   "t x1 y1 z1 ... x21 y21 z21" in mm

FPHA annotates the right hand only. Skeletons are in the depth camera's frame (the dataset calls it "world").
"""

from pathlib import Path

import numpy as np

from ghtt_core.data.errors import DatasetFormatError, parse_floats, parse_int, read_nonempty_lines
from ghtt_core.data.joint_orders import FPHA_TO_GHTT
from ghtt_core.data.sequence import ActionSegment, HandSequence
from ghtt_core.skeleton import RIGHT

FPHA_FPS = 30.0
FPHA_SPLITS = {"train": "Training", "test": "Test"}
SPLIT_FILE = "data_split_action_recognition.txt"
SKELETON_DIR = "Hand_pose_annotation_v1"

# (folder name, verb, noun) in class order: class k of the split file is entry k (action_object_info.txt id k + 1).
FPHA_ACTIONS = (
    ("open_juice_bottle", "open", "juice bottle"), ("close_juice_bottle", "close", "juice bottle"),
    ("pour_juice_bottle", "pour", "juice bottle"), ("open_peanut_butter", "open", "peanut butter"),
    ("close_peanut_butter", "close", "peanut butter"), ("prick", "prick", "fork"), ("sprinkle", "sprinkle", "spoon"),
    ("scoop_spoon", "scoop", "spoon"), ("put_sugar", "put", "sugar"), ("stir", "stir", "spoon"),
    ("open_milk", "open", "milk"), ("close_milk", "close", "milk"), ("pour_milk", "pour", "milk"),
    ("drink_mug", "drink", "mug"), ("put_tea_bag", "put", "tea bag"), ("put_salt", "put", "salt"),
    ("open_liquid_soap", "open", "liquid soap"), ("close_liquid_soap", "close", "liquid soap"),
    ("pour_liquid_soap", "pour", "liquid soap"), ("wash_sponge", "wash", "sponge"), ("flip_sponge", "flip", "sponge"),
    ("scratch_sponge", "scratch", "sponge"), ("squeeze_sponge", "squeeze", "sponge"),
    ("open_soda_can", "open", "soda can"), ("use_flash", "use", "flash"), ("write", "write", "pen"),
    ("tear_paper", "tear", "paper"), ("squeeze_paper", "squeeze", "paper"), ("open_letter", "open", "letter"),
    ("take_letter_from_enveloppe", "take out", "letter"), ("read_letter", "read", "letter"),
    ("flip_pages", "flip", "book"), ("use_calculator", "use", "calculator"), ("light_candle", "light", "candle"),
    ("charge_cell_phone", "charge", "cell phone"), ("unfold_glasses", "unfold", "glasses"),
    ("clean_glasses", "clean", "glasses"), ("open_wallet", "open", "wallet"), ("give_coin", "give", "coin"),
    ("receive_coin", "receive", "coin"), ("give_card", "give", "card"), ("pour_wine", "pour", "wine bottle"),
    ("toast_wine", "toast", "wine glass"), ("handshake", "shake", "hand"), ("high_five", "high five", "hand"),
)

# Intel RealSense SR300 calibration from the FPHA README. Depth camera = the skeleton frame.
DEPTH_INTRINSICS = np.array([[475.065948, 0.0, 315.944855], [0.0, 475.065857, 245.287079], [0.0, 0.0, 1.0]])
COLOR_INTRINSICS = np.array([[1395.749023, 0.0, 935.732544], [0.0, 1395.749268, 540.681030], [0.0, 0.0, 1.0]])
COLOR_FROM_DEPTH = np.array([
    [0.999988496304, -0.00468848412856, 0.000982563360594, 25.7 / 1000.0],
    [0.00469115935266, 0.999985218048, -0.00273845880292, 1.22 / 1000.0],
    [-0.000969709653873, 0.00274303671904, 0.99999576807, 3.902 / 1000.0],
    [0.0, 0.0, 0.0, 1.0],
])
FPHA_VIEWS = {"color": (COLOR_INTRINSICS, COLOR_FROM_DEPTH), "depth": (DEPTH_INTRINSICS, np.eye(4))}

_MM_TO_M = 1e-3


def fpha_taxonomy():
    """(label, verb, noun) of the 45 FPHA actions in class order; label = folder name with spaces."""
    return tuple((folder.replace("_", " "), verb, noun) for folder, verb, noun in FPHA_ACTIONS)


def read_split_file(path):
    """{"train": [(line, "Subject_k/action/seq", class)], "test": [...]}; section sizes checked against headers."""
    lines = read_nonempty_lines(path)
    sections = {name: [] for name in FPHA_SPLITS}
    section_by_header = {header: name for name, header in FPHA_SPLITS.items()}
    declared = {}
    current = None
    for number, text in lines:
        fields = text.split()
        if fields[0] in section_by_header:
            current = section_by_header[fields[0]]
            if len(fields) == 2:
                declared[current] = (number, parse_int(fields[1], path, number, "section size"))
            continue
        if current is None:
            raise DatasetFormatError(path, number, "entry before the 'Training' header")
        if len(fields) != 2:
            raise DatasetFormatError(path, number, f"expected '<Subject_k>/<action>/<seq> <class>', got {text!r}")
        sequence_path, label = fields[0], parse_int(fields[1], path, number, "action class")
        parts = sequence_path.split("/")
        if len(parts) != 3:
            raise DatasetFormatError(path, number, f"path must be Subject_k/action/seq, got {sequence_path!r}")
        if not 0 <= label < len(FPHA_ACTIONS):
            raise DatasetFormatError(path, number, f"action class must be in 0..44, got {label}")
        if parts[1] != FPHA_ACTIONS[label][0]:
            raise DatasetFormatError(path, number,
                                     f"class {label} is {FPHA_ACTIONS[label][0]!r} but the folder is {parts[1]!r}")
        sections[current].append((number, sequence_path, label))
    for name, (number, size) in declared.items():
        if size != len(sections[name]):
            raise DatasetFormatError(path, number, f"header announces {size} sequences, found {len(sections[name])}")
    return sections


def read_skeleton_file(path):
    """Right-hand joints (T, 21, 3) in metres, ghtt order; rows must be numbered 0..T-1."""
    lines = read_nonempty_lines(path)
    frames = []
    for index, (number, text) in enumerate(lines):
        values = parse_floats(text.split(), path, number, 1 + 21 * 3)
        if values[0] != index:
            raise DatasetFormatError(path, number, f"frame number {values[0]:g} where {index} was expected")
        frames.append(values[1:])
    return (np.array(frames).reshape(-1, 21, 3) * _MM_TO_M)[:, FPHA_TO_GHTT]


def load_fpha(root, split="train", view="color"):
    """The sequences of one split of the official 1:1 action split, one action segment each.

    view "color": joints in the RGB camera frame, RGB intrinsics; "depth": the skeleton's own (depth camera) frame.
    cam_from_world maps the skeleton frame into the view.
    """
    if split not in FPHA_SPLITS:
        raise ValueError(f"FPHA split must be one of {tuple(FPHA_SPLITS)}, got {split!r}")
    if view not in FPHA_VIEWS:
        raise ValueError(f"FPHA view must be one of {tuple(FPHA_VIEWS)}, got {view!r}")
    root = Path(root)
    intrinsics, cam_from_world = FPHA_VIEWS[view]
    taxonomy = fpha_taxonomy()
    sequences = []
    for _, sequence_path, label in read_split_file(root / SPLIT_FILE)[split]:
        right = read_skeleton_file(root / SKELETON_DIR / sequence_path / "skeleton.txt")
        right = right @ cam_from_world[:3, :3].T + cam_from_world[:3, 3]
        joints = np.zeros((len(right), 2, 21, 3))
        joints[:, RIGHT] = right
        presence = np.zeros((len(right), 2), dtype=bool)
        presence[:, RIGHT] = True
        name, verb, noun = taxonomy[label]
        sequences.append(HandSequence(
            name=f"fpha/{sequence_path}",
            joints=joints,
            presence=presence,
            fps=FPHA_FPS,
            actions=[ActionSegment(0, len(right), name, verb, noun)],
            subject=sequence_path.split("/")[0],
            view=view,
            split=split,
            intrinsics=intrinsics.copy(),
            cam_from_world=cam_from_world.copy(),
        ))
    return sequences
