import pytest
import torch
from model_batches import TINY, pose_batch

from ghtt_core.config import FlattenedConfig, preset
from ghtt_core.flattened import FlattenedInputs, FlattenedModel

TEXT_DIM = 12


def tiny_model(**overrides):
    torch.manual_seed(0)
    return FlattenedModel(FlattenedConfig(transformer=TINY, text_dim=TEXT_DIM, **overrides))


def inputs_and_targets(batch=2, seed=0):
    data = pose_batch(batch=batch, seed=seed)
    observed, observed_mask, observed_valid = data.observed()
    future, future_mask, future_valid = data.future()
    inputs = FlattenedInputs(
        features=observed,
        feature_mask=observed_mask,
        frame_valid=observed_valid,
        phase=torch.arange(16).expand(batch, -1).clone(),
        object_embeddings=torch.randn(batch, 16, TEXT_DIM, generator=torch.Generator().manual_seed(seed)),
    )
    targets = dict(
        observed=observed,
        observed_mask=observed_mask,
        future=future,
        future_mask=future_mask,
        future_frame_valid=future_valid,
        future_local2base=data.future_local2base,
        future_local2base_mask=data.future_local2base_mask,
    )
    return inputs, torch.arange(16, 32).expand(batch, -1).clone(), targets


def test_shapes_and_padded_frames_are_ignored():
    model = tiny_model().eval()
    inputs, future_phase, _ = inputs_and_targets()
    output = model(inputs, future_phase)
    assert output.used_skip  # always at test
    assert output.predicted.shape == (2, 16, 153) and output.refined.shape == (2, 16, 153)
    assert output.mu.shape == (2, 32)
    valid = inputs.frame_valid.clone()
    valid[0, 12:] = False
    masked = FlattenedInputs(inputs.features, inputs.feature_mask, valid, inputs.phase, inputs.object_embeddings)
    junk_features = inputs.features.clone()
    junk_features[0, 12:] = 7.0
    junk = FlattenedInputs(junk_features, inputs.feature_mask, valid, inputs.phase, inputs.object_embeddings)
    torch.testing.assert_close(model(masked, future_phase).predicted, model(junk, future_phase).predicted)


def test_tiny_overfit_and_recognition():
    model = tiny_model().train()
    inputs, future_phase, targets = inputs_and_targets(batch=3, seed=1)
    label_embeddings = torch.randn(2, TEXT_DIM)
    labels = torch.tensor([1, 0, 1])
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    totals = []
    for _ in range(40):
        terms = model.loss(model(inputs, future_phase), inputs, label_embeddings=label_embeddings, labels=labels,
                           **targets)
        optimiser.zero_grad()
        terms["total"].backward()
        optimiser.step()
        totals.append(terms["total"].item())
    assert set(terms) == {"obs", "pred", "trj", "dist", "con", "kl", "total"}
    assert totals[-1] < 0.5 * totals[0]
    scores, indices = model.eval().recognize(inputs, label_embeddings, k=2)
    assert indices[:, 0].tolist() == labels.tolist()
    assert (scores[:, 0] >= scores[:, 1]).all()


def test_predict_samples_use_factor_ten():
    model = tiny_model().eval()
    inputs, future_phase, _ = inputs_and_targets()
    samples = model.predict(inputs, future_phase, num_samples=3, generator=torch.Generator().manual_seed(0))
    assert samples.shape == (2, 3, 16, 153)
    torch.testing.assert_close(samples[:, 0], model(inputs, future_phase).predicted)
    assert not torch.allclose(samples[:, 1], samples[:, 2])
    # The default temperature is the config's factor 10.
    explicit = model.predict(inputs, future_phase, num_samples=3, temperature=10.0,
                             generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(samples, explicit)
    assert model.cfg.sample_factor == preset("paper").flattened.sample_factor == 10.0


def test_too_many_future_frames_raise():
    model = tiny_model(max_pred_frames=8).eval()
    inputs, future_phase, _ = inputs_and_targets()
    with pytest.raises(ValueError, match="at most 8 future frames"):
        model(inputs, future_phase)
