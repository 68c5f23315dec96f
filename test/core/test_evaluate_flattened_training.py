import numpy as np
import torch
from model_batches import TINY
from test_evaluate_protocols import TAXONOMY, frame_coded_sequence

from ghtt_core.config import FlattenedConfig
from ghtt_core.evaluate.fitting import FitOptions
from ghtt_core.evaluate.flattened_training import train_flattened
from ghtt_core.evaluate.protocols import FlattenedPredictor, evaluate_prediction, prediction_windows
from ghtt_core.flattened import FlattenedModel

TEXT_DIM = 8


def embeddings(count, seed):
    return torch.nn.functional.normalize(torch.randn(count, TEXT_DIM, generator=torch.Generator().manual_seed(seed)),
                                         dim=-1)


def test_flattened_training_lowers_the_loss_and_the_predictor_samples_around_the_deterministic_pass():
    windows = prediction_windows([frame_coded_sequence(num_frames=160, action=(0, 150))], TAXONOMY,
                                 min_remaining_frames=17, stride=8)
    torch.manual_seed(0)
    model = FlattenedModel(FlattenedConfig(transformer=TINY, text_dim=TEXT_DIM))
    actions, objects = embeddings(2, 1), embeddings(2, 2)
    losses = train_flattened(model, windows, actions, objects, FitOptions(steps=40, batch_size=8,
                                                                          learning_rate=3e-3))
    assert len(losses) == 40 and np.mean(losses[-5:]) < 0.7 * np.mean(losses[:5])

    predictor = FlattenedPredictor(model, objects, temperature=10.0)
    test = windows.select(slice(0, 4))
    first = predictor.predict(test, 3, torch.Generator().manual_seed(0))
    second = predictor.predict(test, 3, torch.Generator().manual_seed(1))
    assert first.joints.shape == (4, 3, 96, 2, 21, 3) and first.hand_present.all()
    assert torch.equal(first.joints[:, 0], second.joints[:, 0])  # sample 0 decodes the mean
    assert not torch.allclose(first.joints[:, 1], second.joints[:, 1])
    record = evaluate_prediction(predictor, test, num_random_samples=3)
    assert (record.apd > 0).all() and torch.isfinite(record.deterministic_ade).all()
