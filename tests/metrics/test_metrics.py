"""Retrieval metrics against hand-computed cases."""

import math

import numpy as np
import pytest
import torch
from torchmetrics.functional.retrieval import retrieval_average_precision
from torchmetrics.retrieval import RetrievalHitRate, RetrievalMAP, RetrievalPrecision, RetrievalRecall

from visual_search.metrics.retrieval import (
    ann_recall,
    average_precision,
    exact_top_k,
    hit_rate_at_k,
    leave_one_out_map,
    map_at_k,
    mean_average_precision,
    precision_at_k,
    rank_gallery,
    recall_at_k,
    topk_metrics,
    topk_relevance,
)


def test_average_precision_by_hand():
    # relevant at ranks 1, 3, 4: (1/1 + 2/3 + 3/4) / 3
    assert math.isclose(average_precision(np.array([1, 0, 1, 1, 0])), (1 + 2 / 3 + 3 / 4) / 3)
    assert average_precision(np.array([0, 0, 1])) == 1 / 3
    assert math.isnan(average_precision(np.array([0, 0])))


def test_ties_keep_gallery_order():
    gallery = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    order = rank_gallery(torch.tensor([[1.0, 0.0]]), gallery, "IP")
    assert order.tolist() == [[0, 1, 2]]


def test_map_skips_queries_without_relevant_items():
    gallery = torch.tensor([[0.0], [1.0], [5.0]])
    g_labels = np.array([0, 1, 0])
    queries = torch.tensor([[0.9], [4.0]])
    q_labels = np.array([0, 7])  # label 7 has no gallery item: left out of the mean
    # query 0 (L2): ranking 1 (label 1), 0 (label 0), 2 (label 0) -> AP = (1/2 + 2/3) / 2
    expected = (1 / 2 + 2 / 3) / 2
    assert math.isclose(mean_average_precision(queries, q_labels, gallery, g_labels), expected)
    assert math.isnan(mean_average_precision(queries[1:], q_labels[1:], gallery, g_labels))


def test_leave_one_out_map_never_retrieves_the_query_itself():
    points = torch.tensor([[0.0], [1.0], [3.0], [3.5]])
    labels = np.array([0, 1, 0, 1])
    # item 0 ranks 1, 2, 3 -> relevant at rank 2; item 1: 0, 2, 3 -> rank 3; item 2: 3, 1, 0 -> rank 3;
    # item 3: 2, 1, 0 -> rank 2
    expected = (1 / 2 + 1 / 3 + 1 / 3 + 1 / 2) / 4
    assert math.isclose(leave_one_out_map(points, labels), expected)
    # a label held by one item only has nothing to find: left out
    assert math.isclose(leave_one_out_map(points[:3], np.array([0, 1, 0])), 1 / 2)


def test_cosine_ignores_norm_and_ip_does_not():
    gallery = torch.tensor([[10.0, 0.0], [0.6, 0.8]])
    query = torch.tensor([[0.6, 0.8]])
    assert rank_gallery(query, gallery, "COSINE").tolist() == [[1, 0]]
    assert rank_gallery(query, gallery, "IP").tolist() == [[0, 1]]


# --- top-K metrics -------------------------------------------------------------------------------------


def test_topk_relevance_never_counts_padding():
    gallery_labels = np.array([0, 1, 5])
    retrieved = np.array([[2, 0, -1], [-1, -1, -1]])
    # a naive gallery_labels[-1] would read label 5 and call the padding of query 1 relevant
    relevance = topk_relevance(retrieved, np.array([5, 5]), gallery_labels)
    assert relevance.tolist() == [[True, False, False], [False, False, False]]


def test_topk_metrics_by_hand():
    relevance = np.array([[1, 0, 1, 0], [0, 0, 0, 0], [0, 1, 0, 1]], dtype=bool)
    # AP@4: (1/1 + 2/3) / 2, 0 (no hit), (1/2 + 2/4) / 2
    assert math.isclose(map_at_k(relevance), (5 / 6 + 0 + 1 / 2) / 3)
    assert math.isclose(precision_at_k(relevance), (2 / 4 + 0 + 2 / 4) / 3)
    assert math.isclose(recall_at_k(relevance, np.array([4, 1, 2])), (2 / 4 + 0 / 1 + 2 / 2) / 3)
    assert math.isclose(hit_rate_at_k(relevance), 2 / 3)
    with pytest.raises(ValueError, match="recall"):
        recall_at_k(relevance, np.array([4, 0, 2]))


def test_map_at_k_ties_go_to_the_first_hits():
    # ranks 1 and 2 both relevant then a miss: (1/1 + 2/2) / 2; a miss first: (1/2 + 2/3) / 2
    assert map_at_k(np.array([[1, 1, 0]], dtype=bool)) == 1.0
    assert math.isclose(map_at_k(np.array([[0, 1, 1]], dtype=bool)), (1 / 2 + 2 / 3) / 2)


def test_topk_metrics_excludes_unanswerable_queries_and_pads():
    gallery_labels = np.array([0, 0, 1, 2, 0])
    query_labels = np.array([0, 1, 9])  # label 9 has no gallery item: left out of every metric
    retrieved = np.array([[1, 3, 4], [0, -1, -1], [2, 3, -1]])
    # query 0: relevance [1, 0, 1], 3 relevant in the gallery; query 1: relevance [0, 0, 0], 1 relevant
    assert topk_metrics(retrieved, query_labels, gallery_labels, 3) == pytest.approx(
        {"mAP@3": 5 / 6 / 2, "precision@3": 2 / 3 / 2, "recall@3": 2 / 3 / 2, "hit_rate@3": 0.5}
    )
    # k=2 uses the first two columns: query 0 relevance [1, 0]
    assert topk_metrics(retrieved, query_labels, gallery_labels, 2) == pytest.approx(
        {"mAP@2": 0.5, "precision@2": (1 / 2 + 0) / 2, "recall@2": (1 / 3 + 0) / 2, "hit_rate@2": 0.5}
    )
    with pytest.raises(ValueError, match="k=4"):
        topk_metrics(retrieved, query_labels, gallery_labels, 4)
    only_unanswerable = topk_metrics(retrieved[2:], query_labels[2:], gallery_labels, 3)
    assert all(math.isnan(value) for value in only_unanswerable.values())


