"""Retrieval metrics: mAP over an exact ranking of the whole gallery, and top-K metrics of an index's answers.

Top-K answers are (Q, K) int arrays of gallery row positions, padded with -1 where fewer than K came back
(e.g. under a category filter); relevant = same label as the query.
"""

from __future__ import annotations

import numpy as np
import torch


def similarity(queries: torch.Tensor, gallery: torch.Tensor, metric: str = "L2") -> torch.Tensor:
    """(Q, G) scores, higher = more similar (L2: minus the distance; COSINE: IP of normalised vectors)."""
    queries, gallery = queries.float(), gallery.float()
    if metric == "L2":
        return -torch.cdist(queries, gallery)
    if metric == "COSINE":
        queries = torch.nn.functional.normalize(queries, dim=1)
        gallery = torch.nn.functional.normalize(gallery, dim=1)
    elif metric != "IP":
        raise ValueError(f"metric={metric!r}; choose one of L2, IP, COSINE")
    return queries @ gallery.T


def rank_gallery(queries: torch.Tensor, gallery: torch.Tensor, metric: str = "L2") -> torch.Tensor:
    """Gallery positions sorted best first for each query (ties keep gallery order)."""
    return torch.argsort(similarity(queries, gallery, metric), dim=1, descending=True, stable=True)


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
    return _map_of_ranking(rank_gallery(queries, gallery, metric).numpy(), query_labels, gallery_labels)


def leave_one_out_map(embeddings: torch.Tensor, labels: np.ndarray, metric: str = "L2") -> float:
    """mAP of every item querying all the others (validation on one labelled set, no gallery split)."""
    scores = similarity(embeddings, embeddings, metric).fill_diagonal_(float("-inf"))
    order = torch.argsort(scores, dim=1, descending=True, stable=True)[:, :-1]  # itself ranks last: drop
    return _map_of_ranking(order.numpy(), labels, labels)


def _map_of_ranking(order: np.ndarray, query_labels: np.ndarray, gallery_labels: np.ndarray) -> float:
    """Mean AP of (Q, G) gallery rankings; queries without a relevant item are left out."""
    relevant = np.asarray(gallery_labels)[order] == np.asarray(query_labels)[:, None]
    aps = np.array([average_precision(row) for row in relevant])
    return float(np.nanmean(aps)) if np.isfinite(aps).any() else float("nan")


def _stable_top_k(scores: torch.Tensor, k: int) -> torch.Tensor:
    """Positions of the k highest scores per row, best first; ties go to the lower position."""
    kth = scores.topk(k, dim=1).values[:, -1:]
    above = scores > kth
    tied = scores == kth
    tied &= tied.cumsum(dim=1) <= k - above.sum(dim=1, keepdim=True)
    chosen = (above | tied).nonzero()[:, 1].view(-1, k)  # row-major: ascending positions in each row
    order = scores.gather(1, chosen).sort(dim=1, descending=True, stable=True).indices
    return chosen.gather(1, order)


def exact_top_k(
    queries: torch.Tensor,
    gallery: torch.Tensor,
    k: int,
    metric: str = "L2",
    allowed: np.ndarray | None = None,
) -> np.ndarray:
    """Exact (brute-force) top-k gallery positions per query, best first, -1 padded; int64 (Q, k).

    ``allowed`` is an optional bool (Q, G) mask (a category filter): masked items are never returned, so a
    query with fewer than k allowed items gets -1 padding. Ties go to the lower gallery position, so without
    a mask this equals ``rank_gallery(...)[:, :k]``."""
    scores = similarity(queries, gallery, metric)
    if allowed is not None:
        scores = scores.masked_fill(~torch.from_numpy(np.asarray(allowed, dtype=bool)), float("-inf"))
    top = _stable_top_k(scores, min(k, scores.shape[1]))
    top = top.masked_fill(scores.gather(1, top) == float("-inf"), -1)
    out = np.full((scores.shape[0], k), -1, dtype=np.int64)
    out[:, : top.shape[1]] = top.numpy()
    return out


