"""Speed of a pipeline: end-to-end queries one at a time (as a user sends them), the query set batched,
search alone, and the encoder alone."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

import numpy as np

from visual_search.data.images import ImageLoadError, load_rgb
from visual_search.embed.embedder import Embedded
from visual_search.index.search import SearchResult
from visual_search.metrics.timing import encoder_throughput, latency_summary
from visual_search.pipeline import Pipeline


def time_single_queries(
    pipeline: Pipeline, paths: Sequence[str], k: int, filter_values: Sequence[str | None] | None = None
) -> dict[str, float]:
    """Decode + crop + preprocess + embed + search, one query at a time (after one untimed warm-up)."""
    seconds = []
    for i, path in enumerate(paths):
        start = time.perf_counter()
        try:
            image = load_rgb(path)
        except ImageLoadError:
            continue
        pixels, _ = pipeline.prepare(image)
        pipeline.search(
            pipeline.encode(pixels[None]), k, None if filter_values is None else [filter_values[i]]
        )
        if i:
            seconds.append(time.perf_counter() - start)
    return latency_summary(seconds, "single")


def time_single_searches(
    pipeline: Pipeline, embeddings: np.ndarray, k: int, filter_values: Sequence[str | None] | None = None
) -> dict[str, float]:
    """Search alone, one query embedding at a time."""
    seconds = []
    for i in range(len(embeddings)):
        start = time.perf_counter()
        pipeline.search(embeddings[i : i + 1], k, None if filter_values is None else [filter_values[i]])
        seconds.append(time.perf_counter() - start)
    return latency_summary(seconds, "search")


def timed_search(
    pipeline: Pipeline, embeddings: np.ndarray, k: int, filter_values: Sequence[str | None] | None
) -> tuple[SearchResult, float]:
    """The batched search of every query and its seconds (after one untimed search: Milvus Lite builds
    its index on the first one)."""
    if len(embeddings):
        pipeline.search(embeddings[:1], k)
    start = time.perf_counter()
    result = pipeline.search(embeddings, k, filter_values)
    return result, time.perf_counter() - start


def speed(
    pipeline: Pipeline,
    query: Embedded,
    filter_values: Sequence[str | None] | None,
    search_seconds: float,
    k: int,
    timing: Mapping[str, int],
) -> dict[str, float]:
    """QPS and latency end to end (`timing.single_queries` one at a time, and the query set batched), of
    the search alone, and (with `timing.forward_batches`) of the encoder forward alone."""
    n = timing["single_queries"]
    values = filter_values[:n] if filter_values is not None else None
    results = {
        **time_single_queries(pipeline, query.frame["image"].tolist()[:n], k, values),
        "qps_batch": len(query.frame) / (query.seconds + search_seconds),
        "qps_search": len(query.frame) / search_seconds,
        **time_single_searches(pipeline, query.embeddings[:n], k, values),
    }
    if timing["forward_batches"]:
        batch_size = pipeline.embedder.batch_size
        results["encoder_ips"] = encoder_throughput(pipeline.encoder, batch_size, timing["forward_batches"])
    return results
