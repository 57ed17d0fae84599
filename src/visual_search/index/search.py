"""Searching a collection: top-K rows per query vector, optionally within a category (a filter on a
stored field), batched; and reading the stored rows back."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
from pymilvus import MilvusClient

from visual_search.errors import UserError
from visual_search.index.schema import ROW, STORED_FIELDS


@dataclass(frozen=True)
class SearchResult:
    """Top-K hits per query: gallery rows (-1 where fewer than K came back) and Milvus distances
    (squared L2 for L2; similarity for IP and COSINE; NaN where nothing came back)."""

    rows: np.ndarray
    distances: np.ndarray


def search(
    client: MilvusClient,
    collection: str,
    vectors: np.ndarray,
    k: int,
    search_params: dict[str, int],
    batch_size: int,
    filter_values: Sequence[str | None] | None = None,
    filter_field: str = "label",
) -> SearchResult:
    """Top-`k` gallery rows for each vector, `batch_size` vectors per request; with `filter_values`,
    query i only sees gallery items whose `filter_field` equals filter_values[i] (None: no filter)."""
    if filter_field not in STORED_FIELDS:
        raise UserError(f"cannot filter on {filter_field!r}; stored fields: {', '.join(STORED_FIELDS)}")
    rows = np.full((len(vectors), k), -1, dtype=np.int64)
    distances = np.full((len(vectors), k), np.nan, dtype=np.float32)
    groups: dict[str | None, list[int]] = defaultdict(list)
    for i, value in enumerate(filter_values if filter_values is not None else [None] * len(vectors)):
        groups[value].append(i)
    for value, members in groups.items():
        expr = "" if value is None else f"{filter_field} == {json.dumps(str(value))}"
        for start in range(0, len(members), batch_size):
            chunk = members[start : start + batch_size]
            hits = client.search(
                collection,
                data=vectors[chunk],
                limit=k,
                filter=expr,
                output_fields=[ROW],  # without it Milvus Lite returns every vector too
                search_params={"params": search_params},
            )
            for query, query_hits in zip(chunk, hits, strict=True):
                for rank, hit in enumerate(query_hits):
                    rows[query, rank] = hit["entity"][ROW]
                    distances[query, rank] = hit["distance"]
    return SearchResult(rows, distances)


def scan(
    client: MilvusClient, collection: str, rows: int, fields: Sequence[str], batch_size: int = 1000
) -> Iterator[list[dict]]:
    """Every stored row of the collection in row order, `batch_size` rows at a time, with `fields`."""
    for start in range(0, rows, batch_size):
        expr = f"{ROW} >= {start} and {ROW} < {start + batch_size}"
        found = client.query(collection, filter=expr, output_fields=[ROW, *fields])
        yield sorted(found, key=lambda row: row[ROW])
