"""What a collection holds and how it is named: the stored fields, the index parameters, the layout that
must match before a collection is reused, and the content-addressed collection name."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd
from pymilvus import DataType, MilvusClient

from visual_search.errors import UserError

SCHEMA_VERSION = 2  # 2: item_id primary key, upserts, row fingerprints (1: row primary key, inserts)
PRIMARY_KEY = "item_id"
ROW = "row"  # the item's position in the gallery table: what searches return
VECTOR = "vector"
FINGERPRINT = "fingerprint"  # digest of a row's content: an unchanged row is not written again
STORED_FIELDS = ("item_id", "label", "category", "semantic_category", "title")  # label: relevance class
MAX_FIELD_BYTES = {"title": 1024}  # VARCHAR limits (bytes); longer values are truncated
DEFAULT_FIELD_BYTES = 512
ENCODER_PROPERTY = "visual_search.encoder"  # collection property: what made the vectors
INDEX_TYPES = ("IVF_FLAT", "FLAT", "HNSW")
METRICS = ("L2", "IP", "COSINE")
MIN_POINTS_PER_LIST = 39  # FAISS warns and clusters poorly below this many training vectors per list


@dataclass
class IndexSpec:
    """The vector index: type, metric and their parameters (`nlist_used`: the lists actually built, lowered
    for galleries too small for `nlist`, or those of an existing collection)."""

    index_type: str = "IVF_FLAT"
    metric: str = "L2"
    nlist: int = 128
    nprobe: int = 16
    M: int = 16
    efConstruction: int = 200
    ef: int = 64

    def __post_init__(self) -> None:
        if self.index_type not in INDEX_TYPES:
            raise UserError(f"index.index_type={self.index_type!r}; choose one of {', '.join(INDEX_TYPES)}")
        if self.metric not in METRICS:
            raise UserError(f"index.metric={self.metric!r}; choose one of {', '.join(METRICS)}")
        for key in ("nlist", "nprobe", "M", "efConstruction", "ef"):
            check_positive(key, getattr(self, key))
        self.nlist_used = self.nlist

    def fit_to(self, rows: int) -> bool:
        """Lower `nlist_used` to what `rows` vectors can train; True when it had to."""
        self.nlist_used = min(self.nlist, max(1, rows // MIN_POINTS_PER_LIST))
        return self.index_type == "IVF_FLAT" and self.nlist_used < self.nlist

    def build_params(self) -> dict[str, int]:
        return {
            "IVF_FLAT": {"nlist": self.nlist_used},
            "FLAT": {},
            "HNSW": {"M": self.M, "efConstruction": self.efConstruction},
        }[self.index_type]

    def search_params(self, k: int) -> dict[str, int]:
        return {"IVF_FLAT": {"nprobe": self.nprobe}, "FLAT": {}, "HNSW": {"ef": max(self.ef, k)}}[
            self.index_type
        ]

    def describe(self) -> str:
        """Type, parameters and metric in one short string (for logs and the leaderboard)."""
        params = {
            "IVF_FLAT": f"nlist={self.nlist_used},nprobe={self.nprobe}",
            "FLAT": "",
            "HNSW": f"M={self.M},efConstruction={self.efConstruction},ef={self.ef}",
        }[self.index_type]
        return f"{self.index_type}({params}) {self.metric}"


def check_positive(key: str, value: object) -> None:
    """UserError unless `value` is a positive integer (the config key `index.<key>`)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UserError(f"index.{key}={value!r}; expected a positive integer")


@dataclass(frozen=True)
class Layout:
    """What a collection holds: vector dimension, metric, index type and the encoder that made them."""

    dim: int
    metric: str
    index_type: str
    encoder: str

    def describe(self) -> str:
        return f"{self.dim}-d {self.metric} {self.index_type} vectors ({self.encoder or 'unknown encoder'})"


