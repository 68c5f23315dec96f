import pytest
import torch

from ghtt_core.config import TextConfig
from ghtt_core.text import CachedTextEncoder, MiniLMTextEncoder, OpenClipTextEncoder, TextEncoder, build_text_encoder


class CountingEncoder(TextEncoder):
    """Deterministic stand-in that records which texts reach it."""

    encoder_id = "counting:v1"
    dim = 4

    def __init__(self):
        self.seen = []

    def encode(self, texts):
        self.seen.extend(texts)
        rows = [torch.tensor([len(text), sum(map(ord, text)) % 7, 1.0, 2.0]) for text in texts]
        return torch.nn.functional.normalize(torch.stack(rows).float(), dim=-1)


@pytest.fixture(scope="module")
def minilm():
    return build_text_encoder(TextConfig(encoder="minilm"))


def test_minilm_embeddings_are_normalised_and_semantic(minilm):
    embeddings = minilm.encode(["pour water", "pour milk", "close laptop"])
    assert embeddings.shape == (3, 384) and embeddings.dtype == torch.float32
    torch.testing.assert_close(embeddings.norm(dim=-1), torch.ones(3))
    similarity = embeddings @ embeddings.T
    assert similarity[0, 1] > similarity[0, 2] + 0.1
    assert isinstance(minilm.encoder, MiniLMTextEncoder)
    assert minilm.encode([]).shape == (0, 384)


def test_memory_and_disk_cache(tmp_path):
    inner = CountingEncoder()
    cached = CachedTextEncoder(inner, tmp_path)
    first = cached.encode(["open jar", "grab cup", "open jar"])
    assert inner.seen == ["open jar", "grab cup"]  # duplicates encoded once
    again = cached.encode(["grab cup", "open jar"])
    assert inner.seen == ["open jar", "grab cup"]  # served from memory
    torch.testing.assert_close(again, first[[1, 0]])

    fresh_inner = CountingEncoder()
    reloaded = CachedTextEncoder(fresh_inner, tmp_path)
    torch.testing.assert_close(reloaded.encode(["open jar"]), first[:1])
    assert fresh_inner.seen == []  # served from disk
    reloaded.encode(["pour tea"])
    assert fresh_inner.seen == ["pour tea"]
    with pytest.raises(ValueError, match="list of strings"):
        cached.encode("open jar")


def test_open_clip_random_weights_shapes_and_normalisation():
    encoder = OpenClipTextEncoder("ViT-B-32", random_weights=True)
    embeddings = encoder.encode(["pour milk", "close laptop"])
    assert embeddings.shape == (2, 512) and encoder.dim == 512
    torch.testing.assert_close(embeddings.norm(dim=-1), torch.ones(2))
    assert not encoder.cacheable_on_disk  # random weights must never reach a disk cache


def test_open_clip_never_downloads(tmp_path):
    missing = tmp_path / "open_clip_model.safetensors"
    with pytest.raises(ValueError, match="not found.*never downloaded"):
        OpenClipTextEncoder("ViT-B-32", missing)
    with pytest.raises(ValueError, match="weights_path"):
        OpenClipTextEncoder("ViT-B-32")
    with pytest.raises(ValueError, match="open_clip_weights"):
        build_text_encoder(TextConfig(encoder="open_clip"))
    with pytest.raises(ValueError, match="text encoder"):
        TextConfig(encoder="bert")
