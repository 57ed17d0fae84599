"""A real Milvus Lite round trip: build, reuse, filter, search."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

from visual_search.errors import UserError
from visual_search.index.milvus import MilvusIndex

CATEGORIES = ["tops", "shoes", 'say "cheese"']


def _gallery(n_per_category: int = 40, dim: int = 32, seed: int = 0) -> tuple[np.ndarray, pd.DataFrame]:
    """Unit vectors clustered by category, with the fields the index stores."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(len(CATEGORIES), dim)) * 3
    labels = np.repeat(np.arange(len(CATEGORIES)), n_per_category)
    vectors = centres[labels] + rng.normal(size=(len(labels), dim))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    fields = pd.DataFrame(
        {
            "item_id": [f"item{i}" for i in range(len(labels))],
            "label": [CATEGORIES[c] for c in labels],
            "category": [CATEGORIES[c] for c in labels],
            "semantic_category": ["clothing"] * len(labels),
            "title": [f"thing number {i} " * 200 for i in range(len(labels))],  # longer than the field limit
        }
    )
    return vectors.astype(np.float32), fields


def _exact_top_k(queries: np.ndarray, gallery: np.ndarray, k: int) -> np.ndarray:
    distances = ((queries[:, None, :] - gallery[None]) ** 2).sum(-1)
    return np.argsort(distances, axis=1, kind="stable")[:, :k]


@pytest.fixture()
def uri(tmp_path) -> str:
    return str(tmp_path / "milvus" / "test.db")


def test_ivf_flat_round_trip_with_category_filter(uri):
    gallery, fields = _gallery(n_per_category=120)  # enough vectors for 8 lists
    with MilvusIndex(uri, index_type="IVF_FLAT", nlist=8, nprobe=8) as index:
        name = index.build(gallery, fields, tag="synthetic/efficientnet-lite0")
        assert name.startswith("synthetic_efficientnet_lite0_")
        info = index.client.describe_index(name, "vector")
        assert info["index_type"] == "IVF_FLAT" and int(info["params"]["nlist"]) == 8  # not silently dropped

        queries = gallery[:5] + 0.01
        # nprobe == nlist probes every list: the IVF answer is the exact answer
        result = index.search(queries, k=10)
        np.testing.assert_array_equal(result.rows, _exact_top_k(queries, gallery, 10))
        assert np.all(np.diff(result.distances, axis=1) >= 0)

        # every query restricted to another category: all hits are from that category
        wanted = ["shoes", 'say "cheese"', "shoes", "tops", "shoes"]
        filtered = index.search(queries, k=10, filter_values=wanted)
        for row, category in zip(filtered.rows, wanted, strict=True):
            assert (row >= 0).all() and set(fields["category"].iloc[row]) == {category}


def test_nlist_shrinks_to_what_the_gallery_can_train(uri, caplog):
    gallery, fields = _gallery(n_per_category=30)  # 90 vectors: 2 lists of at least 39
    with MilvusIndex(uri, nlist=128) as index:
        name = index.build(gallery, fields, tag="t")
        assert int(index.client.describe_index(name, "vector")["params"]["nlist"]) == 2
    assert "index.nlist=128 is too many lists for 90 vectors: using nlist=2" in caplog.text
    assert "nlist=2," in index.describe()


def test_small_category_pads_with_minus_one(uri):
    gallery, fields = _gallery(n_per_category=4)
    with MilvusIndex(uri, index_type="FLAT") as index:
        index.build(gallery, fields, tag="t")
        result = index.search(gallery[:2], k=6, filter_values=["tops", None])
    assert (result.rows[0, :4] >= 0).all() and (result.rows[0, 4:] == -1).all()
    assert np.isnan(result.distances[0, 4:]).all()
    assert (result.rows[1] >= 0).all()  # None: no filter for that query


def test_identical_collection_is_reused_and_changed_one_is_not(uri, caplog):
    gallery, fields = _gallery()
    with MilvusIndex(uri) as index:
        first = index.build(gallery, fields, tag="t")
    caplog.set_level(logging.INFO, logger="visual_search.index")
    with MilvusIndex(uri) as index:  # a new connection to the same file
        assert index.build(gallery, fields, tag="t") == first
        assert "reusing" in caplog.text
        other = index.build(gallery[::-1].copy(), fields, tag="t")
        assert other != first
        assert set(index.client.list_collections()) == {first, other}
    with MilvusIndex(uri, index_type="HNSW") as index:  # another index type is another collection
        assert index.build(gallery, fields, tag="t") not in (first, other)


def test_incomplete_collection_is_rebuilt(uri):
    gallery, fields = _gallery()
    with MilvusIndex(uri) as index:
        name = index.build(gallery, fields, tag="t")
        index.client.delete(name, filter="row >= 100")  # as if a run had died while inserting
        index.client.flush(name)
    with MilvusIndex(uri) as index:
        assert index.build(gallery, fields, tag="t") == name
        count = index.client.query(name, filter="", output_fields=["count(*)"], consistency_level="Strong")
        assert count[0]["count(*)"] == len(gallery)


@pytest.mark.parametrize(("index_type", "metric"), [("HNSW", "IP"), ("FLAT", "COSINE"), ("FLAT", "L2")])
def test_other_index_types_and_metrics_find_the_nearest(uri, index_type, metric):
    gallery, fields = _gallery()
    with MilvusIndex(uri, index_type=index_type, metric=metric) as index:
        index.build(gallery, fields, tag="t")
        result = index.search(gallery[:8], k=1)
    assert result.rows[:, 0].tolist() == list(range(8))


def test_bad_parameters_are_user_errors(uri):
    with pytest.raises(UserError, match=r"index.index_type='IVF_PQ'"):
        MilvusIndex(uri, index_type="IVF_PQ")
    with pytest.raises(UserError, match=r"index.metric='HAMMING'"):
        MilvusIndex(uri, metric="HAMMING")