def collection_name(tag: str, spec: IndexSpec, vectors: np.ndarray, fields: pd.DataFrame) -> str:
    """`tag` plus a digest of the vectors, the stored fields and the build parameters."""
    digest = hashlib.sha256()
    digest.update(
        json.dumps(
            [SCHEMA_VERSION, spec.index_type, spec.metric, spec.build_params(), vectors.shape]
        ).encode()
    )
    digest.update(np.ascontiguousarray(vectors).tobytes())
    digest.update(fields.to_csv(index=False).encode())
    tag = re.sub(r"\W", "_", tag)[:200]
    return f"{tag if re.match(r'[A-Za-z_]', tag) else 'c_' + tag}_{digest.hexdigest()[:16]}"


def read_layout(client: MilvusClient, name: str) -> Layout:
    """What an existing collection holds (a collection from an older schema has no item_id key)."""
    schema = client.describe_collection(name)
    fields = {field["name"]: field for field in schema["fields"]}
    index = client.describe_index(name, VECTOR) if VECTOR in fields else {}
    dim = int(fields[VECTOR]["params"]["dim"]) if VECTOR in fields else 0
    encoder = schema.get("properties", {}).get(ENCODER_PROPERTY, "")
    if not fields.get(PRIMARY_KEY, {}).get("is_primary") or FINGERPRINT not in fields:
        encoder = "made by another program or an older version"
    return Layout(dim, index.get("metric_type", ""), index.get("index_type", ""), encoder)


def create_collection(client: MilvusClient, name: str, layout: Layout, spec: IndexSpec) -> None:
    """A new collection with the stored fields, row, fingerprint and vector, indexed as `spec` says."""
    schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
    for field in STORED_FIELDS:
        schema.add_field(
            field,
            DataType.VARCHAR,
            max_length=MAX_FIELD_BYTES.get(field, DEFAULT_FIELD_BYTES),
            is_primary=field == PRIMARY_KEY,
        )
    schema.add_field(ROW, DataType.INT64)
    schema.add_field(FINGERPRINT, DataType.VARCHAR, max_length=32)
    schema.add_field(VECTOR, DataType.FLOAT_VECTOR, dim=layout.dim)
    index_params = client.prepare_index_params()
    params = spec.build_params()
    # Nested under "params": Milvus Lite 3.x (file or gRPC server) silently ignores them otherwise, and a
    # Milvus server takes both forms.
    index_params.add_index(
        VECTOR,
        index_type=spec.index_type,
        metric_type=spec.metric,
        params={"params": params} if params else params,
    )
    client.create_collection(name, schema=schema, index_params=index_params)
    client.alter_collection_properties(name, properties={ENCODER_PROPERTY: layout.encoder})


def built_nlist(client: MilvusClient, name: str, default: int) -> int:
    """The nlist the collection's index was built with (reported as a string by a server)."""
    built = client.describe_index(name, VECTOR)
    return int(built.get("params", built).get("nlist", default))


def stored_fields(fields: pd.DataFrame) -> pd.DataFrame:
    """The stored columns as strings, missing ones empty, each cut to its VARCHAR byte limit; item ids
    must be unique and fit (they key the rows: cutting one could merge two items)."""
    out = pd.DataFrame(index=range(len(fields)))
    for field in STORED_FIELDS:
        values = fields[field] if field in fields else pd.Series([""] * len(fields))
        limit = MAX_FIELD_BYTES.get(field, DEFAULT_FIELD_BYTES)
        out[field] = [_truncate("" if pd.isna(v) else str(v), limit) for v in values]
    ids = fields[PRIMARY_KEY].astype(str) if PRIMARY_KEY in fields else pd.Series([""] * len(fields))
    too_long = [item for item in ids if len(item.encode()) > DEFAULT_FIELD_BYTES]
    if too_long:
        raise UserError(f"item_id longer than {DEFAULT_FIELD_BYTES} bytes: {too_long[0][:60]}...")
    if (ids == "").any():
        raise UserError(f"{int((ids == '').sum())} gallery row(s) without an item_id: cannot index them")
    duplicated = ids[ids.duplicated()].unique()
    if len(duplicated):
        raise UserError(
            f"{len(duplicated)} duplicate item_id(s) in the gallery (e.g. {', '.join(duplicated[:3])}): "
            "each item must have its own id"
        )
    return out


def _truncate(text: str, max_bytes: int) -> str:
    return text.encode()[:max_bytes].decode(errors="ignore")
