"""Gallery vectors in a Milvus collection (Milvus Lite file, server or cluster: the same client code).

One collection per distinct gallery: its name is a tag plus a digest of the indexed vectors, the stored
fields and the build parameters, so approaches never overwrite each other and an identical, complete
collection is reused instead of rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from pymilvus import DataType, MilvusClient, MilvusException
from tqdm.auto import tqdm

from visual_search.errors import UserError
from visual_search.index.reduction import Identity, Reduction

log = logging.getLogger(__name__)


class _UnimplementedRpc(logging.Filter):
    """Milvus Lite's in-process gRPC server logs a traceback for RPCs it does not implement (pymilvus
    asks for AllocTimestamp when creating a collection, then carries on): drop those records."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], NotImplementedError))


logging.getLogger("grpc._server").addFilter(_UnimplementedRpc())

PRIMARY_KEY = "row"  # the item's position in the gallery table
VECTOR = "vector"
STORED_FIELDS = ("item_id", "label", "category", "semantic_category", "title")  # label: relevance class
MAX_FIELD_BYTES = {"title": 1024}  # VARCHAR limits (bytes); longer values are truncated
DEFAULT_FIELD_BYTES = 512
INDEX_TYPES = ("IVF_FLAT", "FLAT", "HNSW")
METRICS = ("L2", "IP", "COSINE")
MIN_POINTS_PER_LIST = 39  # FAISS warns and clusters poorly below this many training vectors per list
LITE_FLAT_BYTES = 1 << 28  # Milvus Lite's FLAT search allocates (batch, rows, dim) floats: cap a batch


@dataclass(frozen=True)
class SearchResult:
    """Top-K hits per query: gallery rows (-1 where fewer than K came back) and Milvus distances
    (squared L2 for L2; similarity for IP and COSINE; NaN where nothing came back)."""

    rows: np.ndarray
    distances: np.ndarray