def test_ann_recall_partial_overlap_and_padding():
    retrieved = np.array([[1, 2, 3], [4, -1, -1], [0, 1, 2], [-1, -1, -1]])
    exact = np.array([[1, 3, 5], [4, 6, -1], [-1, -1, -1], [-1, -1, -1]])
    # query 0: {1, 3} of 3; query 1: {4} of 2 valid (-1 never matches -1); queries 2, 3: no valid exact entry
    assert math.isclose(ann_recall(retrieved, exact), (2 / 3 + 1 / 2) / 2)
    assert math.isnan(ann_recall(retrieved[2:], exact[2:]))


def test_exact_top_k_l2_ties_and_mask():
    gallery = torch.tensor([[0.0], [3.0], [1.0], [1.0], [10.0]])
    queries = torch.tensor([[1.0], [2.0]])
    # query 0 distances 1, 2, 0, 0, 9; query 1 distances 2, 1, 1, 1, 8 (three-way tie at the cut)
    assert exact_top_k(queries, gallery, 3).tolist() == [[2, 3, 0], [1, 2, 3]]
    assert exact_top_k(queries, gallery, 2).tolist() == [[2, 3], [1, 2]]
    assert exact_top_k(queries, gallery, 7).tolist() == [[2, 3, 0, 1, 4, -1, -1], [1, 2, 3, 0, 4, -1, -1]]
    allowed = np.array([[True, True, False, True, False], [True, False, False, False, True]])
    assert exact_top_k(queries, gallery, 3, allowed=allowed).tolist() == [[3, 0, 1], [0, 4, -1]]
    assert exact_top_k(queries, gallery, 3, allowed=np.zeros((2, 5), dtype=bool)).tolist() == [[-1] * 3] * 2


def test_exact_top_k_ip():
    gallery = torch.tensor([[1.0, 0.0], [2.0, 0.0], [0.0, 3.0]])
    query = torch.tensor([[1.0, 1.0]])  # scores 1, 2, 3
    assert exact_top_k(query, gallery, 2, "IP").tolist() == [[2, 1]]
    assert exact_top_k(query, gallery, 2, "IP", allowed=np.array([[True, False, True]])).tolist() == [[2, 0]]
    assert exact_top_k(query, gallery, 2, "COSINE").tolist() == [[0, 1]]  # all three tie on cosine


def test_exact_top_k_matches_stable_ranking_with_many_ties():
    generator = torch.Generator().manual_seed(0)
    gallery = torch.randint(0, 3, (60, 2), generator=generator).float()  # few distinct points: many ties
    queries = torch.randint(0, 3, (15, 2), generator=generator).float()
    allowed = np.random.default_rng(0).random((15, 60)) < 0.4
    top = exact_top_k(queries, gallery, 10, "L2", allowed)
    for row, order, mask in zip(top, rank_gallery(queries, gallery, "L2").numpy(), allowed, strict=True):
        expected = order[mask[order]][:10]
        assert row.tolist() == [*expected, *[-1] * (10 - expected.size)]


def test_topk_metrics_agree_with_torchmetrics():
    rng = np.random.default_rng(1)
    num_queries, num_gallery, k = 30, 40, 5
    gallery_labels = rng.integers(0, 6, num_gallery)
    query_labels = rng.integers(0, 7, num_queries)  # label 6 has no gallery item (torchmetrics: skip)
    order = rank_gallery(torch.randn(num_queries, 8), torch.randn(num_gallery, 8), "IP")
    # torchmetrics ignores targets whose pred is <= 0: give the ranking positive, descending scores
    preds = torch.empty(num_queries, num_gallery).scatter_(
        1, order, torch.arange(num_gallery, 0, -1.0).expand(num_queries, -1)
    )
    target = torch.from_numpy(query_labels[:, None] == gallery_labels[None, :])
    indexes = torch.arange(num_queries)[:, None].expand(-1, num_gallery)
    reference = {
        f"mAP@{k}": RetrievalMAP(top_k=k, empty_target_action="skip"),
        f"precision@{k}": RetrievalPrecision(top_k=k, empty_target_action="skip"),
        f"recall@{k}": RetrievalRecall(top_k=k, empty_target_action="skip"),
        f"hit_rate@{k}": RetrievalHitRate(top_k=k, empty_target_action="skip"),
    }
    ours = topk_metrics(order[:, :k].numpy(), query_labels, gallery_labels, k)
    assert (query_labels == 6).any() and 0 < ours[f"hit_rate@{k}"] < 1
    for name, metric in reference.items():
        assert ours[name] == pytest.approx(float(metric(preds, target, indexes)), abs=1e-6), name


def test_map_at_k_normalises_by_hits_in_top_k_like_torchmetrics():
    # 3 relevant gallery items, only the first ranked in the top 2: AP@2 = (1/1) / 1 hit = 1,
    # not 1 / min(K, relevant) = 1/2 as some libraries (e.g. TF Similarity's MapAtK) normalise
    preds, target = torch.tensor([4.0, 3.0, 2.0, 1.0]), torch.tensor([True, False, True, True])
    assert float(retrieval_average_precision(preds, target, top_k=2)) == 1.0
    assert map_at_k(np.array([[True, False]])) == 1.0
