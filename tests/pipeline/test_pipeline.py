"""The Pipeline assembled from a config, on tiny data and a real Milvus Lite file: it indexes the gallery
(reused when identical), finds each item by its own image, reads its collection back exactly, and
classifies queries in the index's space."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from tests.conftest import tiny_config
from visual_search.data.images import load_rgb
from visual_search.detect.foreground import ForegroundDetector
from visual_search.pipeline import Pipeline
from visual_search.reduce.reduction import PCA, Identity


@pytest.fixture(scope="module")
def log_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("pipeline")


def build(log_dir: Path, *overrides: str) -> Pipeline:
    torch.manual_seed(0)
    return Pipeline.from_config(tiny_config(log_dir, "inference.precision=fp32", *overrides))


def test_assembled_from_the_config(log_dir):
    with build(log_dir, "detector=foreground", "crop.padding=0.2", "index/reduction=pca") as pipeline:
        assert pipeline.items.name == "synthetic" and len(pipeline.items.split("gallery")) == 36
        assert isinstance(pipeline.cropper.detector, ForegroundDetector)
        assert pipeline.cropper.settings.padding == 0.2 and pipeline.embedder.batch_size == 8
        assert isinstance(pipeline.reduction, PCA) and pipeline.describe().endswith("reduction=pca256")
        assert pipeline.embedder.settings.cache_dir == str(log_dir / "cache" / "embeddings")


def test_indexes_finds_items_by_their_own_image_and_reads_the_collection_back(log_dir):
    with build(log_dir) as built:
        gallery = built.index_gallery()
        result = built.search(gallery.embeddings[:5], k=1)
        assert result.rows[:, 0].tolist() == [0, 1, 2, 3, 4]
        image = load_rgb(gallery.frame["image"].iloc[7])
        assert built.search(built.encode(built.prepare(image)[0][None]), k=1).rows[0, 0] == 7
        indexed = built.indexed
        assert indexed.item_ids == gallery.frame.index.tolist()
        assert indexed.labels == gallery.frame["category_id"].astype(str).tolist()
        assert "reduction=none" in built.made_by() and isinstance(built.reduction, Identity)
        collection = built.index.collection
    with build(log_dir) as again:  # another process, later: the collection as it was built
        assert again.attach(collection) and not again.attach(f"{collection}_gone")
        assert again.indexed.item_ids == indexed.item_ids and again.indexed.labels == indexed.labels
        np.testing.assert_array_equal(again.indexed.vectors, indexed.vectors)
        assert again.classifier.method == "centroid"
        queries = gallery.embeddings[::4]
        assert again.predict_categories(queries) == built.predict_categories(queries)


def test_with_pca_the_classifier_works_in_the_index_space(log_dir):
    with build(
        log_dir, "index/reduction=pca", "index.reduction.dim=4", "classifier.method=centroid"
    ) as pipeline:
        gallery = pipeline.index_gallery()
        assert pipeline.indexed.vectors.shape == (36, 4) and not pipeline.attach(pipeline.index.collection)
        vectors = pipeline.vectors(gallery.embeddings)
        np.testing.assert_allclose(vectors, pipeline.indexed.vectors, atol=1e-6)
        centroids = pipeline.classifier.references
        assert centroids.shape == (4, 4)  # one per label, in the 4-d index space
        nearest = np.argmax(vectors / np.linalg.norm(vectors, axis=1, keepdims=True) @ centroids.T, axis=1)
        labels = pipeline.classifier.labels
        assert pipeline.predict_categories(gallery.embeddings) == [labels[i] for i in nearest]
