"""Several streams on one model: batched forecasts equal each stream run alone."""

import numpy as np
import pytest
from test_pipeline import START_NS, assert_same_result, push_all, small_config, stream
from tiny_models import tiny_model

from ghtt_core.pipeline import StreamingPipeline
from ghtt_core.stream_batch import StreamBatch

CLIP = 16


@pytest.fixture(scope="module")
def model():
    return tiny_model()


def camera_streams():
    """Three cameras: different motions, one joining two clips late (a shorter history), one losing its left hand."""
    presence = np.ones((8 * CLIP, 2), bool)
    presence[40:90, 0] = False
    return {
        "cam1": stream(8 * CLIP, seed=1),
        "cam2": stream(6 * CLIP, seed=2, start_ns=START_NS + 2 * CLIP * 33_333_333),
        "cam3": stream(8 * CLIP, seed=3, presence=presence, objects=["cup"] * (8 * CLIP)),
    }


@pytest.mark.parametrize("overrides", [dict(), dict(clip_stride=3), dict(mode="pose_only", num_samples=2)])
def test_batched_streams_give_what_each_stream_gives_alone(model, overrides):
    config = small_config(**overrides)
    streams = camera_streams()
    alone = {name: [result for _, result in push_all(StreamingPipeline(model, config), frames)]
             for name, frames in streams.items()}

    batch = StreamBatch(model, streams, config)
    together = {name: [] for name in streams}
    rounds = sorted({frame.stamp_ns for frames in streams.values() for frame in frames})
    by_stamp = {name: {frame.stamp_ns: frame for frame in frames} for name, frames in streams.items()}
    for stamp in rounds:
        frames = {name: by_stamp[name][stamp] for name in streams if stamp in by_stamp[name]}
        for name, result in batch.push(frames).items():
            together[name].append(result)

    for name in streams:
        assert len(together[name]) == len(alone[name]) > 0
        for batched, single in zip(together[name], alone[name]):
            assert_same_result(batched, single)
    if config.mode == "action_guided":  # several forecasts per pass once the streams' results fall together
        assert batch.batched_forecasts > batch.batched_passes > 0
    else:
        assert batch.batched_passes == 0


def test_stream_names_are_checked(model):
    with pytest.raises(ValueError, match="distinct stream names"):
        StreamBatch(model, ["cam1", "cam1"], small_config())
    batch = StreamBatch(model, ["cam1"], small_config())
    with pytest.raises(ValueError, match="unknown streams"):
        batch.push({"cam9": stream(1)[0]})
