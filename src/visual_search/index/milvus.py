"""Gallery vectors in a Milvus collection (Milvus Lite file, server or cluster: the same client code).

One collection per distinct gallery: its name is a tag plus a digest of the indexed vectors, the stored
fields and the build parameters (`schema.py`), so approaches never overwrite each other and an identical,
complete collection is reused instead of rebuilt. `collection=` names one instead (a catalogue kept up to
date in place). Writing is idempotent and resumable (`sync.py`); a collection made for other vectors
(dimension, metric, index type or encoder) is refused with a hint, never mixed into. `MilvusIndex` ties
the connection (`client.py`), the schema, the sync and the search (`search.py`) together.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator, Sequence

import numpy as np
import pandas as pd
from pymilvus import MilvusClient

from visual_search.errors import UserError
from visual_search.index import schema
from visual_search.index.client import Connection
from visual_search.index.schema import IndexSpec, Layout, check_positive
from visual_search.index.search import SearchResult, scan, search
from visual_search.index.sync import Sync, count

log = logging.getLogger(__name__)

LITE_FLAT_BYTES = 1 << 28  # Milvus Lite's FLAT search allocates (batch, rows, dim) floats: cap a batch
# Milvus Lite 3.x searches in Python loops over every row: a one-at-a-time query took 5 ms at 2,000 rows,
# 12 ms at 10,000 and 49 ms at 40,000 (1280-d, 2 busy cores), where the encoder takes 5-9 ms.
LITE_LARGE_ROWS = 10_000
LITE_US_PER_ROW = 1.2


class MilvusIndex:
    """Builds (or reuses, or completes) a collection of gallery vectors and searches it, optionally
    within a category."""

    def __init__(
        self,
        uri: str,
        token: str | None = None,
        db_name: str | None = None,
        collection: str | None = None,
        recreate: bool = False,
        index_type: str = "IVF_FLAT",
        metric: str = "L2",
        nlist: int = 128,
        nprobe: int = 16,
        M: int = 16,
        efConstruction: int = 200,
        ef: int = 64,
        insert_batch_size: int = 1000,
        search_batch_size: int = 256,
        index_timeout_s: float = 300.0,
        retries: int = 4,
        retry_backoff_s: float = 1.0,
    ) -> None:
        self.spec = IndexSpec(index_type, metric, nlist, nprobe, M, efConstruction, ef)
        check_positive("insert_batch_size", insert_batch_size)
        check_positive("search_batch_size", search_batch_size)
        self.connection = Connection(uri, token, db_name, retries, retry_backoff_s)
        self.collection_name, self.recreate = collection, recreate
        self.search_batch_size = search_batch_size
        self.sync = Sync(self.connection, insert_batch_size, index_timeout_s)
        self.collection: str | None = None
        self._rows = 0
        self._dim = 0

    @property
    def uri(self) -> str:
        return self.connection.uri

    @property
    def is_lite(self) -> bool:
        return self.connection.is_lite

    @property
    def metric(self) -> str:
        return self.spec.metric

    @property
    def client(self) -> MilvusClient:
        """The connection, opened on first use."""
        return self.connection.client

    def connect(self) -> MilvusIndex:
        """Open the connection now (retried while a server does not answer); returns self."""
        self.connection.connect()
        return self

    def check_reachable(self) -> None:
        """Fail now when a Milvus server does not answer, before any slow work (see `Connection`)."""
        self.connection.check_reachable()

    def close(self) -> None:
        """Close the connection (a Milvus Lite file can then be opened by another process)."""
        self.connection.close()

    def __enter__(self) -> MilvusIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def describe(self) -> str:
        """Index type, parameters and metric in one short string (for logs and the leaderboard)."""
        return self.spec.describe()

    def build(self, vectors: np.ndarray, fields: pd.DataFrame, tag: str, encoder: str = "") -> str:
        """Bring the collection up to date with the gallery `vectors` and their `fields` (one row per
        vector, columns from STORED_FIELDS, unique `item_id`s): create it, or complete it, or reuse it
        when nothing is missing. `encoder` names what made the vectors (checked against an existing
        collection). Returns the collection's name."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if len(vectors) != len(fields):
            raise ValueError(f"{len(vectors)} vectors but {len(fields)} rows of fields")
        if len(vectors) == 0:
            raise UserError("the gallery is empty: nothing to index")
        if self.spec.fit_to(len(vectors)):
            log.warning(
                "index.nlist=%d is too many lists for %d vectors: using nlist=%d",
                self.spec.nlist, len(vectors), self.spec.nlist_used,
            )  # fmt: skip
        fields = schema.stored_fields(fields)
        name = self.collection_name or schema.collection_name(tag, self.spec, vectors, fields)
        self._open(name, Layout(vectors.shape[1], self.spec.metric, self.spec.index_type, encoder))
        if self.collection_name is None and count(self.connection, name) == len(vectors):
            log.info("reusing Milvus collection %s (%d vectors)", name, len(vectors))  # named by content
        else:
            self.sync(name, vectors, fields)
        # A named collection keeps the lists it was created with.
        self.spec.nlist_used = schema.built_nlist(self.client, name, self.spec.nlist_used)
        self.collection, self._rows, self._dim = name, len(vectors), vectors.shape[1]
        if self.is_lite and len(vectors) > LITE_LARGE_ROWS:
            log.warning(
                "Milvus Lite searches every one of these %d rows in Python: about %.0f ms per query, more "
                "than the encoder takes; for galleries this large use index=milvus_server (any Milvus)",
                len(vectors), len(vectors) * LITE_US_PER_ROW / 1000,
            )  # fmt: skip
        return name

    def attach(self, name: str) -> bool:
        """Search the existing collection `name` (made earlier by `build`) without rebuilding it; False when
        there is no such collection."""
        if not self.client.has_collection(name):
            return False
        self.client.load_collection(name)
        self.spec.nlist_used = schema.built_nlist(self.client, name, self.spec.nlist_used)
        self._rows, self._dim = count(self.connection, name), schema.read_layout(self.client, name).dim
        self.collection = name
        return True

    def scan(self, fields: Sequence[str], batch_size: int = 1000) -> Iterator[list[dict]]:
        """Every stored row of the collection in row order, `batch_size` rows at a time, with `fields`
        (any of ROW, STORED_FIELDS and VECTOR)."""
        if self.collection is None:
            raise RuntimeError("scan before build or attach")
        return scan(self.client, self.collection, self._rows, fields, batch_size)

    def search(
        self,
        vectors: np.ndarray,
        k: int,
        filter_values: Sequence[str | None] | None = None,
        filter_field: str = "label",
    ) -> SearchResult:
        """Top-`k` gallery rows for each query vector; with `filter_values`, query i only sees gallery
        items whose `filter_field` equals filter_values[i] (None: no filter for that query)."""
        if self.collection is None:
            raise RuntimeError("search before build")
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        params = self.spec.search_params(k)
        return search(
            self.client, self.collection, vectors, k, params, self._batch_size(), filter_values, filter_field
        )

    def _batch_size(self) -> int:
        if self.is_lite and self.spec.index_type == "FLAT":
            return max(1, min(self.search_batch_size, LITE_FLAT_BYTES // max(1, self._rows * self._dim * 4)))
        return self.search_batch_size

    def _open(self, name: str, layout: Layout) -> None:
        """Create the collection, or check that the existing one holds the same kind of vectors
        (dropped first with `recreate`)."""
        exists = self.client.has_collection(name)
        if exists and self.recreate:
            log.warning("index.recreate=true: dropping Milvus collection %s", name)
            self.client.drop_collection(name)
            exists = False
        if not exists:
            schema.create_collection(self.client, name, layout, self.spec)
            return
        held = schema.read_layout(self.client, name)
        if self.collection_name is None:  # named by its content: these very vectors, whoever made them
            held = dataclasses.replace(held, encoder=layout.encoder)
        if held != layout:
            raise UserError(
                f"Milvus collection {name!r} holds {held.describe()}, but this run makes "
                f"{layout.describe()}: name another collection (index.collection=...) or replace it "
                f"(index.recreate=true)"
            )
        self.client.load_collection(name)
