"""On-disk format: exact round trips, index and splits, per-view sequences, conversion from per-view sources."""

import json

import numpy as np
import pytest

from ghtt_core.data.recording import Recording
from ghtt_core.data.sequence import ActionSegment, HandSequence
from ghtt_core.data.storage import StoredDataset, load_recording, save_recording, write_dataset
from ghtt_core.data.synthetic.generator import GeneratorConfig, generate_benchmark
from ghtt_core.taxonomy import Taxonomy

CONFIG = GeneratorConfig(seed=3, num_recordings=3, actions_per_recording=(2, 2), subjects_per_split=(1, 1, 1),
                         named_views=("front", "ego"), random_views=1)


@pytest.fixture(scope="module")
def recordings():
    return list(generate_benchmark(CONFIG))


def test_recording_round_trip(tmp_path, recordings):
    original = recordings[0]
    save_recording(tmp_path / "r.npz", original)
    loaded = load_recording(tmp_path / "r.npz", original.name, original.subject, original.split)
    assert np.array_equal(loaded.joints_world, original.joints_world)
    assert loaded.actions == original.actions and loaded.fps == original.fps
    assert set(loaded.objects) == set(original.objects)
    for name, view in original.views.items():
        a, b = view, loaded.views[name]
        assert np.array_equal(a.presence, b.presence)
        assert np.array_equal(a.estimated_presence, b.estimated_presence)
        assert np.allclose(a.cam_from_world, b.cam_from_world)
        # estimates are stored as float16 residuals: sub-millimetre round-trip error
        assert np.abs(a.estimated_joints - b.estimated_joints).max() < 5e-4
        seq_a, seq_b = original.view(name), loaded.view(name)
        assert np.allclose(seq_a.joints, seq_b.joints, atol=1e-6)


def test_write_dataset_index_splits_and_sequences(tmp_path, recordings):
    taxonomy = Taxonomy.from_segments([a for r in recordings for a in r.actions])
    write_dataset(tmp_path, recordings, taxonomy, provenance={"seed": 3}, view_splits={"test": ["front"]})
    index = json.loads((tmp_path / "index.json").read_text())
    assert index["provenance"] == {"seed": 3}
    assert sorted(index["splits"]["subject"]) == ["test", "train", "val"]
    dataset = StoredDataset(tmp_path)
    assert dataset.taxonomy == taxonomy
    assert dataset.view_split("test") == ["front"]
    train = dataset.sequences("train", views=["front", "ego"])
    assert [s.view for s in train] == ["front", "ego"]
    assert all(s.split == "train" for s in train)
    assert len(dataset.sequences()) == 3 * 3
    with pytest.raises(ValueError, match="view split"):
        dataset.view_split("val")


def test_stored_dataset_rejects_other_folders(tmp_path):
    with pytest.raises(ValueError, match="index.json"):
        StoredDataset(tmp_path)
    (tmp_path / "index.json").write_text(json.dumps({"format": "other", "version": 1}))
    with pytest.raises(ValueError, match="ghtt-hands"):
        StoredDataset(tmp_path)


def test_per_view_sequences_convert_to_a_recording_and_back(tmp_path):
    rng = np.random.default_rng(0)
    joints = rng.normal(0, 0.1, (20, 2, 21, 3)).astype(np.float32) + np.array([0, 0, 1.0], dtype=np.float32)
    cam_b = np.eye(4)
    cam_b[:3, :3] = np.array([[0, -1, 0], [1, 0, 0], [0, 0, 1.0]])
    cam_b[:3, 3] = [0.1, 0.0, 0.2]
    actions = [ActionSegment(2, 10, "open jar", "open", "jar")]
    presence = np.ones((20, 2), dtype=bool)
    view_a = HandSequence("rec/a", joints, presence, actions=actions, view="a", cam_from_world=np.eye(4))
    joints_b = joints @ cam_b[:3, :3].T + cam_b[:3, 3]
    view_b = HandSequence("rec/b", joints_b, presence, actions=actions, view="b", cam_from_world=cam_b)
    recording = Recording.from_sequences([view_a, view_b])
    assert recording.name == "rec"
    write_dataset(tmp_path, [recording])
    loaded = StoredDataset(tmp_path)
    assert loaded.taxonomy.labels == ("open jar",)
    sequences = {s.view: s for s in loaded.sequences()}
    assert np.allclose(sequences["b"].joints, joints_b, atol=1e-5)
    assert sequences["a"].actions == actions
    with pytest.raises(ValueError, match="share frames"):
        Recording.from_sequences([view_a, HandSequence("rec/c", joints[:10], presence[:10], view="c",
                                                        cam_from_world=np.eye(4))])


def test_cli_generates_inspects_and_plots(tmp_path, capsys):
    from ghtt_core.cli import main

    main(["data", "generate", "--out", str(tmp_path / "syn"), "--num-recordings", "2", "--random-views", "0"])
    assert "wrote 2 recordings" in capsys.readouterr().out
    dataset = StoredDataset(tmp_path / "syn")
    assert len(dataset.taxonomy.labels) == 28 and dataset.view_split("train") == ["front", "left"]
    main(["data", "inspect", str(tmp_path / "syn"), "--plot", str(tmp_path / "seq.png"), "--view", "top"])
    stats = json.loads(capsys.readouterr().out.split("plot written")[0])
    assert stats["views"]["front"] == 2 and sum(s["recordings"] for s in stats["splits"].values()) == 2
    assert (tmp_path / "seq.png").stat().st_size > 10_000
