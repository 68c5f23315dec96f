"""Object features in the text-embedding space: the loss that pulls an image/clip feature onto the embedding of its
object's name (method-notes 8.1/8.2), and snapping a feature to the nearest object name."""

import torch
import torch.nn.functional as F

# Contrastive temperature of the paper (cosine / 0.07), as in CLIP.
DEFAULT_TEMPERATURE = 0.07


def object_feature_loss(features, object_index, label_embeddings, temperature=DEFAULT_TEMPERATURE):
    """code loss (L2 to the GT name's embedding) + cross-entropy over the taxonomy of cos(feature, name) / temperature.

    features: (B, D). object_index: (B,) long, -1 where the object is unknown (ignored).
    label_embeddings: (L, D) text embeddings of the taxonomy (L2-normalised by the text encoder).
    Returns (code_loss, contrastive_loss), each a scalar; zero (with grad) when no sample has a known object.
    """
    if features.ndim != 2 or label_embeddings.ndim != 2 or features.shape[1] != label_embeddings.shape[1]:
        raise ValueError(
            f"features (B, D) and label_embeddings (L, D) must share D, got {tuple(features.shape)} and "
            f"{tuple(label_embeddings.shape)}"
        )
    known = object_index >= 0
    if not known.any():
        zero = features.sum() * 0.0
        return zero, zero
    feats = features[known]
    target = object_index[known]
    code_loss = F.mse_loss(feats, label_embeddings[target])
    logits = F.normalize(feats, dim=-1) @ F.normalize(label_embeddings, dim=-1).T / temperature
    return code_loss, F.cross_entropy(logits, target)


def nearest_label_index(features, label_embeddings):
    """(..., D) features -> (...) index of the most cosine-similar label embedding."""
    return (F.normalize(features, dim=-1) @ F.normalize(label_embeddings, dim=-1).T).argmax(dim=-1)


def label_embedding_tensor(label_embeddings):
    """Accept a numpy array or tensor of (L, D) label embeddings and return a float32 tensor."""
    embeddings = torch.as_tensor(label_embeddings, dtype=torch.float32)
    if embeddings.ndim != 2 or len(embeddings) == 0:
        raise ValueError(f"label embeddings must be a non-empty (L, D) array, got shape {tuple(embeddings.shape)}")
    return embeddings
