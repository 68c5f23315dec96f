"""Score calibration (ghtt_core.evaluate.calibration): reliability bins and ECE on known answers, and the diagram."""

import numpy as np
import pytest

from ghtt_core.evaluate.calibration import plot_reliability, reliability


def test_a_calibrated_scorer_has_zero_ece_and_an_overconfident_one_its_gap():
    scores = np.repeat([0.25, 0.75], 4)
    calibrated = np.array([1, 0, 0, 0, 1, 1, 1, 0], bool)  # 1 of 4 right at 0.25, 3 of 4 at 0.75
    curve = reliability(scores, calibrated, bins=4)
    assert curve.ece == pytest.approx(0.0)
    assert curve.count.tolist() == [0, 4, 0, 4] and np.isnan(curve.accuracy[0])  # bins [0, .25), [.25, .5), ...
    overconfident = reliability(np.full(10, 0.95), np.arange(10) < 5, bins=10)  # 95 % said, 50 % right
    assert overconfident.ece == pytest.approx(0.45)
    assert overconfident.count[-1] == 10  # a score of 1.0 would fall in the last bin too
    assert reliability(np.array([1.0]), np.array([True]), bins=10).count[-1] == 1
    summary = overconfident.to_dict()
    assert summary["ece"] == 0.45 and summary["samples"] == 10 and summary["accuracy"][-1] == 0.5


def test_bad_inputs_are_rejected_and_the_diagram_is_drawn(tmp_path):
    with pytest.raises(ValueError, match="as many scores"):
        reliability(np.array([0.5, 0.6]), np.array([True]))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        reliability(np.array([1.5]), np.array([True]))
    curve = reliability(np.linspace(0, 1, 50), np.arange(50) % 2 == 0)
    plot_reliability(tmp_path / "r.png", {"a": curve, "b": curve}, "test")
    assert (tmp_path / "r.png").stat().st_size > 10_000
