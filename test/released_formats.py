"""Writers of released dataset files for the reader and bag tests (importable from test/core and test/ros)."""

# Assembly101 fine-grained-annotations CSV, every column of the released files.
FINE_GRAINED_HEADER = ("id,video,start_frame,end_frame,action_id,verb_id,noun_id,action_cls,verb_cls,noun_cls,"
                       "toy_id,toy_name,is_shared,is_RGB")


def fine_grained_row(row_id, video_view, start, end, action, verb, noun):
    return f"{row_id},{video_view},{start},{end},1,2,3,{action},{verb},{noun},c11b,excavator,1,0"


def write_fine_grained(folder, name, rows):
    """folder/name with the header and the given rows (strings from fine_grained_row)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(FINE_GRAINED_HEADER + "\n" + "\n".join(rows) + "\n")


# FPHA: data_split_action_recognition.txt + Hand_pose_annotation_v1/<Subject_k>/<action>/<seq>/skeleton.txt.
def write_fpha_skeleton(path, joints_mm):
    """skeleton.txt rows "t x1 y1 z1 ... x21 y21 z21" of joints_mm (T, 21, 3) in FPHA's joint order."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [f"{t} " + " ".join(f"{v:.4f}" for v in frame.ravel()) for t, frame in enumerate(joints_mm)]
    path.write_text("\n".join(rows) + "\n")


def write_fpha(root, splits):
    """The released FPHA layout under root. splits: {"train": [(Subject_k/<action>/<seq>, class, joints_mm)],
    "test": [...]} with joints_mm (T, 21, 3) in FPHA's joint order."""
    lines = []
    for split, header in (("train", "Training"), ("test", "Test")):
        lines.append(f"{header} {len(splits[split])}")
        for sequence_path, label, joints_mm in splits[split]:
            lines.append(f"{sequence_path} {label}")
            write_fpha_skeleton(root / "Hand_pose_annotation_v1" / sequence_path / "skeleton.txt", joints_mm)
    (root / "data_split_action_recognition.txt").write_text("\n".join(lines) + "\n")
