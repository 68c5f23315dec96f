"""Validation recordings held out of a training split (ghtt_core.data.holdout, `--val-fraction`)."""

import pytest

from ghtt_core.data.holdout import held_out_recordings


def _entries(recordings_per_subject):
    return [{"name": f"{subject}_{index}", "subject": subject}
            for subject, count in recordings_per_subject.items() for index in range(count)]


def test_every_subject_gives_about_the_fraction_of_its_recordings():
    entries = _entries({"a": 10, "b": 10, "c": 20})
    held = held_out_recordings(entries, 0.1, seed=0)
    assert len(held) == 4
    assert sorted(name.split("_")[0] for name in held) == ["a", "b", "c", "c"]


def test_the_choice_is_seeded_and_independent_of_the_entry_order():
    entries = _entries({"a": 6, "b": 7})
    held = held_out_recordings(entries, 0.3, seed=1)
    assert held == held_out_recordings(list(reversed(entries)), 0.3, seed=1)
    assert any(held_out_recordings(entries, 0.3, seed=seed) != held for seed in range(2, 6))


def test_recordings_without_subjects_form_one_group_and_training_keeps_one():
    entries = [{"name": f"r{index}", "subject": ""} for index in range(3)]
    assert len(held_out_recordings(entries, 0.01, seed=0)) == 1  # at least one
    assert len(held_out_recordings(entries, 0.99, seed=0)) == 2  # at most N - 1


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.5])
def test_fractions_outside_0_1_are_errors(fraction):
    with pytest.raises(ValueError, match="--val-fraction"):
        held_out_recordings(_entries({"a": 4}), fraction, seed=0)


def test_a_single_recording_cannot_be_split():
    with pytest.raises(ValueError, match="at least 2"):
        held_out_recordings(_entries({"a": 1}), 0.5, seed=0)
