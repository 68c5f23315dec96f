"""The transformer layers against a straightforward reference, and the shipped model against pinned outputs.

ghtt_core.nn computes attention with F.scaled_dot_product_attention, projects the positional codes once per position,
runs queries shared by a batch once until the first cross-attention and short-cuts a single memory token. None of
this may change a result: the reference below is the layer as first written, on nn.MultiheadAttention with the same
state dict, and pinned_outputs.json holds the shipped model's outputs computed by that first version (commit 6d73e42).
"""

import json
from pathlib import Path

import pytest
import torch
from model_batches import moving_hands
from torch import nn

from ghtt_core.checkpoint import load_checkpoint
from ghtt_core.config import TransformerConfig
from ghtt_core.inference import GHTTInference
from ghtt_core.nn import DecoderLayer, EncoderLayer, FeedForward

CONFIG = TransformerConfig(d_model=32, n_heads=4, d_ff=48, n_enc_layers=1, n_dec_layers=1)
SHIPPED = Path(__file__).resolve().parents[2] / "ghtt_core" / "assets" / "ghtt_small.pt"
PINNED = Path(__file__).with_name("pinned_outputs.json")
TOLERANCE = dict(rtol=0.0, atol=1e-5)


class ReferenceEncoderLayer(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.norm_attn = nn.LayerNorm(cfg.d_model)
        self.self_attn = nn.MultiheadAttention(cfg.d_model, cfg.n_heads, batch_first=True)
        self.norm_ff = nn.LayerNorm(cfg.d_model)
        self.feed_forward = FeedForward(cfg.d_model, cfg.d_ff, cfg.activation)

    def forward(self, x, pos, valid=None):
        h = self.norm_attn(x)
        padding = None if valid is None else ~valid
        x = x + self.self_attn(h + pos, h + pos, h, key_padding_mask=padding, need_weights=False)[0]
        return x + self.feed_forward(self.norm_ff(x))


class ReferenceDecoderLayer(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.norm_self = nn.LayerNorm(cfg.d_model)
        self.self_attn = nn.MultiheadAttention(cfg.d_model, cfg.n_heads, batch_first=True)
        self.norm_cross = nn.LayerNorm(cfg.d_model)
        self.cross_attn = nn.MultiheadAttention(cfg.d_model, cfg.n_heads, batch_first=True)
        self.norm_ff = nn.LayerNorm(cfg.d_model)
        self.feed_forward = FeedForward(cfg.d_model, cfg.d_ff, cfg.activation)

    def forward(self, x, pos, memory, memory_pos, valid=None, memory_valid=None):
        h = self.norm_self(x)
        padding = None if valid is None else ~valid
        x = x + self.self_attn(h + pos, h + pos, h, key_padding_mask=padding, need_weights=False)[0]
        h = self.norm_cross(x)
        padding = None if memory_valid is None else ~memory_valid
        x = x + self.cross_attn(h + pos, memory + memory_pos, memory, key_padding_mask=padding,
                                need_weights=False)[0]
        return x + self.feed_forward(self.norm_ff(x))


def layer_pair(layer_class, reference_class):
    torch.manual_seed(0)
    layer = layer_class(CONFIG).eval()
    with torch.no_grad():  # non-zero biases, so that a bias applied twice or forgotten shows
        for parameter in layer.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.1)
    reference = reference_class(CONFIG).eval()
    reference.load_state_dict(layer.state_dict(), strict=True)  # the same keys as nn.MultiheadAttention's
    return layer, reference


@pytest.mark.parametrize("batch", [1, 3])
def test_encoder_layer_equals_the_reference_with_and_without_padding(batch):
    layer, reference = layer_pair(EncoderLayer, ReferenceEncoderLayer)
    x, pos = torch.randn(batch, 7, 32), torch.randn(7, 32)
    valid = torch.ones(batch, 7, dtype=torch.bool)
    valid[0, 4:] = False
    valid[-1, 1] = False
    for mask in (None, valid):
        torch.testing.assert_close(layer(x, pos, mask), reference(x, pos, mask), **TOLERANCE)
    # Codes with a leading batch dim of 1 (the object aggregator's) broadcast the same way.
    torch.testing.assert_close(layer(x, pos.unsqueeze(0), valid), reference(x, pos, valid), **TOLERANCE)


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("memory_tokens", [1, 5])
def test_decoder_layer_equals_the_reference(memory_tokens, batch):
    layer, reference = layer_pair(DecoderLayer, ReferenceDecoderLayer)
    x, pos = torch.randn(batch, 6, 32), torch.randn(6, 32)
    memory, memory_pos = torch.randn(batch, memory_tokens, 32), torch.randn(memory_tokens, 32)
    valid = torch.ones(batch, 6, dtype=torch.bool)
    valid[-1, 3:] = False
    memory_valid = torch.ones(batch, memory_tokens, dtype=torch.bool)
    memory_valid[0, 1:] = False
    for query_mask in (None, valid):
        for memory_mask in (None, memory_valid):
            expected = reference(x, pos, memory, memory_pos, query_mask, memory_mask)
            torch.testing.assert_close(layer(x, pos, memory, memory_pos, query_mask, memory_mask), expected,
                                       **TOLERANCE)
            with torch.no_grad():  # the inference short-cuts
                torch.testing.assert_close(layer(x, pos, memory, memory_pos, query_mask, memory_mask), expected,
                                           **TOLERANCE)


@pytest.mark.parametrize("memory_tokens", [1, 5])
def test_queries_shared_by_the_batch_may_come_as_one_row(memory_tokens):
    layer, reference = layer_pair(DecoderLayer, ReferenceDecoderLayer)
    queries, pos = torch.randn(1, 6, 32), torch.randn(6, 32)
    memory, memory_pos = torch.randn(4, memory_tokens, 32), torch.randn(memory_tokens, 32)
    with torch.no_grad():
        out = layer(queries, pos, memory, memory_pos)
    assert out.shape == (4, 6, 32)
    torch.testing.assert_close(out, reference(queries.expand(4, -1, -1), pos, memory, memory_pos), **TOLERANCE)


def test_shipped_model_outputs_equal_the_pinned_ones():
    """Refinement, recognition, P.b and P.a of the shipped checkpoint, seeded, as computed before the rewrite."""
    inference = GHTTInference(load_checkpoint(SHIPPED, "cpu"))
    joints = moving_hands(2, 48, 0).view(2, 3, 16, 2, 21, 3)
    observation = inference.encode_observation(joints, torch.ones(2, 3, 16, 2, dtype=torch.bool))
    pinned = {name: torch.tensor(values) for name, values in json.loads(PINNED.read_text()).items()}
    joints_pinned = [0, 20]  # wrist and little fingertip

    action_guided = inference.predict_action_guided(observation, num_samples=3, horizon_frames=96, calibrated=False,
                                                    generator=torch.Generator().manual_seed(0))
    pose_only = inference.predict_pose_only(observation, num_samples=3, horizon_frames=48, calibrated=False,
                                            generator=torch.Generator().manual_seed(0))
    refined = inference.refine_observation(observation)
    scores = inference.recognize(observation, top_k=3)
    torch.testing.assert_close(action_guided.joints[:, :, [0, 47, 95]][..., joints_pinned, :],
                               pinned["action_guided"], **TOLERANCE)
    torch.testing.assert_close(pose_only.joints[:, :, [0, 47]][..., joints_pinned, :], pinned["pose_only"],
                               **TOLERANCE)
    torch.testing.assert_close(refined.joints[:, :, [0, 15]][..., joints_pinned, :], pinned["refined"], **TOLERANCE)
    torch.testing.assert_close(scores.scores, pinned["scores"], **TOLERANCE)
    assert scores.indices.tolist() == pinned["indices"].tolist()
