import numpy as np
import torch
from test_evaluate_protocols import TAXONOMY, frame_coded_sequence

from ghtt_core.config import TransformerConfig
from ghtt_core.evaluate.fitting import FitOptions
from ghtt_core.evaluate.htt_baseline import HTTBaseline, HTTBaselineConfig, HTTRecognizer, clip_features, \
    train_htt_baseline
from ghtt_core.evaluate.protocols import recognition_sequences, recognize_all

SMALL = TransformerConfig(d_model=32, n_heads=2, d_ff=64, n_enc_layers=1, n_dec_layers=1)


def two_action_sequences():
    """'open jar': open hands translating along x; 'pour cup': still hands with the fingertips pulled halfway to the
    wrist. 40-frame actions, 3 clips."""
    moving = [frame_coded_sequence(action=(s, s + 40)) for s in (0, 20, 40)]
    still = []
    for s in (0, 20, 40):
        sequence = frame_coded_sequence(action=(s, s + 40), label="pour cup", noun="cup")
        sequence.joints[:] = sequence.joints[0]
        wrists = sequence.joints[:, :, :1]
        tips = [4, 8, 12, 16, 20]
        sequence.joints[:, :, tips] = wrists + 0.5 * (sequence.joints[:, :, tips] - wrists)
        still.append(sequence)
    return recognition_sequences(moving + still, TAXONOMY)


def test_padding_clips_and_frames_do_not_change_the_action_feature():
    torch.manual_seed(0)
    model = HTTBaseline(HTTBaselineConfig(transformer=SMALL, text_dim=8)).eval()
    sequences = two_action_sequences()
    features, mask, valid = clip_features(sequences.select([0]))
    padded = [torch.cat([part, part[:, -1:]], dim=1) for part in (features, mask, valid)]
    padded[2][:, -1] = False
    padded[0][:, -1] = 7.0  # anything in a padded clip
    with torch.no_grad():
        assert torch.allclose(model(features, mask, valid), model(*padded), atol=1e-5)


def test_training_with_the_text_alignment_loss_separates_two_actions():
    sequences = two_action_sequences()
    embeddings = torch.nn.functional.normalize(torch.randn(2, 8, generator=torch.Generator().manual_seed(1)), dim=-1)
    torch.manual_seed(0)
    model = HTTBaseline(HTTBaselineConfig(transformer=SMALL, text_dim=8))
    losses = train_htt_baseline(model, sequences, embeddings, FitOptions(steps=60, batch_size=6, learning_rate=3e-3))
    assert np.mean(losses[-5:]) < 0.7 * np.mean(losses[:5])
    predicted = recognize_all(HTTRecognizer(model, embeddings), sequences, batch_size=4)
    assert torch.equal(predicted, sequences.labels)
