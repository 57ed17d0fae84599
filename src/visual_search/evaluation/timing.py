"""Speed: end-to-end queries one at a time (as a user sends them), search alone, and the encoder alone."""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
import torch

from visual_search.data.images import ImageLoadError, load_rgb
from visual_search.data.transforms import Transform
from visual_search.encoders.base import Encoder
from visual_search.index.milvus import MilvusIndex


def latency_summary(seconds: Sequence[float], prefix: str) -> dict[str, float]:
    """QPS (one request after another) and p50/p95 latency in milliseconds."""
    if not seconds:
        return {}
    ms = np.asarray(seconds) * 1000
    return {
        f"qps_{prefix}": float(1000 / ms.mean()),
        f"{prefix}_p50_ms": float(np.percentile(ms, 50)),
        f"{prefix}_p95_ms": float(np.percentile(ms, 95)),
    }


@torch.inference_mode()
def time_single_queries(
    encoder: Encoder,
    transform: Transform,
    index: MilvusIndex,
    paths: Sequence[str],
    k: int,
    filter_values: Sequence[str | None] | None = None,
) -> dict[str, float]:
    """Decode + preprocess + embed + search, one query at a time (after one untimed warm-up query)."""
    encoder.eval()
    seconds = []
    for i, path in enumerate(paths):
        start = time.perf_counter()
        try:
            image = transform(load_rgb(path))
        except ImageLoadError:
            continue
        embedding = encoder(image[None]).float().numpy()
        index.search(embedding, k, None if filter_values is None else [filter_values[i]])
        if i:
            seconds.append(time.perf_counter() - start)
    return latency_summary(seconds, "single")


def time_single_searches(
    index: MilvusIndex,
    embeddings: np.ndarray,
    k: int,
    filter_values: Sequence[str | None] | None = None,
) -> dict[str, float]:
    """Search alone, one query vector at a time."""
    seconds = []
    for i in range(len(embeddings)):
        start = time.perf_counter()
        index.search(embeddings[i : i + 1], k, None if filter_values is None else [filter_values[i]])
        seconds.append(time.perf_counter() - start)
    return latency_summary(seconds, "search")


@torch.inference_mode()
def encoder_throughput(encoder: Encoder, batch_size: int, repeats: int = 3) -> float:
    """Forward-only images per second on random input of the encoder's size (after one warm-up batch)."""
    encoder.eval()
    size = encoder.preprocess.input_size
    images = torch.randn(batch_size, 3, size, size)
    encoder(images)
    start = time.perf_counter()
    for _ in range(repeats):
        encoder(images)
    return batch_size * repeats / (time.perf_counter() - start)
