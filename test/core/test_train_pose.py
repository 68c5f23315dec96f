import math

import torch

from ghtt_core import geometry
from ghtt_core.checkpoint import load_checkpoint
from ghtt_core.pose_block import PoseBlock
from ghtt_core.train.loop import LoopOptions
from ghtt_core.train.metrics_log import read_metrics
from ghtt_core.train.pose import InputNoise, PoseTrainingOptions, PoseTrainingStep, add_input_noise, train_pose
from model_batches import pose_batch
from training_data import WindowList, tiny_config


def _stack(dataset):
    return {key: torch.stack([item[key] for item in dataset.items]) for key in dataset.items[0]}


def _eval_loss(pose_block, dataset):
    step = PoseTrainingStep(pose_block, None, use_estimated_input=True).eval()
    with torch.no_grad():
        return float(step(_stack(dataset))["total"])


def _options(steps, **loop):
    loop = {"lr": 2e-3, "batch_size": 8, "steps": steps, "seed": 3, "checkpoint_every": 1000, "val_every": 1000,
            "log_every": 1, **loop}
    return PoseTrainingOptions(loop=LoopOptions(**loop))


def test_training_reduces_the_loss(tmp_path):
    config = tiny_config()
    train, val = WindowList(32, seed=0, with_estimate=True), WindowList(8, seed=1, with_estimate=True)
    torch.manual_seed(3)
    before = _eval_loss(PoseBlock(config.pose), val)

    result = train_pose(config, train, val, _options(40, val_every=20), tmp_path / "pose.pt",
                        log_path=tmp_path / "log.jsonl", device="cpu", progress=False)
    loaded = load_checkpoint(tmp_path / "pose.pt")
    after = _eval_loss(loaded.pose_block, val)

    assert result.step == 40 and loaded.training.step == 40
    assert after < 0.6 * before
    rows = read_metrics(tmp_path / "log.jsonl")
    val_rows = [row for row in rows if row["split"] == "val"]
    assert [row["step"] for row in val_rows] == [20, 40]
    assert abs(val_rows[-1]["total"] - after) < 1e-4  # the logged val loss is the eval-mode loss on val
    assert {"obs", "pred", "trj", "kl", "total"} <= set(rows[0])


def test_resume_continues_from_the_saved_step(tmp_path):
    config = tiny_config()
    train = WindowList(24, seed=0)
    train_pose(config, train, None, _options(8), tmp_path / "straight.pt", device="cpu", progress=False)

    train_pose(config, train, None, _options(5), tmp_path / "resumed.pt", log_path=tmp_path / "log.jsonl",
               device="cpu", progress=False)
    assert load_checkpoint(tmp_path / "resumed.pt").training.step == 5
    result = train_pose(config, train, None, _options(8), tmp_path / "resumed.pt", log_path=tmp_path / "log.jsonl",
                        resume_path=tmp_path / "resumed.pt", device="cpu", progress=False)

    assert result.step == 8 and result.epoch == 2  # 3 batches per epoch: the resumed run crossed into epoch 2
    rows = read_metrics(tmp_path / "log.jsonl")
    assert [row["step"] for row in rows if row["split"] == "train"] == list(range(1, 9))
    assert [(row["split"], row["step"]) for row in rows if row["split"] != "train"] == [("resume", 5)]
    straight = load_checkpoint(tmp_path / "straight.pt").pose_block.state_dict()
    resumed = load_checkpoint(tmp_path / "resumed.pt").pose_block.state_dict()
    for name in straight:
        assert torch.allclose(straight[name], resumed[name], atol=1e-6), name


def test_input_noise_has_the_configured_spread():
    torch.manual_seed(0)
    features = pose_batch(batch=64).features[:, :16].double()
    noise = InputNoise()
    noisy = add_input_noise(features, noise)

    joint_std = float((noisy[..., :126] - features[..., :126]).std())
    assert abs(joint_std - noise.joints_sigma) < 0.1 * noise.joints_sigma

    def rotation_angles(slot):
        R = geometry.rotation_6d_to_matrix(features[..., slot:slot + 6])
        R_noisy = geometry.rotation_6d_to_matrix(noisy[..., slot:slot + 6])
        return geometry.matrix_to_axis_angle(R.transpose(-1, -2) @ R_noisy).norm(dim=-1)

    # |N(0, s^2)| has mean s sqrt(2/pi)
    for slot, sigma in ((126, noise.velocity_rotation_sigma), (144, noise.left_to_right_rotation_sigma)):
        assert abs(float(rotation_angles(slot).mean()) - sigma * math.sqrt(2 / math.pi)) < 0.1 * sigma
    translation_std = float((noisy[..., 132:135] - features[..., 132:135]).std())
    assert abs(translation_std - noise.velocity_translation_sigma) < 0.15 * noise.velocity_translation_sigma
    l2r_std = float((noisy[..., 150:153] - features[..., 150:153]).std())
    assert abs(l2r_std - noise.left_to_right_translation_sigma) < 0.15 * noise.left_to_right_translation_sigma


def test_estimated_input_feeds_the_encoder_and_truth_stays_the_target():
    torch.manual_seed(0)
    block = PoseBlock(tiny_config().pose).eval()
    batch = _stack(WindowList(4, with_estimate=True))
    with torch.no_grad():
        from_estimate = PoseTrainingStep(block, None, use_estimated_input=True)(batch)
        from_truth = PoseTrainingStep(block, None, use_estimated_input=False)(batch)
        truth_as_estimate = PoseTrainingStep(block, None, use_estimated_input=True)(
            {**batch, "estimated_joints": batch["joints"]})
    assert not torch.isclose(from_estimate["obs"], from_truth["obs"])
    assert torch.allclose(truth_as_estimate["total"], from_truth["total"])


def test_training_with_a_hand_often_absent_stays_finite(tmp_path):
    train = WindowList(16, seed=0, absent_left_every=3)
    result = train_pose(tiny_config(), train, None, _options(4), tmp_path / "pose.pt", device="cpu", progress=False)
    assert all(math.isfinite(value) for value in result.last_train.values())


def test_a_window_without_any_observed_hand_counts_in_no_loss():
    torch.manual_seed(0)
    block = PoseBlock(tiny_config().pose).eval()
    batch = _stack(WindowList(3))
    step = PoseTrainingStep(block, None, use_estimated_input=False)
    with torch.no_grad():
        reference = step({key: value[:2] for key, value in batch.items()})
        batch["presence"][2, :16] = False  # nothing observed in window 2
        with_empty = step(batch)
    for name in ("obs", "pred", "trj"):
        assert torch.allclose(with_empty[name], reference[name], atol=1e-6), name
