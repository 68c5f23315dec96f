"""Two CPU processes (gloo) train a tiny P-Block and A-Block with DDP and end with identical weights."""

import os
import socket

import torch
import torch.multiprocessing as mp
from torch import distributed as dist

from ghtt_core.checkpoint import load_checkpoint
from ghtt_core.pose_block import PoseBlock
from ghtt_core.train.action import ActionTrainingOptions, train_action
from ghtt_core.train.loop import LoopOptions
from ghtt_core.train.pose import PoseTrainingOptions, train_pose
from training_data import WindowList, action_sequences, taxonomy_and_embeddings, tiny_config

WORLD_SIZE = 2


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _loop():
    return LoopOptions(lr=2e-3, batch_size=8, steps=4, seed=5, checkpoint_every=1000, val_every=2, log_every=1)


def _worker(rank: int, port: int, out_dir: str):
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(WORLD_SIZE), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    torch.set_num_threads(1)
    # One process group for both trainers: they use it and leave it to us.
    dist.init_process_group("gloo")
    pose = train_pose(tiny_config(), WindowList(16, seed=0), WindowList(4, seed=1), PoseTrainingOptions(loop=_loop()),
                      os.path.join(out_dir, "pose.pt"), log_path=os.path.join(out_dir, "pose.jsonl"), device="cpu",
                      progress=False)
    sequences = action_sequences(2)
    taxonomy, embeddings = taxonomy_and_embeddings(sequences)
    action = train_action(os.path.join(out_dir, "pose.pt"), sequences, sequences[:1], taxonomy, embeddings,
                          ActionTrainingOptions(loop=_loop()), os.path.join(out_dir, "model.pt"), device="cpu",
                          progress=False)
    assert dist.is_initialized()
    dist.destroy_process_group()
    torch.save({"pose": pose.module.pose_block.state_dict(), "action": action.module.action_block.state_dict(),
                "val": pose.last_val}, os.path.join(out_dir, f"rank{rank}.pt"))


def test_two_gloo_processes_end_with_identical_weights(tmp_path):
    mp.spawn(_worker, args=(_free_port(), str(tmp_path)), nprocs=WORLD_SIZE, join=True)

    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(WORLD_SIZE)]
    for block in ("pose", "action"):
        for name, value in ranks[0][block].items():
            assert torch.equal(value, ranks[1][block][name]), f"{block}.{name}"
    assert ranks[0]["val"] == ranks[1]["val"]  # validation is reduced over both shards

    torch.manual_seed(5)
    untrained = PoseBlock(tiny_config().pose).state_dict()
    assert any(not torch.equal(untrained[name], value) for name, value in ranks[0]["pose"].items())
    checkpoint = load_checkpoint(tmp_path / "model.pt", require="full")
    assert checkpoint.training.step == 4 and len(checkpoint.training.rng["per_rank"]) == WORLD_SIZE
    for name, value in checkpoint.action_block.state_dict().items():
        assert torch.equal(value, ranks[0]["action"][name]), name
    # rank 0 alone writes the log: 4 train rows and 2 validation rows
    assert len((tmp_path / "pose.jsonl").read_text().splitlines()) == 6
