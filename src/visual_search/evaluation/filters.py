"""The category filter of a search: none, the query's true category (oracle) or a predicted one.

Predictions come from a classifier on the query embedding: the category head a fine-tuned encoder was
trained with, zero-shot from the category names when the encoder has a text tower (CLIP), otherwise the
nearest category centroid of the labelled gallery.
"""

from __future__ import annotations

import numpy as np
import torch

from visual_search.encoders.base import Encoder
from visual_search.errors import UserError

FILTERS = ("none", "oracle", "predicted")
CLASSIFIERS = ("auto", "head", "zero_shot", "centroid")


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def nearest_centroid(reference: np.ndarray, reference_labels: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """Label of the closest (cosine) per-label mean of the unit-normalised reference embeddings."""
    labels = np.unique(reference_labels)
    reference = _unit(reference)
    centroids = _unit(np.stack([reference[reference_labels == label].mean(0) for label in labels]))
    return labels[np.argmax(_unit(queries) @ centroids.T, axis=1)]


@torch.inference_mode()
def zero_shot(encoder: Encoder, class_names: list[str], template: str, queries: np.ndarray) -> np.ndarray:
    """Index into `class_names` of the best-matching text prompt for each query embedding."""
    if not encoder.has_text_tower:
        raise UserError(
            f"classifier.method=zero_shot needs an encoder with a text tower (encoder=clip), "
            f"not {type(encoder).__name__}; use classifier.method=centroid"
        )
    prompts = [template.format(name.replace("_", " ")) for name in class_names]
    text = encoder.encode_text(prompts).float().numpy()
    return np.argmax(_unit(queries) @ _unit(text).T, axis=1)


def has_head(encoder: Encoder) -> bool:
    """True for a fine-tuned encoder whose training objective has a category head."""
    return bool(getattr(encoder, "can_classify", False))


def head(encoder: Encoder, class_names: list[str], queries: np.ndarray) -> np.ndarray:
    """Index into `class_names` of the category the encoder's trained head predicts for each query."""
    if not has_head(encoder):
        raise UserError("classifier.method=head needs a fine-tuned checkpoint trained with a category head")
    lookup = {name: i for i, name in enumerate(class_names)}
    unknown = sorted(set(encoder.class_names) - set(lookup))
    if unknown:
        raise UserError(f"the checkpoint's categories are not this dataset's (e.g. {unknown[:3]})")
    return np.array([lookup[encoder.class_names[i]] for i in encoder.classify(queries)], dtype=np.int64)


def resolve_classifier(method: str, encoder: Encoder) -> str:
    """`auto` picks the trained head when there is one, else zero-shot for encoders with a text tower,
    else the centroid classifier."""
    if method not in CLASSIFIERS:
        raise UserError(f"classifier.method={method!r}; choose one of {', '.join(CLASSIFIERS)}")
    if method == "auto":
        return "head" if has_head(encoder) else "zero_shot" if encoder.has_text_tower else "centroid"
    return method


def predict_labels(
    method: str,
    encoder: Encoder,
    class_names: list[str],
    template: str,
    gallery: np.ndarray,
    gallery_labels: np.ndarray,
    queries: np.ndarray,
) -> np.ndarray:
    """Predicted class index of each query embedding with the resolved `method`."""
    if method == "head":
        return head(encoder, class_names, queries)
    if method == "zero_shot":
        return zero_shot(encoder, class_names, template, queries)
    return nearest_centroid(gallery, gallery_labels, queries)
