"""Dataset statistics and a plot of one sequence, for `ghtt data inspect` and the dataset card."""

from collections import Counter

import numpy as np

from ghtt_core.skeleton import DRAW_BONES


def dataset_statistics(dataset):
    """Counts per split, action durations, hand presence and per-class instance counts of a StoredDataset."""
    stats = {"splits": {}, "classes": Counter(), "durations_s": [], "views": Counter()}
    presence, estimated_presence, joint_error = [], [], []
    for recording in dataset.recordings():
        split = stats["splits"].setdefault(recording.split, {"recordings": 0, "frames": 0, "actions": 0, "subjects": set()})
        split["recordings"] += 1
        split["frames"] += recording.num_frames
        split["actions"] += len(recording.actions)
        split["subjects"].add(recording.subject)
        stats["classes"].update(a.label for a in recording.actions)
        stats["durations_s"].extend((a.end - a.start) / recording.fps for a in recording.actions)
        for name in recording.views:
            stats["views"][name] += 1
            seq = recording.view(name)
            presence.append(seq.presence.mean(axis=0))
            if seq.estimated_joints is not None:
                estimated_presence.append(seq.estimated_presence.mean(axis=0))
                both = seq.presence & seq.estimated_presence
                joint_error.append(np.linalg.norm(seq.estimated_joints - seq.joints, axis=-1)[both].mean())
    for split in stats["splits"].values():
        split["subjects"] = len(split["subjects"])
    durations = np.array(stats["durations_s"])
    stats["durations_s"] = {
        "mean": float(durations.mean()), "min": float(durations.min()), "max": float(durations.max())
    } if len(durations) else {}
    stats["presence_left_right"] = np.mean(presence, axis=0).round(3).tolist() if presence else []
    if estimated_presence:
        stats["estimated_presence_left_right"] = np.mean(estimated_presence, axis=0).round(3).tolist()
        stats["estimated_error_mm"] = round(float(np.mean(joint_error)) * 1000, 1)
    stats["classes"] = dict(sorted(stats["classes"].items()))
    stats["views"] = dict(stats["views"])
    return stats


def plot_sequence(sequence, path, snapshots=4):
    """Wrist height/depth over time with the action spans, plus skeleton snapshots in the image plane."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(12, 6))
    timeline = fig.add_subplot(2, 1, 1)
    t = np.arange(sequence.num_frames) / sequence.fps
    for hand, colour in ((0, "tab:blue"), (1, "tab:red")):
        wrist = np.where(sequence.presence[:, hand, None], sequence.joints[:, hand, 0], np.nan)
        for axis, style in ((0, "-"), (1, "--"), (2, ":")):
            timeline.plot(t, wrist[:, axis], style, color=colour, lw=1,
                          label=f"{('left', 'right')[hand]} wrist {'xyz'[axis]}")
    for k, segment in enumerate(sequence.actions):
        timeline.axvspan(segment.start / sequence.fps, segment.end / sequence.fps, alpha=0.12, color=f"C{k % 10}")
        timeline.text(segment.start / sequence.fps, timeline.get_ylim()[1], segment.label, fontsize=7, va="top")
    timeline.set_xlabel("time (s)")
    timeline.set_ylabel("camera frame (m)")
    timeline.legend(fontsize=6, ncol=6, loc="lower right")
    frames = np.linspace(0, sequence.num_frames - 1, snapshots + 2)[1:-1].astype(int)
    for k, frame in enumerate(frames):
        ax = fig.add_subplot(2, snapshots, snapshots + k + 1)
        for hand, colour in ((0, "tab:blue"), (1, "tab:red")):
            if not sequence.presence[frame, hand]:
                continue
            pts = sequence.joints[frame, hand]
            pixels = pts[:, :2] / pts[:, 2:3]
            if sequence.intrinsics is not None:
                pixels = pts @ sequence.intrinsics.T
                pixels = pixels[:, :2] / pixels[:, 2:3]
            for a, b in DRAW_BONES:
                ax.plot(pixels[[a, b], 0], pixels[[a, b], 1], color=colour, lw=1.2)
        ax.invert_yaxis()
        ax.set_aspect("equal")
        ax.set_title(f"frame {frame}", fontsize=8)
        ax.tick_params(labelsize=6)
    fig.suptitle(f"{sequence.name} ({sequence.view})")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
