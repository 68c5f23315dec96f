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
