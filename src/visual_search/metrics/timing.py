"""Speed measures: figures measured in rounds (median and range), latency summaries of requests timed one
after another, encoder throughput, and the machine's load while they were measured."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence

import numpy as np
import torch


def spread(values: Sequence[float], name: str) -> dict[str, float]:
    """A figure measured in rounds: `name` (the median round), `name_min` and `name_max`."""
    if not values:
        return {}
    return {
        name: float(np.median(values)),
        f"{name}_min": float(min(values)),
        f"{name}_max": float(max(values)),
    }


def latency_summary(rounds: Sequence[Sequence[float]], prefix: str) -> dict[str, float]:
    """Requests timed one after another, in rounds (seconds each): QPS per round as `spread`s, and
    p50/p95 latency in milliseconds over every request."""
    rounds = [r for r in rounds if len(r)]
    if not rounds:
        return {}
    ms = np.concatenate([np.asarray(r) for r in rounds]) * 1000
    return {
        **spread([len(r) / float(np.sum(r)) for r in rounds], f"qps_{prefix}"),
        f"{prefix}_p50_ms": float(np.percentile(ms, 50)),
        f"{prefix}_p95_ms": float(np.percentile(ms, 95)),
    }


@torch.inference_mode()
def encoder_throughput(
    encoder: torch.nn.Module, batch_size: int, repeats: int = 3, rounds: int = 1
) -> dict[str, float]:
    """Forward-only images per second on random input of the encoder's size (after one warm-up batch),
    `repeats` batches per round: `encoder_ips` as a `spread`."""
    encoder.eval()
    size = encoder.preprocess.input_size
    images = torch.randn(batch_size, 3, size, size)
    encoder(images)
    per_round = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(repeats):
            encoder(images)
        per_round.append(batch_size * repeats / (time.perf_counter() - start))
    return spread(per_round, "encoder_ips")


def machine_load() -> dict[str, float]:
    """The load average over the last minute and the CPUs this process may use: how busy the machine
    was while the figures beside them were measured."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return {"load_1m": os.getloadavg()[0], "cpus": float(cpus)}
