"""The category classifier behind `filter=predicted`, one for evaluation and serving alike.

It predicts a query's label value from its embedding: with the category head a fine-tuned encoder was
trained with (`head`), zero-shot from the category names when the encoder has a text tower (`zero_shot`,
CLIP), or as the nearest label centroid of the indexed gallery vectors (`centroid`, in the index's space:
after any reduction, exactly the vectors searched).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from visual_search.encode.base import Encoder
from visual_search.errors import UserError

FILTERS = ("none", "oracle", "predicted")
CLASSIFIERS = ("auto", "head", "zero_shot", "centroid")


def check_filter(mode: str) -> None:
    """UserError unless `mode` is a known filter."""
    if mode not in FILTERS:
        raise UserError(f"filter={mode!r}; choose one of {', '.join(FILTERS)}")


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def centroids(reference: np.ndarray, reference_labels: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The unit-length mean of each label's unit-normalised reference vectors, one row per `labels`."""
    reference = _unit(reference)
    return _unit(np.stack([reference[reference_labels == label].mean(0) for label in labels]))


def nearest_centroid(reference: np.ndarray, reference_labels: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """Label of the closest (cosine) per-label mean of the unit-normalised reference embeddings."""
    labels = np.unique(reference_labels)
    return labels[np.argmax(_unit(queries) @ centroids(reference, reference_labels, labels).T, axis=1)]


def has_head(encoder: Encoder) -> bool:
    """True for a fine-tuned encoder with a category head."""
    return bool(getattr(encoder, "can_classify", False))


def resolve_method(method: str, encoder: Encoder) -> str:
    """`auto` picks the trained head when there is one, else zero-shot for encoders with a text tower,
    else the centroid classifier."""
    if method not in CLASSIFIERS:
        raise UserError(f"classifier.method={method!r}; choose one of {', '.join(CLASSIFIERS)}")
    if method == "auto":
        return "head" if has_head(encoder) else "zero_shot" if encoder.has_text_tower else "centroid"
    if method == "head" and not has_head(encoder):
        raise UserError("classifier.method=head needs a fine-tuned checkpoint trained with a category head")
    if method == "zero_shot" and not encoder.has_text_tower:
        raise UserError(
            f"classifier.method=zero_shot needs an encoder with a text tower (encoder=clip), "
            f"not {type(encoder).__name__}; use classifier.method=centroid"
        )
    return method


@dataclass(frozen=True)
class ClassifierSettings:
    """`method` (auto | head | zero_shot | centroid) and the zero-shot prompt `template`."""

    method: str = "auto"
    template: str = "a photo of a {}, a type of product"

    def __post_init__(self) -> None:
        if self.method not in CLASSIFIERS:
            raise UserError(f"classifier.method={self.method!r}; choose one of {', '.join(CLASSIFIERS)}")


class CategoryClassifier:
    """Predicts label values (`labels`) for query embeddings: `predict(embeddings, vectors)` takes the
    encoder's embeddings and the same queries in the index's space."""

    def __init__(
        self, method: str, labels: Sequence[str], references: np.ndarray | None, encoder: Encoder
    ) -> None:
        self.method, self.labels, self.references, self.encoder = method, list(labels), references, encoder

    @classmethod
    def build(
        cls,
        settings: ClassifierSettings,
        encoder: Encoder,
        names: dict[str, str],
        vectors: np.ndarray,
        vector_labels: Sequence[str],
    ) -> CategoryClassifier:
        """The classifier `settings` ask for. `names`: label value -> category name (zero-shot prompts);
        `vectors`: the indexed gallery vectors (index space) with their label values."""
        method = resolve_method(settings.method, encoder)
        if method == "head":
            unknown = sorted(set(encoder.class_names) - set(names))
            if unknown:
                raise UserError(f"the checkpoint's categories are not this dataset's (e.g. {unknown[:3]})")
            return cls(method, encoder.class_names, None, encoder)
        labels = sorted(set(vector_labels))
        if method == "zero_shot":
            prompts = [settings.template.format(names[label].replace("_", " ")) for label in labels]
            with torch.inference_mode():
                references = _unit(encoder.encode_text(prompts).float().numpy())
        else:
            references = centroids(vectors, np.asarray(vector_labels), np.asarray(labels))
        return cls(method, labels, references, encoder)

    def predict(self, embeddings: np.ndarray, vectors: np.ndarray) -> list[str]:
        """The label value predicted for each query (`embeddings`: the encoder's; `vectors`: the index's)."""
        if len(embeddings) == 0:
            return []
        if self.method == "head":
            positions = self.encoder.classify(embeddings)
        else:
            queries = embeddings if self.method == "zero_shot" else vectors
            positions = np.argmax(_unit(queries) @ self.references.T, axis=1)
        return [self.labels[i] for i in positions]
