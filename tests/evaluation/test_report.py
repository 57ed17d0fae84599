"""The printed summary, the per-query table and the choice of grid queries."""

from __future__ import annotations

import numpy as np
import pandas as pd

from visual_search.embed.embedder import Embedded
from visual_search.evaluation.report import grid_queries, query_table, summary_lines
from visual_search.index.milvus import SearchResult


def test_grid_shows_one_query_per_label_first():
    labels = np.array([2, 2, 0, 1, 0, 2])
    assert grid_queries(labels, 4).tolist() == [0, 2, 3, 1]
    assert grid_queries(labels, 2).tolist() == [0, 2]
    assert grid_queries(labels, 10).tolist() == [0, 2, 3, 1, 4, 5]


def test_summary_explains_the_headline_metrics_in_order():
    metrics = {"qps_single": 12.5, "mAP@10": 0.5, "mAP": 0.25, "baseline_silhouette/mAP": 0.1, "other": 3.0}
    lines = summary_lines("title", metrics, k=10)
    assert lines[0] == "title"
    assert [line.split()[0] for line in lines[1:]] == [
        "mAP",
        "mAP@10",
        "qps_single",
        "baseline_silhouette/mAP",
    ]
    assert "0.2500  exact ranking of the whole gallery" in lines[1]
    assert "top 10" in lines[2]


def test_query_table_lists_hits_and_retrieved_ids():
    def embedded(ids: list[str], categories: list[str]) -> Embedded:
        frame = pd.DataFrame({"category": categories}, index=pd.Index(ids, name="item_id"))
        return Embedded(frame, np.zeros((len(ids), 2), np.float32), 0.0)

    gallery = embedded(["g0", "g1", "g2"], ["a", "b", "a"])
    query = embedded(["q0", "q1"], ["a", "b"])
    result = SearchResult(np.array([[2, 1], [1, -1]]), np.zeros((2, 2), np.float32))
    relevance = np.array([[True, False], [True, False]])
    table = query_table(query, gallery, result, relevance, "category", predicted=["a", "a"])
    assert table.to_dict("records") == [
        {"item_id": "q0", "category": "a", "predicted": "a", "hits": 1, "retrieved": "g2 g1"},
        {"item_id": "q1", "category": "b", "predicted": "a", "hits": 1, "retrieved": "g1"},
    ]
