"""Speed measures: latency summaries of requests timed one after another, and encoder throughput."""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
import torch


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
def encoder_throughput(encoder: torch.nn.Module, batch_size: int, repeats: int = 3) -> float:
    """Forward-only images per second on random input of the encoder's size (after one warm-up batch)."""
    encoder.eval()
    size = encoder.preprocess.input_size
    images = torch.randn(batch_size, 3, size, size)
    encoder(images)
    start = time.perf_counter()
    for _ in range(repeats):
        encoder(images)
    return batch_size * repeats / (time.perf_counter() - start)
