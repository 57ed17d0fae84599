"""PCA before indexing: fewer dimensions that keep the categories apart, unit length again, reproducible,
and a dimension the data cannot give is a one-line error."""

from __future__ import annotations

import numpy as np
import pytest

from tests.index.test_milvus_index import _gallery
from visual_search.errors import UserError
from visual_search.reduce.reduction import PCA, Identity


def test_pca_keeps_the_categories_apart_in_fewer_dimensions():
    gallery, fields = _gallery(dim=64)
    pca = PCA(dim=8).fit(gallery)
    reduced = pca.transform(gallery)
    assert reduced.shape == (len(gallery), 8) and reduced.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(reduced, axis=1), 1.0, atol=1e-5)
    nearest = np.argsort(-(reduced[:20] @ reduced.T), axis=1)[:, 1:6]  # category clusters survive
    categories = fields["category"].to_numpy()
    assert (categories[nearest] == categories[:20, None]).mean() > 0.9
    assert pca.explained_variance > 0.5 and pca.describe() == "pca8"
    np.testing.assert_array_equal(PCA(dim=8).fit(gallery).transform(gallery), reduced)  # exact SVD
    assert Identity().fit(gallery).transform(gallery).tolist() == gallery.astype(np.float32).tolist()


def test_a_dimension_larger_than_the_data_gives_is_a_user_error():
    gallery, _ = _gallery(n_per_category=2)
    with pytest.raises(UserError, match=r"index.reduction.dim=64 is too large"):
        PCA(dim=64).fit(gallery)
    with pytest.raises(UserError, match=r"index.reduction.fit_on='query'"):
        PCA(dim=8, fit_on="query")
