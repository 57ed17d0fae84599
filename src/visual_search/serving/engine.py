"""The model behind the server: embeds query images in batches (or text) and searches the gallery's
Milvus collection, optionally within a given or predicted category (see load.py for how it is built)."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from visual_search.data.images import ImageLoadError, load_rgb
from visual_search.data.transforms import eval_transform
from visual_search.encoders.base import Encoder
from visual_search.evaluation import filters
from visual_search.index.milvus import MilvusIndex
from visual_search.serving.errors import Unprocessable
from visual_search.serving.gallery import Gallery
from visual_search.serving.regions import QueryCropper

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ImageQuery:
    """One preprocessed query image and how to search with it."""

    pixels: Tensor  # (3, H, W), the encoder's preprocessing applied
    k: int
    category: str | None = None  # search only this label value
    predict_category: bool = False  # search only the predicted category


@dataclass(frozen=True)
class Hits:
    """A query's results: gallery rows, raw distances and scores (higher is better), best first."""

    rows: list[int]
    distances: list[float]
    scores: list[float]
    category: str | None  # the label value searched within (given or predicted)
    embed_s: float  # the encoder forward of the query's batch
    search_s: float  # the index search of the query's batch


def scores(distances: np.ndarray, metric: str) -> np.ndarray:
    """Similarity from Milvus distances: cosine for unit vectors under L2 (1 - d/2), the metric itself
    for IP and COSINE."""
    return 1.0 - distances / 2.0 if metric == "L2" else distances


@dataclass(frozen=True)
class CategoryClassifier:
    """Predicts a query's category (one of `labels`): the fine-tuned encoder's category head (`head`), or
    the nearest reference, one per label: text prompts of the category names (`zero_shot`) or the label
    centroids of the indexed vectors (`centroid`, in index space)."""

    method: str
    encoder: Encoder
    labels: list[str]
    references: np.ndarray | None = None

    def predict(self, embeddings: np.ndarray, index: MilvusIndex) -> list[str]:
        if self.method == "head":
            positions = filters.head(self.encoder, self.labels, embeddings)
        else:
            queries = embeddings if self.method == "zero_shot" else index.transform(embeddings)
            positions = filters.nearest_centroid(self.references, np.arange(len(self.labels)), queries)
        return [self.labels[i] for i in positions]


class SearchEngine:
    """Embeds query images (in batches) or text and searches the gallery; all model work runs on the
    caller's thread, which the server keeps to one (the micro-batcher's model thread)."""

    def __init__(
        self,
        encoder: Encoder,
        index: MilvusIndex,
        gallery: Gallery,
        classifier: CategoryClassifier,
        cropper: QueryCropper,
        info: dict[str, object],
    ) -> None:
        self.encoder, self.index, self.gallery = encoder, index, gallery
        self.classifier, self.cropper, self.info = classifier, cropper, info
        self.transform = eval_transform(encoder.preprocess)

    @property
    def has_text_tower(self) -> bool:
        return self.encoder.has_text_tower

    def preprocess(self, image: Image.Image) -> Tensor:
        """The encoder's input for an RGB image (resize, centre crop, normalise)."""
        return self.transform(image)

    @torch.inference_mode()
    def search_images(self, queries: list[ImageQuery]) -> list[Hits]:
        """One encoder forward and one index search for a batch of queries."""
        start = time.perf_counter()
        embeddings = self.encoder(torch.stack([q.pixels for q in queries])).float().numpy()
        embedded = time.perf_counter()
        categories = [q.category for q in queries]
        asked = [i for i, q in enumerate(queries) if q.predict_category]
        if asked:
            for i, label in zip(asked, self.classifier.predict(embeddings[asked], self.index), strict=True):
                categories[i] = label
        found = self._search(embeddings, max(q.k for q in queries), categories)
        searched = time.perf_counter()
        return [
            Hits(rows[: q.k], dists[: q.k], sims[: q.k], category, embedded - start, searched - embedded)
            for q, category, (rows, dists, sims) in zip(queries, categories, found, strict=True)
        ]

    @torch.inference_mode()
    def search_text(self, text: str, k: int, category: str | None) -> Hits:
        """Search the gallery with a text query (encoders with a text tower only)."""
        if not self.has_text_tower:
            raise Unprocessable(
                f"this model ({self.info['approach']}) has no text tower: text search needs CLIP"
            )
        start = time.perf_counter()
        embedding = self.encoder.encode_text([text]).float().numpy()
        embedded = time.perf_counter()
        ((rows, distances, sims),) = self._search(embedding, k, [category])
        return Hits(rows, distances, sims, category, embedded - start, time.perf_counter() - embedded)

    def _search(
        self, embeddings: np.ndarray, k: int, categories: list[str | None]
    ) -> list[tuple[list[int], list[float], list[float]]]:
        result = self.index.search(embeddings, k, categories)
        similarity = scores(result.distances, self.index.metric)
        found = result.rows >= 0
        return [
            (rows[ok].tolist(), dists[ok].tolist(), sims[ok].tolist())
            for rows, dists, sims, ok in zip(result.rows, result.distances, similarity, found, strict=True)
        ]

    def self_check(self, crop_gallery: bool) -> None:
        """Search with the first indexed item once, as requests would (with a predicted category too),
        so a classifier that cannot work fails at start-up; warn when the encoder does not reproduce its
        indexed vector (the image cropped by the detector when `crop_gallery`, as the run indexed it): a
        different model than the one the collection was built with."""
        try:
            image = load_rgb(self.gallery.items.loc[self.gallery.row_ids[0], "image"])
        except ImageLoadError:
            return
        pixels = self.preprocess(self.cropper(image).image if crop_gallery else image)
        hits, _ = self.search_images(
            [ImageQuery(pixels, k=1), ImageQuery(pixels, k=1, predict_category=True)]
        )
        if hits.rows[:1] != [0] or hits.distances[0] > 1e-3:
            log.warning(
                "the served encoder does not reproduce the indexed vectors (first item's nearest: %s): "
                "re-run evaluate.py with this model", hits.rows[:1],
            )  # fmt: skip

    def close(self) -> None:
        self.index.close()
