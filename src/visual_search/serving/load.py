"""Loading the model behind the server from the served run's config, through the same code as
evaluate.py: the item table, encoder (or fine-tuned checkpoint), query cropping, the Milvus collection
(attached, or indexed again when it is gone), the gallery's rows and the category classifier."""

from __future__ import annotations

import logging

import numpy as np
import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig

from visual_search.data.build import build_items
from visual_search.data.datamodule import RetrievalDataModule
from visual_search.data.items import ItemTable
from visual_search.data.transforms import eval_transform
from visual_search.detection.embed import embed_cropped
from visual_search.encoders.base import Encoder
from visual_search.encoders.build import build_encoder
from visual_search.evaluation import filters
from visual_search.evaluation.embed import Embedded, EmbeddingSettings, embed_split, embedding_settings
from visual_search.evaluation.run import index_gallery
from visual_search.index.milvus import VECTOR, MilvusIndex
from visual_search.index.reduction import Identity
from visual_search.serving.engine import CategoryClassifier, SearchEngine
from visual_search.serving.gallery import Gallery, image_root
from visual_search.serving.regions import QueryCropper, query_cropper
from visual_search.serving.source import Served

log = logging.getLogger(__name__)


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


def embed_gallery(encoder: Encoder, data: RetrievalDataModule, cropper: QueryCropper) -> Embedded:
    """The gallery embedded as evaluate.py embeds it: cropped to the detected objects when the run has a
    detector and crops its gallery, whole otherwise."""
    if cropper.detector is None or not cropper.settings.gallery:
        return embed_split(encoder, data, "gallery")
    gallery, _ = embed_cropped(
        encoder, data.frame("gallery"), cropper.detector, cropper.settings, data.eval_transform,
        data.batch_size, data.num_workers, desc="gallery",
    )  # fmt: skip
    return gallery


def open_index(served: Served, items: ItemTable, encoder: Encoder, cropper: QueryCropper) -> MilvusIndex:
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
    with embedding_settings(EmbeddingSettings(**cfg.get("embedding", {}))):  # the run's embedding cache
        index_gallery(cfg, encoder, data, items, index, embed_gallery(encoder, data, cropper))
    log.info("serving Milvus collection %s (%s)", index.collection, index.describe())
    return index


def load_engine(served: Served, images_root: str | None = None) -> SearchEngine:
    """Everything the server needs, built from the served config (the same code path as evaluate.py)."""
    cfg = served.cfg
    pl.seed_everything(cfg.seed, verbose=False)  # random-init encoders come out as evaluate.py made them
    items = build_items(cfg)
    encoder = build_encoder(cfg)
    cropper = query_cropper(cfg)
    index = open_index(served, items, encoder, cropper)
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
        "detector": cropper.name,
    }
    engine = SearchEngine(encoder, index, gallery, classifier, cropper, info)
    engine.self_check(crop_gallery=cropper.detector is not None and cropper.settings.gallery)
    return engine
