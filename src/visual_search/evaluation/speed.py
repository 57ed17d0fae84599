"""Speed of a pipeline, measured in rounds and reported with its spread (median, min, max) beside the
machine's load: end-to-end queries one at a time (as a user sends them), the query set batched, search
alone (one at a time and batched), and the encoder alone."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from itertools import pairwise

import numpy as np

from visual_search.data.images import ImageLoadError, load_rgb
from visual_search.embed.embedder import Embedded
from visual_search.index.search import SearchResult
from visual_search.metrics.timing import encoder_throughput, latency_summary, machine_load, spread
from visual_search.pipeline import Pipeline

Filters = Sequence[str | None] | None


STAGES = ("decode", "prepare", "encode", "search")


def time_single_queries(
    pipeline: Pipeline, paths: Sequence[str], k: int, filter_values: Filters = None, rounds: int = 1
) -> dict[str, float]:
    """Decode + crop + preprocess + embed + search, one query at a time, `rounds` times over `paths`
    (after one untimed warm-up query); unreadable images are skipped. Beside the end-to-end figures,
    each stage's median (`single_<stage>_p50_ms`: decode, prepare = crop + preprocess, encode, search)."""
    warm_up, timed = True, []
    stages: dict[str, list[float]] = {stage: [] for stage in STAGES}
    for _ in range(rounds):
        seconds = []
        for i, path in enumerate(paths):
            start = time.perf_counter()
            try:
                image = load_rgb(path)
            except ImageLoadError:
                continue
            decoded = time.perf_counter()
            pixels, _ = pipeline.prepare(image)
            prepared = time.perf_counter()
            embeddings = pipeline.encode(pixels[None])
            encoded = time.perf_counter()
            pipeline.search(embeddings, k, None if filter_values is None else [filter_values[i]])
            end = time.perf_counter()
            if not warm_up:
                seconds.append(end - start)
                marks = (start, decoded, prepared, encoded, end)
                for stage, (begin, finish) in zip(STAGES, pairwise(marks), strict=True):
                    stages[stage].append(finish - begin)
            warm_up = False
        timed.append(seconds)
    medians = {f"single_{s}_p50_ms": 1000 * float(np.median(v)) for s, v in stages.items() if v}
    return latency_summary(timed, "single") | medians


def time_single_searches(
    pipeline: Pipeline, embeddings: np.ndarray, k: int, filter_values: Filters = None, rounds: int = 1
) -> dict[str, float]:
    """Search alone, one query embedding at a time, `rounds` times over `embeddings`."""
    timed = []
    for _ in range(rounds):
        seconds = []
        for i in range(len(embeddings)):
            start = time.perf_counter()
            pipeline.search(embeddings[i : i + 1], k, None if filter_values is None else [filter_values[i]])
            seconds.append(time.perf_counter() - start)
        timed.append(seconds)
    return latency_summary(timed, "search")


def timed_search(
    pipeline: Pipeline, embeddings: np.ndarray, k: int, filter_values: Filters
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
    embed_again: Callable[[], Embedded],
    filter_values: Filters,
    search_seconds: float,
    k: int,
    timing: Mapping[str, int],
) -> dict[str, float]:
    """QPS and latency in `timing.rounds` rounds: end to end (`timing.single_queries` one at a time, and
    the query set batched: `query`, embedded and searched once already in `search_seconds`, then
    `embed_again` and searched again), of the search alone (one at a time and batched), and (with
    `timing.forward_batches`) of the encoder forward alone; with the load average beside them."""
    n, rounds = timing["single_queries"], timing.get("rounds", 1)
    values = filter_values[:n] if filter_values is not None else None
    batch_seconds, search_batch_seconds = [query.seconds + search_seconds], [search_seconds]
    for _ in range(rounds - 1):
        again = embed_again()
        _, seconds = timed_search(pipeline, again.embeddings, k, filter_values)
        batch_seconds.append(again.seconds + seconds)
        search_batch_seconds.append(timed_search(pipeline, query.embeddings, k, filter_values)[1])
    queries = len(query.frame)
    results = {
        **time_single_queries(pipeline, query.frame["image"].tolist()[:n], k, values, rounds),
        **spread([queries / s for s in batch_seconds], "qps_batch"),
        **spread([queries / s for s in search_batch_seconds], "qps_search_batch"),
        **time_single_searches(pipeline, query.embeddings[:n], k, values, rounds),
    }
    if timing["forward_batches"]:
        batch_size = pipeline.embedder.batch_size
        results |= encoder_throughput(pipeline.encoder, batch_size, timing["forward_batches"], rounds)
    return results | machine_load()
