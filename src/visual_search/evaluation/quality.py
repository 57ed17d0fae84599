"""Retrieval quality of an indexed pipeline: exact full-ranking mAP, the top-K metrics of what the index
returned, how much of the exact top K the approximate index found, and how well query crops found their
targets."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch
from torchvision.ops import box_iou

from visual_search.detect import boxes as B
from visual_search.detect.crop import BOX_COLUMNS
from visual_search.embed.embedder import Embedded
from visual_search.index.search import SearchResult
from visual_search.metrics.retrieval import ann_recall, exact_top_k, mean_average_precision, topk_metrics
from visual_search.pipeline import Pipeline

log = logging.getLogger(__name__)


def retrieval_quality(
    pipeline: Pipeline,
    gallery: Embedded,
    query: Embedded,
    result: SearchResult,
    filter_values: Sequence[str] | None,
    k: int,
) -> dict[str, float]:
    """mAP of the exact ranking of the indexed vectors, the top-K metrics of the index's answers, and
    their recall of the exact top K under the same filter (`filter_values`: the label value each query
    searched, None: all)."""
    g, q = (torch.from_numpy(pipeline.vectors(e.embeddings)) for e in (gallery, query))
    metric = pipeline.index.metric
    full = mean_average_precision(q, query.labels, g, gallery.labels, metric)
    allowed = None
    if filter_values is not None:
        wanted = np.array([pipeline.items.classes.index(value) for value in filter_values])
        allowed = gallery.labels[None, :] == wanted[:, None]
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
