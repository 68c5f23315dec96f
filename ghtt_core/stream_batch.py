"""Several camera streams on one model: each keeps its own history and results, and the forecasts due in the same
round run as one forward pass (GHTTInference.predict_streams) instead of one per stream.

Every result is the one its stream alone gives (to float rounding; test/core/test_stream_batch.py): samples come from
each stream's own stamp-seeded generator and each forecast reuses its own stream's A-Enc. What is batched is the
costly part, the P.b's A-Dec and P-Dec over num_samples x the future clips; the P-Enc of new clips, the refinement and
the recognition stay per stream (little work, and the streams' histories differ). Pose-only and commanded-action
forecasts run per stream. A result's "predict" timing includes the shared pass.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import torch

from ghtt_core.checkpoint import ModelCheckpoint
from ghtt_core.inference import MotionForecast
from ghtt_core.pipeline import FrameInput, PendingResult, PipelineConfig, PipelineResult, StreamingPipeline


class StreamBatch:
    """Named streams (e.g. camera namespaces) with one StreamingPipeline each, on one model."""

    def __init__(self, model: ModelCheckpoint, streams: Iterable[str], config: PipelineConfig | None = None,
                 device: str | torch.device | None = None):
        names = list(streams)
        if not names or len(set(names)) != len(names):
            raise ValueError(f"StreamBatch needs one or more distinct stream names, got {names}")
        self.pipelines = {name: StreamingPipeline(model, config, device) for name in names}
        self.batched_passes = 0  # forward passes that served the forecasts of one round
        self.batched_forecasts = 0  # forecasts computed in them

    def push(self, frames: Mapping[str, FrameInput], skip_result: bool = False) -> dict[str, PipelineResult]:
        """The newest frame of each stream that has one (any subset of the streams; each stream's frames in stamp
        order) -> the results due this round, by stream. skip_result: as StreamingPipeline.push, for every stream."""
        unknown = sorted(set(frames) - set(self.pipelines))
        if unknown:
            raise ValueError(f"unknown streams {unknown}; this batch has {sorted(self.pipelines)}")
        pending = {}
        for name, frame in frames.items():
            due = self.pipelines[name].push_deferred(frame, skip_result)
            if due is not None:
                pending[name] = due
        batched = [name for name, due in pending.items() if self.pipelines[name].batched_forecast(due)]
        forecasts = self._forecasts(batched, pending) if batched else {}
        return {name: self.pipelines[name].complete(due, forecasts.get(name)) for name, due in pending.items()}

    def _forecasts(self, names: list[str], pending: dict[str, PendingResult]) -> dict[str, MotionForecast]:
        options = [self.pipelines[name].forecast_options(int(pending[name].stamps_ns[-1])) for name in names]
        generators = [option.pop("generator") for option in options]
        forecasts = self.pipelines[names[0]].inference.predict_streams(
            [pending[name].observation for name in names],
            [pending[name].object_names for name in names],
            generators,
            action_encodings=[pending[name].scores.encoding for name in names],
            **options[0],  # one config: the same for every stream but the generator
        )
        self.batched_passes += 1
        self.batched_forecasts += len(names)
        return dict(zip(names, forecasts))
