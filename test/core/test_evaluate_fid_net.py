import numpy as np
import pytest
import torch
from model_batches import TINY, moving_hands

from ghtt_core.data.sequence import ActionSegment, HandSequence
from ghtt_core.evaluate.fid_net import (
    FIDNet,
    FIDNetConfig,
    FIDTrainingOptions,
    LabelledSequences,
    action_sequences,
    fid_preset,
    load_fid_net,
    recognition_accuracy,
    save_fid_net,
    train_fid_net,
)
from ghtt_core.taxonomy import ActionLabel, Taxonomy

TEXT_DIM = 8


def tiny_net(seed=0):
    torch.manual_seed(seed)
    return FIDNet(FIDNetConfig(transformer=TINY, max_frames=24, text_dim=TEXT_DIM))


def tiny_dataset(num=6, frames=12):
    joints = moving_hands(num, frames, seed=1)
    presence = torch.ones(num, frames, 2, dtype=torch.bool)
    presence[0, :, 0] = False
    frame_valid = torch.arange(frames) < torch.tensor([frames, frames - 3, frames, 5, frames, 9])[:num, None]
    labels = torch.arange(num) % 3
    return LabelledSequences(joints, presence, frame_valid, labels)


def label_embeddings():
    return torch.nn.functional.normalize(torch.randn(3, TEXT_DIM, generator=torch.Generator().manual_seed(2)), dim=-1)


def test_features_have_the_model_width_and_ignore_padding_and_absent_hands():
    net = tiny_net()
    data = tiny_dataset()
    features = net.extract_features(data.joints, data.presence, data.frame_valid)
    assert features.shape == (6, 32) and torch.isfinite(features).all()

    padded_joints = torch.cat([data.joints, torch.full((6, 5, 2, 21, 3), float("nan"))], dim=1)
    padded_presence = torch.cat([data.presence, torch.ones(6, 5, 2, dtype=torch.bool)], dim=1)
    padded_valid = torch.cat([data.frame_valid, torch.zeros(6, 5, dtype=torch.bool)], dim=1)
    padded_joints[:, :12][~data.frame_valid] = 7.0  # garbage in the frames that were already padding
    padded_joints[0, :, 0] = float("nan")  # the absent left hand of sequence 0
    assert torch.allclose(net.extract_features(padded_joints, padded_presence, padded_valid), features, atol=1e-5)

    shorter = net.extract_features(data.joints[3:4, :5], data.presence[3:4, :5])
    assert torch.allclose(shorter, features[3:4], atol=1e-5)


def test_sequences_longer_than_the_capacity_are_refused():
    net = tiny_net()
    with pytest.raises(ValueError, match="at most 24 frames"):
        net.extract_features(moving_hands(1, 25), torch.ones(1, 25, 2, dtype=torch.bool))


def test_training_reduces_the_loss_and_reports_accuracy():
    net = tiny_net()
    data = tiny_dataset()
    losses = []
    report = train_fid_net(net, data, label_embeddings(), FIDTrainingOptions(epochs=12, batch_size=3,
                                                                             learning_rate=3e-3),
                           val=data, on_epoch=lambda epoch, loss: losses.append(loss))
    assert losses == report.epoch_losses and len(losses) == 12
    assert losses[-1] < 0.7 * losses[0]
    assert report.train_accuracy == report.val_accuracy
    assert report.train_accuracy > 0.5  # 3 classes: chance is 1/3
    assert report.train_accuracy == recognition_accuracy(net, data, label_embeddings())


def test_save_and_load_round_trip(tmp_path):
    net = tiny_net()
    data = tiny_dataset()
    path = tmp_path / "fid.pt"
    save_fid_net(path, net, ["a", "b", "c"], label_embeddings(), {"train": 0.5})
    stored = load_fid_net(path)
    assert stored.action_labels == ["a", "b", "c"] and stored.accuracy == {"train": 0.5}
    assert torch.equal(stored.label_embeddings, label_embeddings())
    assert torch.allclose(stored.model.extract_features(data.joints, data.presence, data.frame_valid),
                          net.extract_features(data.joints, data.presence, data.frame_valid))


def test_action_windows_are_cut_padded_and_labelled():
    joints = moving_hands(1, 30)[0].numpy()
    sequence = HandSequence("s", joints, np.ones((30, 2), dtype=bool), actions=[
        ActionSegment(2, 12, "open jar", "open", "jar"), ActionSegment(15, 20, "grab cup", "grab", "cup")])
    taxonomy = Taxonomy((ActionLabel("grab cup", "grab", "cup"), ActionLabel("open jar", "open", "jar")),
                        ("cup", "jar"))
    windows = action_sequences([sequence], taxonomy, max_frames=6)
    assert windows.labels.tolist() == [1, 1, 0]
    assert windows.frame_valid.sum(dim=1).tolist() == [6, 4, 5]
    assert torch.equal(windows.joints[1, :4], torch.from_numpy(joints[8:12]))
    assert torch.equal(windows.joints[1, 4:], torch.from_numpy(joints[11]).expand(2, 2, 21, 3))
    assert not windows.presence[1, 4:].any()


def test_presets():
    assert fid_preset("paper").transformer.n_enc_layers == 9
    assert fid_preset("paper", text_dim=512).text_dim == 512
    assert fid_preset("small").transformer.d_model == 128
