"""Object features: the text-space loss, the clip-wise aggregator and the configurable object sources."""

import pytest
import torch

from ghtt_core.estimator.object_aggregator import (
    ObjectAggregator,
    ObjectAggregatorConfig,
    load_object_aggregator,
    save_object_aggregator,
)
from ghtt_core.estimator.object_embedding import nearest_label_index, object_feature_loss
from ghtt_core.estimator.object_source import (
    AggregatedObjectSource,
    LabelObjectSource,
    NoObjectSource,
    ObjectSourceConfig,
    build_object_source,
)

NAMES = ["bottle", "cup", "lid", "knife"]
SMALL = ObjectAggregatorConfig(feature_dim=32, num_heads=4, feedforward_dim=64)


def _embeddings(dim=32):
    generator = torch.Generator().manual_seed(0)
    return torch.nn.functional.normalize(torch.randn(len(NAMES), dim, generator=generator), dim=-1)


def test_object_loss_is_zero_at_the_target_and_ignores_unknown_objects():
    embeddings = _embeddings()
    code, contrastive = object_feature_loss(embeddings[[2, 0]] * 1.0, torch.tensor([2, 0]), embeddings)
    assert float(code) == pytest.approx(0.0)
    wrong_code, wrong_contrastive = object_feature_loss(embeddings[[1, 3]], torch.tensor([2, 0]), embeddings)
    assert float(wrong_code) > 0 and float(wrong_contrastive) > float(contrastive)
    features = torch.randn(2, 32, requires_grad=True)
    code, contrastive = object_feature_loss(features, torch.tensor([-1, -1]), embeddings)
    (code + contrastive).backward()
    assert float(code.detach()) == 0.0 and torch.all(features.grad == 0)
    with pytest.raises(ValueError, match="share D"):
        object_feature_loss(torch.randn(2, 8), torch.tensor([0, 1]), embeddings)


def test_aggregator_ignores_padded_frames():
    torch.manual_seed(0)
    aggregator = ObjectAggregator(SMALL).eval()
    features = torch.randn(2, 16, 32)
    valid = torch.ones(2, 16, dtype=torch.bool)
    valid[1, 10:] = False
    changed = features.clone()
    changed[1, 10:] = 100.0
    out = aggregator(features, valid)
    assert out.shape == (2, 32)
    torch.testing.assert_close(aggregator(changed, valid), out)
    assert not torch.allclose(aggregator(features), out)  # the same frames count when marked valid
    with pytest.raises(ValueError, match="at least one valid frame"):
        aggregator(features, torch.zeros(2, 16, dtype=torch.bool))
    with pytest.raises(ValueError, match="T <= 16"):
        aggregator(torch.randn(1, 17, 32))


def test_aggregator_learns_the_clip_object_and_snaps_to_its_name():
    torch.manual_seed(0)
    embeddings = _embeddings()
    labels = torch.arange(len(NAMES)).repeat(4)
    # Per-frame features: the object's embedding plus strong per-frame noise; the clip as a whole is clear.
    frames = embeddings[labels][:, None, :] + 0.8 * torch.randn(len(labels), 16, 32)
    aggregator = ObjectAggregator(SMALL)
    optimiser = torch.optim.Adam(aggregator.parameters(), lr=3e-3)
    for _ in range(60):
        code, contrastive = object_feature_loss(aggregator(frames), labels, embeddings)
        optimiser.zero_grad()
        (code + contrastive).backward()
        optimiser.step()
    aggregator.eval()
    assert torch.equal(nearest_label_index(aggregator(frames), embeddings), labels)
    assert aggregator.nearest_object(frames[:2], NAMES, embeddings) == NAMES[:2]


def test_object_sources():
    assert NoObjectSource().object_for_clip(torch.randn(16, 32)) is None
    label = LabelObjectSource(known_labels=NAMES)
    assert label.object_for_clip() is None
    label.set_label("cup")
    assert label.object_for_clip() == "cup"
    label.set_label("")
    assert label.object_for_clip() is None
    with pytest.raises(ValueError, match="not in the taxonomy"):
        label.set_label("spaceship")
    assert LabelObjectSource("spaceship").object_for_clip() == "spaceship"  # no taxonomy given: accepted


def test_aggregated_source_uses_the_checkpoint_and_reports_unknown_without_features(tmp_path):
    torch.manual_seed(0)
    embeddings = _embeddings()
    save_object_aggregator(ObjectAggregator(SMALL), tmp_path / "aggregator.pt")
    source = build_object_source(
        ObjectSourceConfig(kind="aggregator", aggregator_checkpoint=str(tmp_path / "aggregator.pt")), NAMES, embeddings
    )
    assert isinstance(source, AggregatedObjectSource)
    reference = load_object_aggregator(tmp_path / "aggregator.pt")
    features = torch.randn(20, 32)
    expected = reference.nearest_object(features[None, -16:], NAMES, embeddings)[0]
    assert source.object_for_clip(features) == expected
    assert source.object_for_clip(None) is None
    assert source.object_for_clip(features, torch.zeros(20, dtype=torch.bool)) is None


def test_object_source_config_is_validated():
    assert isinstance(build_object_source(ObjectSourceConfig()), NoObjectSource)
    assert build_object_source(ObjectSourceConfig(kind="label", label="lid"), NAMES).object_for_clip() == "lid"
    with pytest.raises(ValueError, match="must be one of"):
        ObjectSourceConfig(kind="clip")
    with pytest.raises(ValueError, match="aggregator_checkpoint"):
        ObjectSourceConfig(kind="aggregator")
    with pytest.raises(ValueError, match="not in the taxonomy"):
        build_object_source(ObjectSourceConfig(kind="label", label="spaceship"), NAMES)
