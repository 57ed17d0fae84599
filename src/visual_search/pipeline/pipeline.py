"""The Pipeline: everything between an image and the catalogue items most like it, assembled once from a
config and used alike by evaluation, training's final evaluation, serving and the benchmarks.

    pipeline = Pipeline.from_config(cfg)   # items, encoder, cropper, embedder, reduction, index
    gallery = pipeline.index_gallery()     # embed (cached, cropped when asked), fit the reduction, index
    query = pipeline.embed_queries(frame)  # cropped as the run crops
    result = pipeline.search(query.embeddings, k, pipeline.predict_categories(query.embeddings))
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from PIL import Image
from torch import Tensor

from visual_search.data.build import build_items
from visual_search.data.items import ItemTable
from visual_search.detect import Crop, Cropper, CropSettings, Detections, NoDetector, build_detector
from visual_search.detect.boxes import BoxLike
from visual_search.embed.cache import encoder_fingerprint
from visual_search.embed.embedder import Embedded, Embedder, EmbeddingSettings
from visual_search.encode.base import Encoder
from visual_search.encode.build import build_encoder
from visual_search.errors import UserError
from visual_search.index.milvus import MilvusIndex
from visual_search.index.schema import STORED_FIELDS, VECTOR
from visual_search.index.search import SearchResult
from visual_search.reduce.reduction import Identity, Reduction
from visual_search.search.classifier import CategoryClassifier, ClassifierSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IndexedGallery:
    """What the index holds, row by row: item ids, label values (the filter field) and vectors."""

    item_ids: list[str]
    labels: list[str]
    vectors: np.ndarray


def gallery_fields(frame: pd.DataFrame, label_field: str) -> pd.DataFrame:
    """The metadata stored beside each gallery vector (`label`: the relevance class, filtered on)."""
    frame = frame.reset_index()
    return frame.assign(label=frame[label_field].astype(str))[list(STORED_FIELDS)]


class Pipeline:
    """An approach ready to index and search: `items` (the dataset), `encoder`, `cropper` (detector and
    crop settings), `embedder`, `reduction` (fitted when the gallery is indexed) and `index` (Milvus)."""

    def __init__(
        self,
        approach: str,
        items: ItemTable,
        encoder: Encoder,
        cropper: Cropper,
        embedder: Embedder,
        reduction: Reduction,
        index: MilvusIndex,
        classifier: ClassifierSettings | None = None,
    ) -> None:
        self.approach, self.items, self.encoder, self.cropper = approach, items, encoder, cropper
        self.embedder, self.reduction, self.index = embedder, reduction, index
        self.classifier_settings = classifier or ClassifierSettings()
        self.indexed: IndexedGallery | None = None
        self._classifier: CategoryClassifier | None = None

    @classmethod
    def from_config(cls, cfg: DictConfig, items: ItemTable | None = None) -> Pipeline:
        """Assemble the pipeline `cfg` describes (a composed evaluate, train or serve config, or the config
        an evaluate run saved) on `items` (default: `cfg.dataset`'s); a Milvus server that is down fails
        here, before any slow work."""
        items = items if items is not None else build_items(cfg)
        encoder = build_encoder(cfg.encoder, cfg.get("checkpoint"), cfg.get("inference"))
        detector_cfg = cfg.get("detector") or {}
        detector = (
            build_detector(detector_cfg, items.root, cfg.get("inference"))
            if "_target_" in detector_cfg
            else NoDetector()
        )
        cropper = Cropper(detector, CropSettings(**cfg.get("crop", {})))
        batching = cfg.get("datamodule", {})
        embedder = Embedder(
            encoder,
            cropper,
            EmbeddingSettings(**cfg.get("embedding", {})),
            batching.get("batch_size", 32),
            batching.get("num_workers", 0),
        )
        index_cfg = OmegaConf.to_container(cfg.index, resolve=True)
        reduction_cfg = index_cfg.pop("reduction", None)  # the index's reduction, fitted by the pipeline
        reduction = instantiate(reduction_cfg) if reduction_cfg else Identity()
        index: MilvusIndex = instantiate(index_cfg)
        index.check_reachable()
        classifier = ClassifierSettings(**cfg.get("classifier", {}))
        return cls(str(cfg.approach), items, encoder, cropper, embedder, reduction, index, classifier)

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the index connection (a Milvus Lite file can then be opened by another process)."""
        self.index.close()

    def describe(self) -> str:
        """The index and its reduction in one short string (for logs and the leaderboard)."""
        return f"{self.index.describe()} reduction={self.reduction.describe()}"

    def made_by(self) -> str:
        """What makes the indexed vectors: the approach, a digest of the encoder's weights, the reduction."""
        weights = encoder_fingerprint(self.encoder)[:12]
        return f"{self.approach} weights={weights}, reduction={self.reduction.describe()}"

    def index_gallery(self) -> Embedded:
        """Embed the gallery (through the cache; cropped to its objects when the run crops its gallery),
        fit the reduction (on the gallery or the training split) and bring the approach's collection up
        to date (reused when identical). Returns the embedded gallery."""
        crops = self.cropper.detects and self.cropper.settings.gallery
        gallery = self.embedder.embed(self.items.split("gallery"), "gallery", cache=True, crop=crops)
        if len(gallery.embeddings) == 0:
            raise UserError("the gallery is empty: nothing to index")
        fit = gallery.embeddings
        if self.reduction.fit_on == "train":
            fit = self.embedder.embed(self.items.split("train"), "train", cache=True).embeddings
        vectors = self.reduction.fit(fit).transform(gallery.embeddings)
        fields = gallery_fields(gallery.frame, self.items.label_field)
        tag = f"{self.items.name}_{self.approach}"
        self.index.build(vectors, fields, tag, encoder=self.made_by())
        self._set_indexed(IndexedGallery(fields["item_id"].tolist(), fields["label"].tolist(), vectors))
        return gallery

    def attach(self, collection: str) -> bool:
        """Search the existing `collection` as it is, without embedding anything; False when it is gone or
        the reduction would need fitting (a fitted reduction lives in the process that fitted it)."""
        if not isinstance(self.reduction, Identity) or not self.index.attach(collection):
            return False
        ids, labels, vectors = [], [], []
        for batch in self.index.scan(["item_id", "label", VECTOR]):
            for row in batch:
                ids.append(row["item_id"])
                labels.append(row["label"])
                vectors.append(np.asarray(row[VECTOR], dtype=np.float32))
        self._set_indexed(IndexedGallery(ids, labels, np.stack(vectors)))
        return True

    def _set_indexed(self, indexed: IndexedGallery) -> None:
        self.indexed, self._classifier = indexed, None

    def embed_queries(
        self, frame: pd.DataFrame, user_boxes: Sequence[BoxLike | None] | None = None, desc: str = "query"
    ) -> Embedded:
        """Embed query images (never cached: their embedding time is measured), cropped when the run
        detects objects or `user_boxes` are given; queries with a true `box` (scenes) keep their crop box
        even when uncropped, to measure the crops."""
        crop = self.cropper.detects or user_boxes is not None or "box" in frame.columns
        return self.embedder.embed(frame, desc, crop=crop, user_boxes=user_boxes)

    def vectors(self, embeddings: np.ndarray) -> np.ndarray:
        """Embeddings as they are indexed and searched (after the reduction)."""
        return self.reduction.transform(np.asarray(embeddings, dtype=np.float32))

    def search(
        self, embeddings: np.ndarray, k: int, categories: Sequence[str | None] | None = None
    ) -> SearchResult:
        """The top-`k` gallery rows of each query embedding; query i searches only label value
        categories[i] when given (None: all)."""
        return self.index.search(self.vectors(embeddings), k, categories)

    @property
    def classifier(self) -> CategoryClassifier:
        """The category classifier (`classifier` settings) over the indexed gallery, made on first use."""
        if self.indexed is None:
            raise RuntimeError("the category classifier needs the gallery indexed (index_gallery or attach)")
        if self._classifier is None:
            self._classifier = CategoryClassifier.build(
                self.classifier_settings,
                self.encoder,
                self.items.category_names,
                self.indexed.vectors,
                self.indexed.labels,
            )
        return self._classifier

    def predict_categories(self, embeddings: np.ndarray) -> list[str]:
        """The label value the classifier predicts for each query embedding."""
        return self.classifier.predict(embeddings, self.vectors(embeddings))

    def detect(self, images: Sequence[Image.Image]) -> list[Detections]:
        """The objects the run's detector finds in each image, in one batch (none without a detector)."""
        return self.cropper.detector.detect_batch(images)

    def crop(
        self,
        image: Image.Image,
        user_box: BoxLike | None = None,
        detect: bool = True,
        detections: Detections | None = None,
    ) -> Crop:
        """The region of one query image to embed: the user's box, else (with `detect`) the detected
        object (or the one `detections` selects), else the whole image; cropped as the run crops."""
        return self.cropper(image, user_box, detect, detections)

    def preprocess(self, image: Image.Image) -> Tensor:
        """The encoder's input for an RGB image (resize, centre crop, normalise)."""
        return self.embedder.transform(image)

    def prepare(
        self, image: Image.Image, user_box: BoxLike | None = None, detect: bool = True
    ) -> tuple[Tensor, Crop]:
        """One query image's encoder input and the region it shows (`crop`, then `preprocess`)."""
        region = self.crop(image, user_box, detect)
        return self.preprocess(region.image), region

    @torch.inference_mode()
    def encode(self, pixels: Tensor) -> np.ndarray:
        """Embeddings of a batch of prepared images (B, 3, H, W)."""
        return self.encoder(pixels).float().numpy()

    @torch.inference_mode()
    def encode_text(self, texts: list[str]) -> np.ndarray:
        """Text embeddings in the image embedding space (encoders with a text tower)."""
        return self.encoder.encode_text(texts).float().numpy()
