"""Dimensionality reduction applied to embeddings before they are indexed (and to queries before search);
the pipeline fits it.

`Reduction` is the hook: `Identity` and `PCA` live here; a learned projection (trained with the encoder)
plugs in as another subclass with the same `fit`/`transform`/`describe`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np
from sklearn.decomposition import PCA as SklearnPCA

from visual_search.errors import UserError

FIT_SPLITS = ("gallery", "train")


class Reduction(ABC):
    """Maps (N, D) float32 embeddings to (N, d) float32 vectors."""

    fit_on: str = "gallery"  # which split's embeddings `fit` receives: "gallery" | "train"

    @abstractmethod
    def fit(self, vectors: np.ndarray) -> Reduction:
        """Learn the mapping from `vectors` (a no-op for fixed mappings); returns self."""

    @abstractmethod
    def transform(self, vectors: np.ndarray) -> np.ndarray:
        """Reduce `vectors`; `fit` must have been called."""

    @abstractmethod
    def describe(self) -> str:
        """A short name for logs, collection names and the leaderboard (e.g. `pca256`)."""


class Identity(Reduction):
    """No reduction: vectors are indexed as the encoder produced them."""

    def fit(self, vectors: np.ndarray) -> Identity:
        return self

    def transform(self, vectors: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def describe(self) -> str:
        return "none"


class PCA(Reduction):
    """Principal components (scikit-learn, exact SVD, so refitting on the same data is reproducible),
    optionally whitened, then L2-normalised again so L2 and inner-product search stay equivalent."""

    def __init__(
        self, dim: int, fit_on: str = "gallery", whiten: bool = False, normalize: bool = True
    ) -> None:
        if fit_on not in FIT_SPLITS:
            raise UserError(f"index.reduction.fit_on={fit_on!r}; choose one of {', '.join(FIT_SPLITS)}")
        if dim is None or int(dim) < 1:
            raise UserError(f"index.reduction.dim={dim!r}: PCA needs a positive number of dimensions")
        self.dim, self.fit_on, self.whiten, self.normalize = int(dim), fit_on, whiten, normalize
        self._pca: SklearnPCA | None = None

    def fit(self, vectors: np.ndarray) -> PCA:
        n, d = vectors.shape
        if self.dim > min(n, d):
            raise UserError(
                f"index.reduction.dim={self.dim} is too large: PCA on {n} {self.fit_on} embeddings of "
                f"dimension {d} gives at most {min(n, d)} components"
            )
        self._pca = SklearnPCA(n_components=self.dim, whiten=self.whiten, svd_solver="full")
        self._pca.fit(vectors.astype(np.float64))
        return self

    def transform(self, vectors: np.ndarray) -> np.ndarray:
        if self._pca is None:
            raise RuntimeError("PCA.transform called before fit")
        reduced = self._pca.transform(vectors.astype(np.float64))
        if self.normalize:
            reduced /= np.maximum(np.linalg.norm(reduced, axis=1, keepdims=True), 1e-12)
        return np.ascontiguousarray(reduced, dtype=np.float32)

    def describe(self) -> str:
        return f"pca{self.dim}{'w' if self.whiten else ''}"

    @property
    def explained_variance(self) -> float:
        """Fraction of the fitted embeddings' variance that the kept components explain."""
        if self._pca is None:
            raise RuntimeError("PCA not fitted")
        return float(self._pca.explained_variance_ratio_.sum())
