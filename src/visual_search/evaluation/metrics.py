"""Retrieval metrics over an exact (brute-force) ranking of the whole gallery."""

from __future__ import annotations

import numpy as np
import torch


def rank_gallery(queries: torch.Tensor, gallery: torch.Tensor, metric: str = "L2") -> torch.Tensor:
    """Gallery positions sorted best first for each query (ties keep gallery order)."""
    if metric == "L2":
        scores = -torch.cdist(queries.float(), gallery.float())
    elif metric in ("IP", "COSINE"):
        if metric == "COSINE":
            queries = torch.nn.functional.normalize(queries.float(), dim=1)
            gallery = torch.nn.functional.normalize(gallery.float(), dim=1)
        scores = queries.float() @ gallery.float().T
    else:
        raise ValueError(f"metric={metric!r}; choose one of L2, IP, COSINE")
    return torch.argsort(scores, dim=1, descending=True, stable=True)


def average_precision(relevant: np.ndarray) -> float:
    """AP of one ranked relevance vector (1 = relevant): mean precision at each relevant position."""
    hits = np.flatnonzero(relevant)
    if hits.size == 0:
        return float("nan")
    return float(np.mean(np.arange(1, hits.size + 1) / (hits + 1)))


def mean_average_precision(
    queries: torch.Tensor,
    query_labels: np.ndarray,
    gallery: torch.Tensor,
    gallery_labels: np.ndarray,
    metric: str = "L2",
) -> float:
    """mAP over the full gallery ranking; relevant = same label. Queries without any relevant gallery
    item are left out (their AP is undefined)."""
    order = rank_gallery(queries, gallery, metric).numpy()
    relevant = np.asarray(gallery_labels)[order] == np.asarray(query_labels)[:, None]
    aps = np.array([average_precision(row) for row in relevant])
    return float(np.nanmean(aps)) if np.isfinite(aps).any() else float("nan")
