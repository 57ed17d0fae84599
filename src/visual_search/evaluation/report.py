"""What an evaluation run leaves behind: the printed summary, the per-query table, the image grid and the
leaderboard row."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

import numpy as np
import pandas as pd
from PIL import Image

from visual_search.embed.embedder import Embedded
from visual_search.evaluation.grid import retrieval_grid
from visual_search.index.search import SearchResult

# (metric key pattern, explanation) in the order the summary prints them; {k} is the cut-off.
EXPLAINED = (
    ("mAP", "exact ranking of the whole gallery"),
    ("mAP@{k}", "AP over the top {k} / hits in the top {k} (Towhee); from the index"),
    ("recall@{k}", "share of all relevant gallery items found in the top {k}"),
    ("precision@{k}", "share of the top {k} that is relevant"),
    ("hit_rate@{k}", "queries with a relevant item in the top {k} (metric-learning Recall@{k})"),
    ("ann_recall@{k}", "overlap of the index's top {k} with the exact top {k}"),
    ("category_accuracy", "predicted category of the query (filter=predicted)"),
    ("qps_single", "end to end, one query at a time: decode + preprocess + embed + search"),
    ("single_p50_ms", "latency of one end-to-end query, median"),
    ("single_p95_ms", "latency of one end-to-end query, 95th percentile"),
    ("single_decode_p50_ms", "of one query: decoding the image, median"),
    ("single_prepare_p50_ms", "of one query: crop + preprocess, median"),
    ("single_encode_p50_ms", "of one query: the encoder, median"),
    ("single_search_p50_ms", "of one query: the search call and its results, median"),
    ("qps_batch", "end to end, batched: the query set embedded and searched together"),
    ("qps_search_batch", "search only, batched"),
    ("qps_search", "search only, one query at a time"),
    ("search_p50_ms", "search only, one query, median"),
    ("encoder_ips", "encoder forward only, images per second"),
    ("load_1m", "load average while timing (speed figures: median of rounds, range beside)"),
)


def summary_lines(title: str, metrics: Mapping[str, float], k: int) -> list[str]:
    """The run's headline numbers, one per line, explained."""
    lines = [title]
    for pattern, explanation in EXPLAINED:
        key = pattern.format(k=k)
        if key in metrics:
            low, high = metrics.get(f"{key}_min"), metrics.get(f"{key}_max")
            span = f" ({low:.1f}-{high:.1f})" if low is not None and high is not None else ""
            lines.append(f"  {key:<30} {metrics[key]:>10.4f}  {explanation.format(k=k)}{span}")
    lines += [f"  {key:<30} {value:>10.4f}" for key, value in metrics.items() if key.startswith("baseline_")]
    return lines


def query_table(
    query: Embedded,
    gallery: Embedded,
    result: SearchResult,
    relevance: np.ndarray,
    label_field: str,
    predicted: list[str] | None = None,
) -> pd.DataFrame:
    """One row per query: its item, category, (predicted category), hits and the retrieved item ids."""
    gallery_ids = gallery.frame.index.to_numpy()
    table = pd.DataFrame(
        {
            "item_id": query.frame.index.to_numpy(),
            label_field: query.frame[label_field].astype(str).to_numpy(),
            "hits": relevance.sum(1),
            "retrieved": [" ".join(str(gallery_ids[r]) for r in row if r >= 0) for row in result.rows],
        }
    )
    if predicted is not None:
        table.insert(2, "predicted", predicted)
    return table


def grid_queries(labels: np.ndarray, count: int) -> np.ndarray:
    """Positions of up to `count` queries, one per label first (so the grid shows many categories)."""
    first_of_label = np.unique(labels, return_index=True)[1]
    rest = np.setdiff1d(np.arange(len(labels)), first_of_label)
    return np.concatenate([np.sort(first_of_label), rest])[:count]


def qualitative_grid(
    query: Embedded,
    gallery: Embedded,
    result: SearchResult,
    relevance: np.ndarray,
    count: int,
) -> Image.Image:
    """Queries (one per label first) with their top K, captioned with the category name; relevant results
    framed green, others red."""
    chosen = grid_queries(query.labels, count)
    g_paths, g_labels = gallery.frame["image"].to_numpy(), gallery.frame["category"].astype(str).to_numpy()
    rows = result.rows[chosen]
    return retrieval_grid(
        queries=query.frame["image"].to_numpy()[chosen].tolist(),
        results=[[g_paths[r] if r >= 0 else None for r in row] for row in rows],
        relevant=relevance[chosen],
        query_captions=query.frame["category"].astype(str).to_numpy()[chosen].tolist(),
        result_captions=[[g_labels[r] if r >= 0 else "" for r in row] for row in rows],
    )


def leaderboard_row(
    approach: str, dataset: str, setup: Mapping[str, str], metrics: Mapping[str, float], run_dir: str
) -> dict[str, object]:
    """A flat leaderboard row: when, what, how it was configured, how well and how fast it did, where."""
    when = dt.datetime.now().isoformat(timespec="seconds")
    return {"time": when, "approach": approach, "dataset": dataset, **setup, **metrics, "run_dir": run_dir}
