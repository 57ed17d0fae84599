"""Retrieval quality of an indexed pipeline: exact full-ranking mAP, the top-K metrics of what the index
returned, how much of the exact top K the approximate index found, and how well query crops found their
targets."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import torch
from torchvision.ops import box_iou

from visual_search.detect import boxes as B
from visual_search.detect.crop import BOX_COLUMNS
from visual_search.embed.embedder import Embedded
from visual_search.index.search import SearchResult
from visual_search.metrics.retrieval import ann_recall, exact_top_k, mean_average_precision, topk_metrics

log = logging.getLogger(__name__)


def retrieval_quality(
    gallery_vectors: np.ndarray,
    gallery: Embedded,
    query_vectors: np.ndarray,
    query: Embedded,
    result: SearchResult,
    allowed_labels: np.ndarray | None,
    metric: str,
    k: int,
) -> dict[str, float]:
    """mAP of the exact ranking of the indexed vectors, the top-K metrics of the index's answers, and
    their recall of the exact top K under the same filter (`allowed_labels`: the class each query may
    see, None: all)."""
    g, q = torch.from_numpy(gallery_vectors), torch.from_numpy(query_vectors)
    full = mean_average_precision(q, query.labels, g, gallery.labels, metric)
    allowed = None if allowed_labels is None else gallery.labels[None, :] == allowed_labels[:, None]
    exact = exact_top_k(q, g, k, metric, allowed)
    return {
        "mAP": full,
        **topk_metrics(result.rows, query.labels, gallery.labels, k),
        f"ann_recall@{k}": ann_recall(result.rows, exact),
    }


def crop_quality(query: Embedded, queries: pd.DataFrame, padding: float) -> dict[str, float]:
    """How well the query crops found the scene targets: mean IoU of each crop with the target's true box
    padded alike (1 = the true box exactly), and the share of crops with IoU >= 0.5. Empty without true
    boxes (item queries) or crop boxes."""
    if "box" not in queries or query.boxes is None:
        return {}
    crops = query.boxes.loc[queries.index]
    truth = torch.cat(
        [
            B.pad(box, padding, width, height)
            for box, width, height in zip(queries["box"], crops["width"], crops["height"], strict=True)
        ]
    )
    iou = box_iou(torch.tensor(crops[list(BOX_COLUMNS)].to_numpy(dtype="float32")), truth).diagonal()
    found = {"crop_iou": float(iou.mean()), "crop_iou>=0.5": float((iou >= 0.5).float().mean())}
    log.info(
        "query crops vs the true target boxes: mean IoU %.4f, %.1f%% with IoU >= 0.5",
        found["crop_iou"], 100 * found["crop_iou>=0.5"],
    )  # fmt: skip
    return found
