"""`ghtt benchmark --preset tiny` end to end on a tiny generated dataset (the CI smoke test)."""

import json
from dataclasses import replace

import pytest

from ghtt_core.cli import main
from ghtt_core.data.cli import SYNTHETIC_VIEW_SPLITS
from ghtt_core.data.storage import write_dataset
from ghtt_core.data.synthetic.actions import ACTION_CLASSES
from ghtt_core.data.synthetic.generator import GeneratorConfig, generate_benchmark
from ghtt_core.taxonomy import Taxonomy


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("bench_data")
    config = replace(GeneratorConfig(seed=3), num_recordings=3, subjects_per_split=(1, 1, 1))
    taxonomy = Taxonomy(tuple((c.label, c.verb, c.noun) for c in ACTION_CLASSES))
    write_dataset(root, generate_benchmark(config), taxonomy, view_splits=SYNTHETIC_VIEW_SPLITS)
    return root


def test_tiny_benchmark_writes_every_table_number_and_plot(tiny_dataset, tmp_path):
    out = tmp_path / "bench"
    assert main(["benchmark", "--data", str(tiny_dataset), "--out", str(out), "--preset", "tiny", "--seed", "1"]) == 0

    results = json.loads((out / "results.json").read_text())
    assert results["seed"] == 1 and results["views"] == {"train": ["front", "left"], "test": ["right", "top"]}
    assert 0.0 <= results["fid_net"]["test_accuracy"] <= 1.0 and results["fid_net"]["test_windows"] > 0

    recognition = results["recognition"]["by_view"]
    assert set(recognition) == {"all", "right", "top"}
    assert recognition["all"]["sequences"] == recognition["right"]["sequences"] + recognition["top"]["sequences"]
    assert set(recognition["all"]["accuracy"]) == {"G-HTT", "G-HTT, 4 clip offsets", "HTT (recognition only)",
                                                   "BiGRU (raw joints)", "BiGRU (raw joints), 4 clip offsets",
                                                   "flattened"}
    estimator = recognition["all"]["mpjpe"]["input_ra"]
    assert all(value > 0 for value in estimator["mean"]) and all(count > 0 for count in estimator["count"])

    one_second, two_seconds = results["prediction"]["1s"], results["prediction"]["2s"]
    assert 0 < two_seconds["windows"] <= one_second["windows"] <= 24
    expected_methods = {"zero velocity", "constant velocity", "G-HTT P.a", "G-HTT P.b", "G-HTT P.b, true action",
                        "prediction-only A-Block (P.b)", "flattened, std x 5", "flattened, std x 10"}
    assert set(one_second["methods"]) == expected_methods
    for name, method in one_second["methods"].items():
        stochastic = method["random_samples"] == 3
        assert stochastic == (name not in ("zero velocity", "constant velocity"))
        assert method["fid"] is not None and method["fid"] >= -1e-6
        assert method["fid_samples"] == [one_second["windows"] * (3 if stochastic else 1), one_second["windows"]]
        assert (method["apd"]["mean"][1] is not None) == stochastic
        assert len(method["horizon_mm"]) == 96

    report = (out / "report.md").read_text()
    for heading in ("## Table 1", "## Prediction, windows with >= 30 frames left", "## Prediction, windows with >= "
                    "60 frames left", "## Table 4 shape", "FID network: top-1 accuracy"):
        assert heading in report
    for plot in ("error_vs_horizon.png", "confusion_matrix.png", "trajectories.png"):
        assert (out / plot).stat().st_size > 1000
    assert (out / "model.pt").is_file() and (out / "model_prediction_only.pt").is_file()


def test_benchmark_help_documents_every_option(capsys):
    with pytest.raises(SystemExit):
        main(["benchmark", "--help"])
    text = capsys.readouterr().out
    for option in ("--data", "--out", "--pose-checkpoint", "--full-checkpoint", "--preset", "--seed", "--threads"):
        assert option in text
