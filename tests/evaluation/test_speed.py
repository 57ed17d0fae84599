"""Timing a pipeline: end-to-end queries one at a time on real images and a real index (the unreadable
skipped, the warm-up left out), and search alone."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import tiny_config
from visual_search.embed.embedder import Embedded
from visual_search.evaluation.speed import time_single_queries, time_single_searches, timed_search
from visual_search.pipeline import Pipeline


@pytest.fixture(scope="module")
def indexed(tmp_path_factory) -> Iterator[tuple[Pipeline, Embedded]]:
    with Pipeline.from_config(tiny_config(tmp_path_factory.mktemp("speed"))) as pipeline:
        yield pipeline, pipeline.index_gallery()


def test_end_to_end_queries_skip_unreadable_images_and_the_warm_up(indexed, tmp_path):
    pipeline, gallery = indexed
    images = gallery.frame["image"].tolist()[:6]
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not an image")
    summary = time_single_queries(pipeline, [*images[:3], str(broken), *images[3:]], k=5, rounds=2)
    assert summary["qps_single"] > 0 and 0 < summary["single_p50_ms"] <= summary["single_p95_ms"]
    assert summary["qps_single_min"] <= summary["qps_single"] <= summary["qps_single_max"]
    stages = [summary[f"single_{stage}_p50_ms"] for stage in ("decode", "prepare", "encode", "search")]
    assert all(ms > 0 for ms in stages) and sum(stages) < 1.5 * summary["single_p95_ms"]  # parts, not sums
    labels = [pipeline.indexed.labels[0]] * 6
    assert time_single_queries(pipeline, images, k=5, filter_values=labels)["qps_single"] > 0


def test_search_alone_and_batched(indexed):
    pipeline, gallery = indexed
    embeddings = gallery.embeddings[:4]
    assert time_single_searches(pipeline, embeddings, k=3)["qps_search"] > 0
    result, seconds = timed_search(pipeline, embeddings, 3, None)
    assert result.rows[:, 0].tolist() == [0, 1, 2, 3] and seconds > 0
