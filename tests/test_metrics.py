"""Retrieval metrics against hand-computed cases."""

import math

import numpy as np
import torch

from visual_search.evaluation.metrics import average_precision, mean_average_precision, rank_gallery


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


def test_cosine_ignores_norm_and_ip_does_not():
    gallery = torch.tensor([[10.0, 0.0], [0.6, 0.8]])
    query = torch.tensor([[0.6, 0.8]])
    assert rank_gallery(query, gallery, "COSINE").tolist() == [[1, 0]]
    assert rank_gallery(query, gallery, "IP").tolist() == [[0, 1]]