class MilvusIndex:
    """Builds (or reuses) a collection of gallery vectors and searches it, optionally within a category."""

    def __init__(
        self,
        uri: str,
        token: str | None = None,
        db_name: str | None = None,
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
        reduction: Reduction | None = None,
    ) -> None:
        if index_type not in INDEX_TYPES:
            raise UserError(f"index.index_type={index_type!r}; choose one of {', '.join(INDEX_TYPES)}")
        if metric not in METRICS:
            raise UserError(f"index.metric={metric!r}; choose one of {', '.join(METRICS)}")
        self.uri, self.token, self.db_name = str(uri), token, db_name
        self.index_type, self.metric = index_type, metric
        self.nlist_used = nlist  # build() lowers it for galleries too small for `nlist` lists
        self.nlist, self.nprobe, self.M, self.efConstruction, self.ef = nlist, nprobe, M, efConstruction, ef
        self.insert_batch_size, self.search_batch_size = insert_batch_size, search_batch_size
        self.index_timeout_s = index_timeout_s
        self.reduction = reduction if reduction is not None else Identity()
        self.collection: str | None = None
        self._rows = 0
        self._dim = 0
        self._client: MilvusClient | None = None

    @property
    def is_lite(self) -> bool:
        """Milvus Lite (a local file) rather than a server: pymilvus's own rule."""
        return self.uri.endswith(".db")

    @property
    def client(self) -> MilvusClient:
        """The connection, opened on first use."""
        if self._client is None:
            if self.is_lite:
                Path(self.uri).parent.mkdir(parents=True, exist_ok=True)
            try:
                self._client = MilvusClient(uri=self.uri, token=self.token or "", db_name=self.db_name or "")
            except MilvusException as error:
                raise UserError(f"cannot open Milvus at index.uri={self.uri}: {error.message}") from error
        return self._client

    def close(self) -> None:
        """Close the connection (a Milvus Lite file can then be opened by another process)."""
        if self._client is not None:
            self._client.close()
            self._client = None

    def __enter__(self) -> MilvusIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def describe(self) -> str:
        """Index parameters in one short string (for logs and the leaderboard)."""
        params = {
            "IVF_FLAT": f"nlist={self.nlist_used},nprobe={self.nprobe}",
            "FLAT": "",
            "HNSW": f"M={self.M},efConstruction={self.efConstruction},ef={self.ef}",
        }[self.index_type]
        return f"{self.index_type}({params}) {self.metric} reduction={self.reduction.describe()}"

    def transform(self, embeddings: np.ndarray) -> np.ndarray:
        """Embeddings as they are indexed and searched (after the reduction)."""
        return self.reduction.transform(np.asarray(embeddings, dtype=np.float32))

    def build(
        self, embeddings: np.ndarray, fields: pd.DataFrame, tag: str, fit_embeddings: np.ndarray | None = None
    ) -> str:
        """Fit the reduction (on `fit_embeddings`, default the gallery), then create the collection of the
        gallery vectors with `fields` (one row per vector, columns from STORED_FIELDS), or reuse it when an
        identical, complete one exists. Returns the collection name."""
        if len(embeddings) != len(fields):
            raise ValueError(f"{len(embeddings)} embeddings but {len(fields)} rows of fields")
        if len(embeddings) == 0:
            raise UserError("the gallery is empty: nothing to index")
        self.reduction.fit(
            np.asarray(fit_embeddings if fit_embeddings is not None else embeddings, np.float32)
        )
        vectors = self.transform(embeddings)
        self.nlist_used = min(self.nlist, max(1, len(vectors) // MIN_POINTS_PER_LIST))
        if self.index_type == "IVF_FLAT" and self.nlist_used < self.nlist:
            log.warning(
                "index.nlist=%d is too many lists for %d vectors: using nlist=%d",
                self.nlist, len(vectors), self.nlist_used,
            )  # fmt: skip
        fields = _stored_fields(fields)
        name = self._collection_name(tag, vectors, fields)
        if self._is_complete(name, len(vectors)):
            log.info("reusing Milvus collection %s (%d vectors)", name, len(vectors))
        else:
            self._create(name, vectors.shape[1])
            self._insert(name, vectors, fields)
        self.collection, self._rows, self._dim = name, len(vectors), vectors.shape[1]
        return name

    def attach(self, name: str) -> bool:
        """Search the existing collection `name` (made earlier by `build`) without rebuilding it; False when
        there is no such collection. The reduction must need no fitting (`Identity`): a fitted one lives
        only in the process that built the collection."""
        if not isinstance(self.reduction, Identity):
            raise ValueError(f"attach needs reduction=none, not {self.reduction.describe()}: use build")
        if not self.client.has_collection(name):
            return False
        self.client.load_collection(name)
        fields = self.client.describe_collection(name)["fields"]
        dim = next(int(f["params"]["dim"]) for f in fields if f["name"] == VECTOR)
        count = self.client.query(name, filter="", output_fields=["count(*)"], consistency_level="Strong")
        built = self.client.describe_index(name, VECTOR).get("params", {})
        self.nlist_used = int(built.get("nlist", self.nlist))  # what build() chose for this gallery
        self.collection, self._rows, self._dim = name, int(count[0]["count(*)"]), dim
        return True

    def scan(self, fields: Sequence[str], batch_size: int = 1000) -> Iterator[list[dict]]:
        """Every stored row of the collection in row order, `batch_size` rows at a time, with `fields`
        (any of PRIMARY_KEY, STORED_FIELDS and VECTOR)."""
        if self.collection is None:
            raise RuntimeError("scan before build or attach")
        for start in range(0, self._rows, batch_size):
            expr = f"{PRIMARY_KEY} >= {start} and {PRIMARY_KEY} < {start + batch_size}"
            rows = self.client.query(self.collection, filter=expr, output_fields=[PRIMARY_KEY, *fields])
            yield sorted(rows, key=lambda row: row[PRIMARY_KEY])

    def search(
        self,
        embeddings: np.ndarray,
        k: int,
        filter_values: Sequence[str | None] | None = None,
        filter_field: str = "label",
    ) -> SearchResult:
        """Top-`k` gallery rows for each query; with `filter_values`, query i only sees gallery items whose
        `filter_field` equals filter_values[i] (None: no filter for that query)."""
        if self.collection is None:
            raise RuntimeError("search before build")
        if filter_field not in STORED_FIELDS:
            raise UserError(f"cannot filter on {filter_field!r}; stored fields: {', '.join(STORED_FIELDS)}")
        vectors = self.transform(embeddings)
        rows = np.full((len(vectors), k), -1, dtype=np.int64)
        distances = np.full((len(vectors), k), np.nan, dtype=np.float32)
        groups: dict[str | None, list[int]] = defaultdict(list)
        for i, value in enumerate(filter_values if filter_values is not None else [None] * len(vectors)):
            groups[value].append(i)
        for value, members in groups.items():
            expr = "" if value is None else f"{filter_field} == {json.dumps(str(value))}"
            for start in range(0, len(members), self._batch_size()):
                chunk = members[start : start + self._batch_size()]
                hits = self.client.search(
                    self.collection,
                    data=vectors[chunk],
                    limit=k,
                    filter=expr,
                    output_fields=[PRIMARY_KEY],  # without it Milvus Lite returns every vector too
                    search_params={"params": self._search_params(k)},
                )
                for query, query_hits in zip(chunk, hits, strict=True):
                    for rank, hit in enumerate(query_hits):
                        rows[query, rank] = hit[PRIMARY_KEY]
                        distances[query, rank] = hit["distance"]
        return SearchResult(rows, distances)

    def _batch_size(self) -> int:
        if self.is_lite and self.index_type == "FLAT":
            return max(1, min(self.search_batch_size, LITE_FLAT_BYTES // max(1, self._rows * self._dim * 4)))
        return self.search_batch_size

    def _build_params(self) -> dict[str, int]:
        return {
            "IVF_FLAT": {"nlist": self.nlist_used},
            "FLAT": {},
            "HNSW": {"M": self.M, "efConstruction": self.efConstruction},
        }[self.index_type]

    def _search_params(self, k: int) -> dict[str, int]:
        return {"IVF_FLAT": {"nprobe": self.nprobe}, "FLAT": {}, "HNSW": {"ef": max(self.ef, k)}}[
            self.index_type
        ]

    def _collection_name(self, tag: str, vectors: np.ndarray, fields: pd.DataFrame) -> str:
        digest = hashlib.sha256()
        digest.update(
            json.dumps([self.index_type, self.metric, self._build_params(), vectors.shape]).encode()
        )
        digest.update(np.ascontiguousarray(vectors).tobytes())
        digest.update(fields.to_csv(index=False).encode())
        tag = re.sub(r"\W", "_", tag)[:200]
        return f"{tag if re.match(r'[A-Za-z_]', tag) else 'c_' + tag}_{digest.hexdigest()[:16]}"

    def _is_complete(self, name: str, rows: int) -> bool:
        if not self.client.has_collection(name):
            return False
        self.client.load_collection(name)
        count = self.client.query(name, filter="", output_fields=["count(*)"], consistency_level="Strong")
        if count and count[0]["count(*)"] == rows:
            return True
        log.warning("Milvus collection %s is incomplete (a run stopped while indexing): rebuilding", name)
        self.client.drop_collection(name)
        return False

    def _create(self, name: str, dim: int) -> None:
        schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field(PRIMARY_KEY, DataType.INT64, is_primary=True)
        for field in STORED_FIELDS:
            schema.add_field(
                field, DataType.VARCHAR, max_length=MAX_FIELD_BYTES.get(field, DEFAULT_FIELD_BYTES)
            )
        schema.add_field(VECTOR, DataType.FLOAT_VECTOR, dim=dim)
        index_params = self.client.prepare_index_params()
        params = self._build_params()
        # Milvus Lite 3.x ignores build parameters unless nested under "params"; a server takes them plain.
        index_params.add_index(
            VECTOR,
            index_type=self.index_type,
            metric_type=self.metric,
            params={"params": params} if self.is_lite and params else params,
        )
        self.client.create_collection(name, schema=schema, index_params=index_params)

    def _insert(self, name: str, vectors: np.ndarray, fields: pd.DataFrame) -> None:
        records = fields.to_dict("records")
        with tqdm(total=len(vectors), desc="index", unit="vec", dynamic_ncols=True) as bar:
            for start in range(0, len(vectors), self.insert_batch_size):
                stop = min(start + self.insert_batch_size, len(vectors))
                batch = [
                    {PRIMARY_KEY: row, VECTOR: vectors[row], **records[row]} for row in range(start, stop)
                ]
                self.client.insert(name, batch)
                bar.update(stop - start)
        # Unflushed rows are brute-forced in Python by Milvus Lite (seconds per query): flush first.
        self.client.flush(name)
        self._wait_until_indexed(name, len(vectors))
        self.client.load_collection(name)

    def _wait_until_indexed(self, name: str, rows: int) -> None:
        """A server builds the index asynchronously after flush; Milvus Lite reports done at once."""
        deadline = time.monotonic() + self.index_timeout_s
        while True:
            info = self.client.describe_index(name, VECTOR)
            if int(info.get("indexed_rows", rows)) >= rows:
                return
            if time.monotonic() > deadline:
                raise UserError(f"Milvus did not finish indexing {name} within {self.index_timeout_s:.0f} s")
            time.sleep(0.5)


def _stored_fields(fields: pd.DataFrame) -> pd.DataFrame:
    """The stored columns as strings, missing ones empty, each cut to its VARCHAR byte limit."""
    out = pd.DataFrame(index=range(len(fields)))
    for field in STORED_FIELDS:
        values = fields[field] if field in fields else pd.Series([""] * len(fields))
        limit = MAX_FIELD_BYTES.get(field, DEFAULT_FIELD_BYTES)
        out[field] = [_truncate("" if pd.isna(v) else str(v), limit) for v in values]
    return out


def _truncate(text: str, max_bytes: int) -> str:
    return text.encode()[:max_bytes].decode(errors="ignore")
