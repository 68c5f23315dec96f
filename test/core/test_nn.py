import math

import pytest
import torch
from model_batches import TINY

from ghtt_core.config import TransformerConfig
from ghtt_core.nn import (
    EncoderLayer,
    SinusoidalTable,
    TransformerVAE,
    draw_latents,
    kl_to_standard_normal,
    masked_l1,
    masked_mean,
    reparameterise,
)


def test_sinusoidal_table_values_and_lookup():
    table = SinusoidalTable(8, max_len=100)
    codes = table(5)
    assert codes.shape == (5, 8)
    assert codes[3, 0] == pytest.approx(math.sin(3.0))
    assert codes[3, 1] == pytest.approx(math.cos(3.0))
    assert codes[3, 2] == pytest.approx(math.sin(3.0 / 10000 ** (2 / 8)))
    index = torch.tensor([[4, 0], [2, 2]])
    assert torch.equal(table.lookup(index), codes[index])
    with pytest.raises(ValueError, match="integers"):
        table.lookup(torch.tensor([1.0]))
    with pytest.raises(ValueError, match="positions"):
        table.lookup(torch.tensor([100]))


def test_positions_reach_queries_and_keys_but_not_values():
    torch.manual_seed(0)
    layer = EncoderLayer(TINY)
    x = torch.randn(1, 1, 32)
    # With a single key the attention weight is 1 whatever q and k are, so only the values matter.
    out_a = layer(x, torch.zeros(1, 32))
    out_b = layer(x, torch.randn(1, 32) * 5)
    torch.testing.assert_close(out_a, out_b)
    # With several keys the positions change the attention pattern.
    x = torch.randn(1, 3, 32)
    assert not torch.allclose(layer(x, torch.zeros(3, 32)), layer(x, torch.randn(3, 32) * 5))


def test_vae_padded_tokens_do_not_change_valid_outputs():
    torch.manual_seed(0)
    vae = TransformerVAE(TINY).eval()
    tokens = torch.randn(2, 5, 32)
    valid = torch.tensor([[True, True, True, False, False], [True] * 5])
    first = vae.encode(tokens, valid)
    changed = tokens.clone()
    changed[0, 3:] = torch.randn(2, 32) * 100
    second = vae.encode(changed, valid)
    torch.testing.assert_close(first.mu, second.mu)
    torch.testing.assert_close(first.logvar, second.logvar)
    torch.testing.assert_close(first.tokens[0, :3], second.tokens[0, :3])
    assert first.mu.shape == first.logvar.shape == (2, 32)
    assert first.tokens.shape == (2, 5, 32)


def test_distribution_tokens_are_never_masked():
    torch.manual_seed(0)
    vae = TransformerVAE(TINY).eval()
    encoding = vae.encode(torch.randn(1, 4, 32), torch.zeros(1, 4, dtype=torch.bool))
    assert torch.isfinite(encoding.mu).all() and torch.isfinite(encoding.logvar).all()
    # Fully masked input: the distribution tokens only see each other, so the result ignores the tokens.
    other = vae.encode(torch.randn(1, 4, 32), torch.zeros(1, 4, dtype=torch.bool))
    torch.testing.assert_close(encoding.mu, other.mu)


def test_decoder_masked_memory_is_ignored_and_queries_default_to_positions():
    torch.manual_seed(0)
    vae = TransformerVAE(TINY).eval()
    memory = torch.randn(2, 3, 32)
    memory_valid = torch.tensor([[True, True, False], [True, True, True]])
    out = vae.decode(memory, memory_valid, num_queries=4)
    assert out.shape == (2, 4, 32)
    changed = memory.clone()
    changed[0, 2] = 50.0
    torch.testing.assert_close(out[0], vae.decode(changed, memory_valid, num_queries=4)[0])
    explicit = vae.decode(memory, memory_valid, queries=vae.positions(4).expand(2, -1, -1))
    torch.testing.assert_close(out, explicit)
    with pytest.raises(ValueError, match="num_queries or queries"):
        vae.decode(memory)


def test_phase_queries_keep_first_query_valid():
    torch.manual_seed(0)
    vae = TransformerVAE(TINY).eval()
    phases = torch.tensor([[3, 4, 5]])
    out = vae.decode_latent(torch.randn(1, 32), None, None, phases, torch.zeros(1, 3, dtype=torch.bool))
    assert torch.isfinite(out).all() and out.shape == (1, 3, 32)


def test_kl_formula_known_cases():
    d = 6
    assert kl_to_standard_normal(torch.zeros(3, d), torch.zeros(3, d)).item() == pytest.approx(0.0)
    # mu = 1 everywhere, unit variance: 0.5 * sum(mu^2) = 0.5 d
    assert kl_to_standard_normal(torch.ones(3, d), torch.zeros(3, d)).item() == pytest.approx(0.5 * d)
    mu, logvar = torch.randn(4, d), torch.randn(4, d)
    reference = torch.distributions.kl_divergence(
        torch.distributions.Normal(mu, (0.5 * logvar).exp()), torch.distributions.Normal(0.0, 1.0)
    ).sum(-1).mean()
    torch.testing.assert_close(kl_to_standard_normal(mu, logvar), reference)


def test_reparameterise_temperature_scales_the_spread():
    generator = torch.Generator().manual_seed(0)
    mu = torch.full((20000, 2), 3.0)
    logvar = torch.full((20000, 2), math.log(0.25))  # std 0.5
    draws = reparameterise(mu, logvar, temperature=5.0, generator=generator)
    assert draws.mean().item() == pytest.approx(3.0, abs=0.05)
    assert draws.std().item() == pytest.approx(2.5, rel=0.03)
    torch.testing.assert_close(reparameterise(mu, logvar, temperature=0.0), mu)


def test_draw_latents_sample_zero_is_the_mean():
    mu, logvar = torch.randn(3, 4), torch.zeros(3, 4)
    latents = draw_latents(mu, logvar, num_samples=4, temperature=5.0)
    assert latents.shape == (3, 4, 4)
    torch.testing.assert_close(latents[:, 0], mu)
    assert not torch.allclose(latents[:, 1], latents[:, 2])
    with pytest.raises(ValueError, match="num_samples"):
        draw_latents(mu, logvar, 0, 1.0)


def test_masked_mean_and_l1():
    values = torch.tensor([[1.0, 2.0, 30.0], [4.0, 50.0, 6.0]])
    mask = torch.tensor([[True, True, False], [True, False, True]])
    assert masked_mean(values, mask).item() == pytest.approx((1 + 2 + 4 + 6) / 4)
    assert masked_mean(values, torch.zeros_like(mask)).item() == 0.0
    row_mask = torch.tensor([[True], [False]])  # broadcast over the last dim
    assert masked_mean(values, row_mask).item() == pytest.approx(11.0)
    assert masked_l1(values, torch.zeros_like(values), mask).item() == pytest.approx(13 / 4)


def test_bad_config_is_rejected():
    with pytest.raises(ValueError, match="divisible"):
        TransformerConfig(d_model=30, n_heads=4)
    with pytest.raises(ValueError, match="activation"):
        TransformerConfig(activation="tanh")
