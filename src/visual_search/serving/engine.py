"""The model behind the server: encoder, Milvus collection, gallery, category classifier and detector,
loaded once from the served run's config and searched in batches on one model thread."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig
from PIL import Image
from torch import Tensor

from visual_search.data.build import build_items
from visual_search.data.datamodule import RetrievalDataModule
from visual_search.data.images import ImageLoadError, load_rgb
from visual_search.data.items import ItemTable
from visual_search.data.transforms import eval_transform
from visual_search.detection import Detector, NoDetector, build_detector, query_box
from visual_search.detection.embed import CropSettings, embed_cropped
from visual_search.encoders.base import Encoder
from visual_search.encoders.build import build_encoder
from visual_search.evaluation import filters
from visual_search.evaluation.embed import Embedded, embed_split
from visual_search.evaluation.run import index_gallery
from visual_search.index.milvus import VECTOR, MilvusIndex
from visual_search.index.reduction import Identity
from visual_search.serving.errors import Unprocessable
from visual_search.serving.gallery import Gallery, image_root
from visual_search.serving.imaging import Box
from visual_search.serving.source import Served

log = logging.getLogger(__name__)

BoxFinder = Callable[[Image.Image], Box | None]  # the box to embed, or None for the whole image


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
        detector: BoxFinder | None,
        info: dict[str, object],
    ) -> None:
        self.encoder, self.index, self.gallery = encoder, index, gallery
        self.classifier, self.detector, self.info = classifier, detector, info
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
        box = self.detector(image) if crop_gallery and self.detector else None
        pixels = self.preprocess(box.crop(image) if box else image)
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


def scan_gallery(index: MilvusIndex) -> tuple[list[str], list[str], dict[str, np.ndarray]]:
    """Item id and label of every index row, and the sum of the stored vectors of each label."""
    row_ids: list[str] = []
    labels: list[str] = []
    sums: dict[str, np.ndarray] = {}
    for batch in index.scan(["item_id", "label", VECTOR]):
        for row in batch:
            row_ids.append(row["item_id"])
            labels.append(row["label"])
            vector = np.asarray(row[VECTOR], dtype=np.float64)
            sums[row["label"]] = sums[row["label"]] + vector if row["label"] in sums else vector
    return row_ids, labels, sums


def category_classifier(
    cfg: DictConfig, encoder: Encoder, classes: list[str], gallery: Gallery, sums: dict[str, np.ndarray]
) -> CategoryClassifier:
    """The configured classifier (`auto`: the trained head, else zero-shot with a text tower, else the
    label centroids of the indexed vectors). The head predicts any of the dataset's `classes`."""
    method = filters.resolve_classifier(cfg.method, encoder)
    if method == "head":
        return CategoryClassifier(method, encoder, classes)
    labels = [c.id for c in gallery.categories]
    if method == "zero_shot":
        prompts = [cfg.template.format(c.name.replace("_", " ")) for c in gallery.categories]
        with torch.inference_mode():
            references = encoder.encode_text(prompts).float().numpy()
    else:
        references = np.stack([sums[label] for label in labels]).astype(np.float32)
    return CategoryClassifier(method, encoder, labels, references)


class DetectorCrop:
    """The box the served run's detector and crop settings choose in an image (None: nothing detected,
    so the whole image), as evaluate.py crops its queries (and, with `settings.gallery`, its gallery)."""

    def __init__(self, detector: Detector, settings: CropSettings) -> None:
        self.detector, self.settings, self.name = detector, settings, detector.name

    def __call__(self, image: Image.Image) -> Box | None:
        box = query_box(self.detector, image, self.settings.policy, self.settings.padding)
        return Box(*box) if box else None


def query_detector(cfg: DictConfig) -> DetectorCrop | None:
    """The served run's detector (`cfg.detector`, cropping as `cfg.crop` says); None when it has none or
    was evaluated before detectors had a config (`_target_`)."""
    if "_target_" not in (cfg.get("detector") or {}):
        return None
    detector = build_detector(cfg)
    if isinstance(detector, NoDetector):
        return None
    return DetectorCrop(detector, CropSettings(**cfg.get("crop", {})))


def embed_gallery(encoder: Encoder, data: RetrievalDataModule, detector: DetectorCrop | None) -> Embedded:
    """The gallery embedded as evaluate.py embeds it: cropped to the detected objects when the run crops
    its gallery, whole otherwise."""
    if detector is None or not detector.settings.gallery:
        return embed_split(encoder, data, "gallery")
    gallery, _ = embed_cropped(
        encoder, data.frame("gallery"), detector.detector, detector.settings, data.eval_transform,
        data.batch_size, data.num_workers, desc="gallery",
    )  # fmt: skip
    return gallery


def open_index(
    served: Served, items: ItemTable, encoder: Encoder, detector: DetectorCrop | None
) -> MilvusIndex:
    """The served run's collection; built (gallery embedded, then indexed, with progress bars) when it is
    missing or its reduction must be fitted again, reusing an identical collection where one exists."""
    cfg = served.cfg
    index: MilvusIndex = instantiate(cfg.index)
    if served.collection and isinstance(index.reduction, Identity) and index.attach(served.collection):
        log.info("serving Milvus collection %s (%s)", served.collection, index.describe())
        return index
    if served.collection:
        log.warning(
            "Milvus collection %s not found in %s: indexing the gallery again", served.collection, index.uri
        )
    data: RetrievalDataModule = instantiate(cfg.datamodule, _partial_=True)(
        items=items, eval_transform=eval_transform(encoder.preprocess)
    )
    index_gallery(cfg, encoder, data, items, index, embed_gallery(encoder, data, detector))
    log.info("serving Milvus collection %s (%s)", index.collection, index.describe())
    return index


def load_engine(served: Served, images_root: str | None = None) -> SearchEngine:
    """Everything the server needs, built from the served config (the same code path as evaluate.py)."""
    cfg = served.cfg
    pl.seed_everything(cfg.seed, verbose=False)  # random-init encoders come out as evaluate.py made them
    items = build_items(cfg)
    encoder = build_encoder(cfg)
    detector = query_detector(cfg)
    index = open_index(served, items, encoder, detector)
    row_ids, labels, sums = scan_gallery(index)
    gallery = Gallery(items.items, row_ids, labels, image_root(cfg.dataset, images_root))
    classifier = category_classifier(cfg.classifier, encoder, items.classes, gallery, sums)
    info = {
        "approach": cfg.approach,
        "source": served.source,
        "dataset": items.name,
        "encoder": type(encoder).__name__,
        "embed_dim": encoder.embed_dim,
        "index": index.describe(),
        "collection": index.collection,
        "classifier": classifier.method,
        "detector": detector.name if detector else None,
    }
    engine = SearchEngine(encoder, index, gallery, classifier, detector, info)
    engine.self_check(crop_gallery=detector is not None and detector.settings.gallery)
    return engine