def topk_relevance(retrieved: np.ndarray, query_labels: np.ndarray, gallery_labels: np.ndarray) -> np.ndarray:
    """Bool (Q, K): retrieved[q, i] has the query's label; -1 padding is never relevant."""
    retrieved = np.asarray(retrieved)
    valid = retrieved >= 0
    labels = np.asarray(gallery_labels)[np.where(valid, retrieved, 0)]
    return valid & (labels == np.asarray(query_labels)[:, None])


def _mean(values: np.ndarray) -> float:
    """Mean as a float; NaN (no warning) when there is nothing to average."""
    return float(values.mean()) if values.size else float("nan")


def map_at_k(relevance: np.ndarray) -> float:
    """mAP@K (Towhee benchmark definition): AP@K = sum_{i<=K} precision@i * rel_i / hits in the top K,
    0 for a query without a hit in its top K. Same normalisation as torchmetrics' RetrievalMAP(top_k=K);
    dividing by the hits (not by min(K, relevant items)) means missed relevant items cost nothing."""
    relevance = np.asarray(relevance, dtype=bool)
    hits = relevance.cumsum(axis=1)
    precision = hits / np.arange(1, relevance.shape[1] + 1)
    ap = np.where(relevance, precision, 0.0).sum(axis=1) / np.maximum(relevance.sum(axis=1), 1)
    return _mean(ap)


def precision_at_k(relevance: np.ndarray) -> float:
    """Mean over queries of hits in the top K / K (-1 padding counts as a miss)."""
    relevance = np.asarray(relevance, dtype=bool)
    return _mean(relevance.sum(axis=1) / relevance.shape[1])


def recall_at_k(relevance: np.ndarray, num_relevant: np.ndarray) -> float:
    """Mean over queries of hits in the top K / relevant items in the whole gallery (IR recall)."""
    num_relevant = np.asarray(num_relevant)
    if (num_relevant < 1).any():
        raise ValueError("recall@K is undefined for a query without relevant gallery items; leave it out")
    return _mean(np.asarray(relevance, dtype=bool).sum(axis=1) / num_relevant)


def hit_rate_at_k(relevance: np.ndarray) -> float:
    """Fraction of queries with at least one hit in the top K (metric learning's "Recall@K")."""
    return _mean(np.asarray(relevance, dtype=bool).any(axis=1).astype(float))


def ann_recall(retrieved: np.ndarray, exact: np.ndarray) -> float:
    """Mean over queries of |retrieved ∩ exact| / valid entries of exact (the ANN index's recall of the
    exact top K); queries whose exact row is all -1 are left out."""
    retrieved, exact = np.asarray(retrieved), np.asarray(exact)
    valid = exact >= 0
    found = (exact[:, :, None] == retrieved[:, None, :]).any(axis=2) & valid
    keep = valid.any(axis=1)
    return _mean(found[keep].sum(axis=1) / valid[keep].sum(axis=1))


def count_relevant(query_labels: np.ndarray, gallery_labels: np.ndarray) -> np.ndarray:
    """Number of gallery items with each query's label."""
    return (np.asarray(query_labels)[:, None] == np.asarray(gallery_labels)[None, :]).sum(axis=1)


def topk_metrics(
    retrieved: np.ndarray, query_labels: np.ndarray, gallery_labels: np.ndarray, k: int
) -> dict[str, float]:
    """mAP@k, precision@k, recall@k and hit_rate@k of the first k columns of ``retrieved``.

    As in :func:`mean_average_precision`, queries whose label has no item in the whole gallery cannot be
    answered and are left out of every metric (all NaN when no query is left)."""
    retrieved = np.asarray(retrieved)
    if retrieved.shape[1] < k:
        raise ValueError(f"retrieved has {retrieved.shape[1]} columns, fewer than k={k}")
    num_relevant = count_relevant(query_labels, gallery_labels)
    keep = num_relevant > 0
    relevance = topk_relevance(retrieved[keep, :k], np.asarray(query_labels)[keep], gallery_labels)
    return {
        f"mAP@{k}": map_at_k(relevance),
        f"precision@{k}": precision_at_k(relevance),
        f"recall@{k}": recall_at_k(relevance, num_relevant[keep]),
        f"hit_rate@{k}": hit_rate_at_k(relevance),
    }
