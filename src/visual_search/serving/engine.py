"""The model behind the server: the served run's Pipeline, searching with query images in batches (or
with text), optionally within a given or predicted category, and the gallery it shows."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch
from omegaconf import DictConfig
from PIL import Image
from torch import Tensor

from visual_search.data.images import ImageLoadError, load_rgb
from visual_search.detect import Detections, Detector, NoDetector
from visual_search.encode.runtime import ConvertedEncoder
from visual_search.pipeline import Pipeline
from visual_search.reduce.reduction import Identity
from visual_search.serving.gallery import Gallery
from visual_search.serving.http.errors import Unprocessable
from visual_search.serving.objects import page_detector
from visual_search.serving.source import Served

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ImageQuery:
    """One preprocessed query image and how to search with it."""

    pixels: Tensor  # (3, H, W), the encoder's preprocessing applied
    k: int
    category: str | None = None  # search only this label value
    predict_category: bool = False  # search only the predicted category
    text: str | None = None  # refine with text ("in red"): models with a text tower
    text_weight: float = 0.0  # the text's share of the combined query (see `combine`)


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


def combine(images: np.ndarray, texts: np.ndarray, weight: float) -> np.ndarray:
    """Image + text queries: the unit vector along (1 - weight) * image + weight * text, each embedding
    unit length first (0: the image alone, 1: the text alone)."""
    return unit((1.0 - weight) * unit(images) + weight * unit(texts)).astype(np.float32)


def unit(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.maximum(np.linalg.norm(vectors, axis=-1, keepdims=True), 1e-12)


def open_collection(pipeline: Pipeline, collection: str | None) -> None:
    """Serve the run's `collection` as it is; index the gallery (embedded, with progress bars; an
    identical collection is reused) when it is gone or its reduction must be fitted again."""
    if collection and pipeline.attach(collection):
        return
    if collection and isinstance(pipeline.reduction, Identity):
        log.warning(
            "Milvus collection %s not found in %s: indexing the gallery again", collection, pipeline.index.uri
        )
    pipeline.index_gallery()


class SearchEngine:
    """Embeds query images (in batches) or text and searches the gallery; all model work runs on the
    caller's thread, which the server keeps to one (the micro-batcher's model thread)."""

    def __init__(
        self, pipeline: Pipeline, gallery: Gallery, info: dict[str, object], objects: Detector | None = None
    ) -> None:
        self.pipeline, self.gallery, self.info = pipeline, gallery, info
        self.objects = objects or pipeline.cropper.detector  # what POST /detect finds

    @classmethod
    def load(
        cls, served: Served, images_root: str | None = None, page: DictConfig | None = None
    ) -> SearchEngine:
        """The served run's pipeline, with its collection open, checked once (see `self_check`); the
        page's objects found by the run's detector, or by `page.detector` (see `page_detector`)."""
        cfg = served.cfg
        pl.seed_everything(cfg.seed, verbose=False)  # random-init encoders come out as evaluate.py made them
        pipeline = Pipeline.from_config(cfg)
        open_collection(pipeline, served.collection)
        log.info("serving Milvus collection %s (%s)", pipeline.index.collection, pipeline.describe())
        items, indexed = pipeline.items, pipeline.indexed
        converted = isinstance(pipeline.encoder, ConvertedEncoder)
        network = pipeline.encoder.encoder if converted else pipeline.encoder  # what was trained
        root = Path(images_root).expanduser().resolve() if images_root else items.root
        gallery = Gallery(items.items, indexed.item_ids, indexed.labels, items.category_names, root)
        info = {
            "approach": pipeline.approach,
            "source": served.source,
            "dataset": items.name,
            "encoder": type(network).__name__,
            "runtime": pipeline.encoder.runtime if network is not pipeline.encoder else "torch",
            "embed_dim": pipeline.encoder.embed_dim,
            "index": pipeline.describe(),
            "collection": pipeline.index.collection,
            "classifier": pipeline.classifier.method,
            "detector": pipeline.cropper.name,
        }
        objects = page_detector(page, pipeline.cropper.detector, items.root, cfg.get("inference"))
        info["objects"] = None if isinstance(objects, NoDetector) else objects.name
        engine = cls(pipeline, gallery, info, objects)
        engine.self_check()
        return engine

    @property
    def has_text_tower(self) -> bool:
        return self.pipeline.encoder.has_text_tower

    @property
    def detector(self) -> str | None:
        """The served run's detector; None without one."""
        return self.pipeline.cropper.name

    @torch.inference_mode()
    def search_images(self, queries: list[ImageQuery]) -> list[Hits]:
        """One encoder forward (and one text forward for those refined with text) and one index search
        for a batch of queries."""
        start = time.perf_counter()
        embeddings = self.pipeline.encode(torch.stack([q.pixels for q in queries]))
        refined = [i for i, q in enumerate(queries) if q.text]
        if refined:
            texts = self.pipeline.encode_text([queries[i].text for i in refined])
            weights = np.array([[queries[i].text_weight] for i in refined], dtype=np.float32)
            embeddings[refined] = combine(embeddings[refined], texts, weights)
        embedded = time.perf_counter()
        categories = [q.category for q in queries]
        asked = [i for i, q in enumerate(queries) if q.predict_category]
        if asked:
            for i, label in zip(asked, self.pipeline.predict_categories(embeddings[asked]), strict=True):
                categories[i] = label
        found = self._search(embeddings, max(q.k for q in queries), categories)
        searched = time.perf_counter()
        return [
            Hits(rows[: q.k], dists[: q.k], sims[: q.k], category, embedded - start, searched - embedded)
            for q, category, (rows, dists, sims) in zip(queries, categories, found, strict=True)
        ]

    def detect_images(self, images: list[Image.Image]) -> list[Detections]:
        """The objects in a batch of query images, in one batch: the run's detector, or the page's."""
        return self.objects.detect_batch(images)

    def check_text(self) -> None:
        """Unprocessable when the model cannot embed text."""
        if not self.has_text_tower:
            raise Unprocessable(
                f"this model ({self.info['approach']}) has no text tower: text search needs CLIP"
            )

    def search_like(self, item_id: str, k: int, category: str | None) -> Hits:
        """More like this: the items nearest the indexed vector of `item_id` (no image embedded), the
        item itself left out."""
        row = self.gallery.row_of(item_id)
        start = time.perf_counter()
        vector = self.pipeline.indexed.vectors[row : row + 1]
        result = self.pipeline.index.search(vector, k + 1, [category])
        similarity = scores(result.distances, self.pipeline.index.metric)[0]
        keep = (result.rows[0] >= 0) & (result.rows[0] != row)
        rows = result.rows[0][keep][:k].tolist()
        distances, sims = result.distances[0][keep][:k].tolist(), similarity[keep][:k].tolist()
        return Hits(rows, distances, sims, category, 0.0, time.perf_counter() - start)

    def search_text(self, text: str, k: int, category: str | None) -> Hits:
        """Search the gallery with a text query (encoders with a text tower only)."""
        self.check_text()
        start = time.perf_counter()
        embedding = self.pipeline.encode_text([text])
        embedded = time.perf_counter()
        ((rows, distances, sims),) = self._search(embedding, k, [category])
        return Hits(rows, distances, sims, category, embedded - start, time.perf_counter() - embedded)

    def _search(
        self, embeddings: np.ndarray, k: int, categories: list[str | None]
    ) -> list[tuple[list[int], list[float], list[float]]]:
        result = self.pipeline.search(embeddings, k, categories)
        similarity = scores(result.distances, self.pipeline.index.metric)
        found = result.rows >= 0
        return [
            (rows[ok].tolist(), dists[ok].tolist(), sims[ok].tolist())
            for rows, dists, sims, ok in zip(result.rows, result.distances, similarity, found, strict=True)
        ]

    def self_check(self) -> None:
        """Search with the first indexed item once, as requests would (with a predicted category too),
        so a classifier that cannot work fails at start-up; warn when the encoder does not reproduce its
        indexed vector (the image cropped as the run cropped its gallery): a different model than the
        one the collection was built with."""
        try:
            image = load_rgb(self.gallery.items.loc[self.gallery.row_ids[0], "image"])
        except ImageLoadError:
            return
        cropper = self.pipeline.cropper
        pixels, _ = self.pipeline.prepare(image, detect=cropper.detects and cropper.settings.gallery)
        hits, _ = self.search_images(
            [ImageQuery(pixels, k=1), ImageQuery(pixels, k=1, predict_category=True)]
        )
        if hits.rows[:1] != [0] or hits.distances[0] > 1e-3:
            log.warning(
                "the served encoder does not reproduce the indexed vectors (first item's nearest: %s): "
                "re-run evaluate.py with this model", hits.rows[:1],
            )  # fmt: skip

    def close(self) -> None:
        self.pipeline.close()
